// bench_loader: the items/s that hse-pretrain's data side delivers, alone (no model): reading
// volumes from HDF5, HSENet's 3-D augmentations and the WordPiece tokenization of the reports
// (train::ClipData::batch, the trainers' task.load), run ahead on W data workers
// (train::Prefetcher, as train::run_loop does), consumed as fast as they come.
//
//   bench_loader --volumes V.h5 --reports R.csv --vocab vocab.txt [--batch 8] [--max-length 512]
//                [--workers 0,1,2,4] [--items 200] [--threads 1] [--no-augment]
//
// Items follow the training order (train::epoch_order per epoch, over as many epochs as needed).
// Prints one TSV row per worker count:
//   workers items seconds items_per_s ms_per_item_per_worker
// and, first, a single-thread split of one item's cost: read, augment (HSENet's four transforms),
// tokenize (the rest of ClipData::batch), from runs with and without augmentation.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include "hse/cli/cli.h"
#include "hse/train/clip_data.h"
#include "hse/train/prefetch.h"
#include "hse/train/run_state.h"

using namespace hse;

namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
// Micro-batches of `batch` items in training order until `items` are handed out.
struct Jobs {
  std::size_t size, batch, items, handed = 0;
  long epoch = -1;
  std::vector<std::size_t> order;
  std::size_t pos = 0;
  bool operator()(std::vector<std::size_t>& job) {
    if (handed >= items) return false;
    job.clear();
    while (job.size() < batch && handed < items) {
      if (pos == order.size() || epoch < 0) {
        order = train::epoch_order(size, 42, ++epoch);
        pos = 0;
      }
      job.push_back(order[pos++]);
      ++handed;
    }
    return true;
  }
};
}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{"bench_loader"};
  std::string volumes, reports, vocab, workers_s = "0,1,2,4";
  int batch = 8, max_length = 512, items = 200, threads = 1;
  bool no_augment = false;
  app.add_option("--volumes", volumes)->required();
  app.add_option("--reports", reports)->required();
  app.add_option("--vocab", vocab)->required();
  app.add_option("--batch", batch);
  app.add_option("--max-length", max_length);
  app.add_option("--workers", workers_s);
  app.add_option("--items", items);
  app.add_option("--threads", threads, "torch intra-op threads (the trainers' --threads)");
  app.add_flag("--no-augment", no_augment);
  CLI11_PARSE(app, argc, argv);
  torch::set_num_threads(threads);
  train::ClipDataOptions o;
  o.volumes = {volumes};
  o.reports = reports;
  o.max_length = max_length;
  const train::ClipData data(o, std::make_shared<const text::WordPieceTokenizer>(text::WordPieceTokenizer::from_file(vocab)));
  const auto B = static_cast<std::size_t>(batch);

  // One thread, the cost of one item: read+tokenize (no augmentation), then with augmentation.
  std::vector<std::size_t> one(B);
  for (std::size_t k = 0; k < B; ++k) one[k] = k % data.size();
  (void)data.batch(one, true, 42, 0);  // warm the page cache and the allocator
  double plain = 1e30, aug = 1e30;
  for (int r = 0; r < 3; ++r) {
    double t = now_s();
    (void)data.batch(one, false, 42, 0);
    plain = std::min(plain, now_s() - t);
    t = now_s();
    (void)data.batch(one, true, 42, 0);
    aug = std::min(aug, now_s() - t);
  }
  // Reading alone, the same items.
  double read_only = 1e30;
  {
    std::int64_t n = 1;
    for (auto x : data.volume_shape()) n *= x;
    std::vector<float> buf(static_cast<std::size_t>(n));
    const h5::Reader r({volumes}, "volumes");
    for (int rep = 0; rep < 3; ++rep) {
      const double t = now_s();
      for (std::size_t k : one) r.read("volumes", k, buf.data());
      read_only = std::min(read_only, now_s() - t);
    }
  }
  std::printf("# one item, one thread: read %.2f ms, augment %.2f ms, tokenize %.2f ms (%zu items of %s)\n",
              1e3 * read_only / B, 1e3 * (aug - plain) / B, 1e3 * (plain - read_only) / B, data.size(),
              volumes.c_str());
  std::printf("workers\titems\tseconds\titems_per_s\tms_per_item_per_worker\n");
  std::vector<int> worker_counts;
  for (std::size_t p = 0; p <= workers_s.size();) {
    const auto q = std::min(workers_s.find(',', p), workers_s.size());
    if (q > p) worker_counts.push_back(std::stoi(workers_s.substr(p, q - p)));
    p = q + 1;
  }
  for (int w : worker_counts) {
    train::Prefetcher<std::vector<std::size_t>, train::ClipBatch> pf(
        Jobs{data.size(), B, static_cast<std::size_t>(items)},
        [&](const std::vector<std::size_t>& job) { return data.batch(job, !no_augment, 42, 0); }, w,
        2 * std::max(1, w));
    const double t = now_s();
    std::size_t got = 0;
    while (auto b = pf.next()) got += static_cast<std::size_t>(b->volumes.size(0));
    const double s = now_s() - t;
    std::printf("%d\t%zu\t%.3f\t%.2f\t%.2f\n", w, got, s, static_cast<double>(got) / s,
                1e3 * s * std::max(1, w) / static_cast<double>(got));
    std::fflush(stdout);
  }
  return 0;
} catch (const cli::Error& e) {
  std::fprintf(stderr, "bench_loader: %s\n", e.line().c_str());
  return static_cast<int>(e.code());
}
