// Crash-safe long jobs: checkpoint directories written atomically (a temporary
// directory renamed into place), SIGTERM/SIGINT turned into a "save and stop"
// request, the data order as a pure function of (seed, epoch) so that resuming
// needs only (epoch, position), and the CPU RNG state saved with the checkpoint.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace hse::train {

// Writes a checkpoint directory: `fill(tmp_dir)` writes the files into a
// temporary directory beside `dir`, which then replaces `dir` (rename). If
// `fill` throws, the temporary directory is removed and `dir` is left as it was.
void write_checkpoint_dir(const std::string& dir, const std::function<void(const std::string&)>& fill);

// Removes all but the newest `keep` "checkpoint-<step>" directories in `out`.
void prune_checkpoints(const std::string& out, int keep);
// The newest "checkpoint-<step>" directory in `out` ("" when none).
std::string latest_checkpoint(const std::string& out);

// Before --resume: removes what a killed run (kill -9, a lost node) left in `out` — temporary
// checkpoint directories (".checkpoint-N.tmp-PID", ".checkpoint-N.old-PID") and temporary files
// (".NAME.tmp-PID-...") — warning once for each. Returns how many were removed.
int remove_interrupted_writes(const std::string& out);

// SIGTERM/SIGINT set a flag instead of killing the process (cluster pre-emption:
// the trainer saves at the next step boundary and exits 0).
void install_stop_handler();
bool stop_requested();
void request_stop();  // for tests

// The order of n items in `epoch` (a deterministic shuffle from seed and epoch).
std::vector<std::size_t> epoch_order(std::size_t n, std::uint64_t seed, long epoch, bool shuffle = true);

// The end of every optimiser step of the trainers: on a stop request (SIGTERM/SIGINT) it saves a
// checkpoint (save(false)), waits at `barrier` for the other processes and returns true (the
// caller then exits 0); otherwise it saves every `save_steps` steps before the last one (the
// caller's final save covers that) and returns false.
bool end_of_step(long step, long total_steps, long save_steps, const std::function<void(bool)>& save,
                 const std::function<void()>& barrier);

// The --metrics TSV of the trainers: a header line, then one flushed line per optimiser
// step. With `append` (a resumed run) the lines go on after the existing ones and the
// header is written only when the file is new or empty; with `keep_through_step` >= 0 the lines
// of steps after it (logged by a run killed after its last checkpoint) are dropped first, with a
// warning, so that the resumed run's lines follow on without repeats. An empty path writes nothing.
// Throws cli::Error (exit 1, naming the file) when the file cannot be written.
class MetricsTsv {
 public:
  MetricsTsv() = default;
  MetricsTsv(const std::string& path, const std::vector<std::string>& columns, bool append,
             long keep_through_step = -1);
  ~MetricsTsv();
  MetricsTsv(MetricsTsv&&) noexcept;
  MetricsTsv& operator=(MetricsTsv&&) noexcept;
  void line(const std::string& tab_separated);
  bool enabled() const { return f_ != nullptr; }

 private:
  struct File;
  std::unique_ptr<File> f_;
};

}  // namespace hse::train
