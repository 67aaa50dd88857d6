// The batch loop every tool that turns CT files into one HDF5 file shares:
// input collection, --shard, the worker/thread split, ordered parallel
// processing, --keep-going/--failures and the error mapping.
#pragma once

#include <array>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "hse/cli/cli.h"
#include "hse/image/ct_input.h"

namespace CLI {
class App;
}

namespace hse::image {

struct BatchOptions {
  bool keep_going = false;
  std::string failures;
};
void add_batch_options(CLI::App& app, BatchOptions& o);

// One processed volume: its values and their shape.
struct BatchItem {
  std::vector<float> values;
  std::vector<std::uint64_t> shape;
};

struct BatchResult {
  std::size_t written = 0, failed = 0;
};

// Processes the (sharded) inputs: `work(ct, threads)` on workers, `sink(id, item)`
// on this thread in input order. With keep_going, failures are logged, listed in
// --failures and counted; without, the first one is thrown. Throws (exit 1,
// naming `output`) when every input failed. `max_workers` bounds how many volumes
// are processed at once (1 for GPU work).
BatchResult run_ct_batch(const std::string& what, const std::string& output, const cli::Common& common,
                         const CtInputOptions& input, const BatchOptions& batch, std::istream& in, int max_workers,
                         const std::function<BatchItem(LoadedCt&, int)>& work,
                         const std::function<void(const std::string&, BatchItem&&)>& sink);

}  // namespace hse::image
