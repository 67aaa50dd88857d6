#include "hse/image/ct_batch.h"

#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>

#include <unistd.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <CLI/CLI.hpp>

#include "hse/cli/parallel.h"
#include "hse/io/atomic.h"

namespace hse::image {

void add_batch_options(CLI::App& app, BatchOptions& o) {
  app.add_flag("--keep-going", o.keep_going, "write the volumes that succeed, list failures, exit 1 if any failed");
  app.add_option("--failures", o.failures, "with --keep-going: write the failed inputs and reasons (TSV) here");
}

namespace {
// Every CT file allocates the same few buffers of hundreds of MB (the compressed file, the
// inflated voxels, float copies, the resampled grid). glibc serves blocks above 32 MiB with mmap
// and returns them at free, so each file paid its page faults again: about half of
// hse-preprocess's time was the kernel's (perf). Kept in the heap instead, the buffers of one file
// are reused by the next: 1.8x faster per file, at the price of keeping the high-water mark
// resident until exit (bench/README.md, bench_preprocess_throughput.py). HSE_MALLOC_DEFAULTS=1
// keeps glibc's defaults.
void keep_large_buffers() {
#if defined(__GLIBC__)
  static const bool done = [] {
    const char* off = std::getenv("HSE_MALLOC_DEFAULTS");
    if (off && std::string(off) == "1") return true;
    mallopt(M_MMAP_MAX, 0);             // large blocks from the heap, not mmap
    mallopt(M_TRIM_THRESHOLD, 1 << 30);  // keep freed memory for the next file (up to 1 GiB spare)
    mallopt(M_ARENA_MAX, 1);             // one heap, so the workers reuse each other's buffers
    return true;
  }();
  (void)done;
#endif
}

std::uint64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && size > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(size) : (8ull << 30);
}

struct Done {
  std::string id;
  BatchItem item;
};
}  // namespace

BatchResult run_ct_batch(const std::string& what, const std::string& output, const cli::Common& common,
                         const CtInputOptions& input, const BatchOptions& batch, std::istream& in, int max_workers,
                         const std::function<BatchItem(LoadedCt&, int)>& work,
                         const std::function<void(const std::string&, BatchItem&&)>& sink) {
  parse_hu_mode(input.hu);  // a usage error before any work
  const Metadata meta = input.metadata.empty() ? Metadata() : Metadata(input.metadata);
  std::vector<std::string> inputs = collect_inputs(input, meta, in);
  // Ids over all shards, so that shards agree.
  std::vector<std::string> ids = input.ids.empty() ? input_ids(inputs, input.root) : input.ids;
  if (ids.size() != inputs.size()) throw std::logic_error("run_ct_batch: ids and inputs differ in number");
  inputs = common.shard.take(inputs);
  ids = common.shard.take(ids);
  if (inputs.empty()) cli::fail_usage("shard {}/{} has no inputs", common.shard.index, common.shard.count);

  keep_large_buffers();
  std::unique_ptr<io::AtomicFile> failures;
  if (!batch.failures.empty()) failures = std::make_unique<io::AtomicFile>(batch.failures);
  const int threads = cli::resolve_threads(common.threads);
  // One file per thread, so that one file's single-threaded read and gzip inflate overlaps the
  // others' compute (2 workers x 1 thread preprocess 1.3x the volumes/s of 1 x 2 on 2 cores);
  // a single file gets every thread. Each worker holds one volume's buffers (about 1.1 GB at
  // 512x512x300), so the workers are capped at one per 3 GB of physical memory.
  const int by_memory = std::max(1, static_cast<int>(physical_memory_bytes() / (3ull << 30)));
  const int workers = std::max(1, std::min({static_cast<int>(inputs.size()), threads, max_workers, by_memory}));
  const int inner = std::max(1, threads / workers);
  cli::verbose("{} inputs, {} workers x {} threads", inputs.size(), workers, inner);

  BatchResult r;
  double write_s = 0;  // the sink's time (the HDF5 writes), on this thread
  cli::Progress progress(what, inputs.size(), common.progress);
  cli::ordered_map<Done>(
      inputs.size(), workers, inner,
      [&](std::size_t i, int nt) {
        const std::string& path = inputs[i];
        try {
          const auto t0 = std::chrono::steady_clock::now();
          LoadedCt ct = load_ct(path, ids[i], meta, input);
          const auto t1 = std::chrono::steady_clock::now();
          Done d{ct.id, work(ct, nt)};
          const auto t2 = std::chrono::steady_clock::now();
          cli::verbose("{}: read {:.3f} s, steps {:.3f} s", path, std::chrono::duration<double>(t1 - t0).count(),
                       std::chrono::duration<double>(t2 - t1).count());
          return d;
        } catch (const cli::Error& err) {
          if (err.file().empty()) throw cli::Error(err.code(), path, err.what(), err.hint());
          throw;
        } catch (const std::bad_alloc&) {
          throw cli::Error(cli::Exit::resource, path, "out of memory");
        } catch (const std::invalid_argument& err) {
          throw cli::Error(cli::Exit::incompatible, path, err.what());
        } catch (const std::runtime_error& err) {
          throw cli::Error(cli::Exit::runtime, path, err.what());
        }
      },
      [&](std::size_t, Done&& d) {
        const auto t0 = std::chrono::steady_clock::now();
        sink(d.id, std::move(d.item));
        write_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        ++r.written;
        progress.tick();
      },
      [&](std::size_t i, std::exception_ptr ep) {
        try {
          std::rethrow_exception(ep);
        } catch (const cli::Error& err) {
          if (!batch.keep_going) throw;
          ++r.failed;
          progress.tick();
          cli::log_line(-1, "failed: " + err.line());
          if (failures) failures->stream() << inputs[i] << '\t' << err.what() << '\n';
        }
      });
  progress.finish();
  cli::verbose("output writes {:.3f} s", write_s);
  if (r.written == 0) cli::fail(cli::Exit::runtime, output, "no volume could be processed ({} failed)", r.failed);
  if (failures) failures->commit();
  return r;
}

}  // namespace hse::image
