// bench_storage: the read throughput of a volumes file stored with each codec and type.
//
//   bench_storage SOURCE.h5 OUTDIR [--codecs none,gzip,lz4,blosc,bitshuffle] [--dtypes float32,float16]
//                 [--repeat 3]
//
// SOURCE is a float32 file of kind volumes (hse-preprocess). For each type and codec the driver
// writes OUTDIR/<dtype>-<codec>.h5 with h5::Writer (as hse-preprocess --dtype --compression
// would), then reads every item back with h5::Reader::read, the trainers' read path (float16 is
// widened to float32 there), best of --repeat passes after one warm pass (the page cache holds
// the file: this measures decoding, not the disk). It checks that the items come back as written
// (bitwise for float32; float16: the source rounded to half) and prints one TSV row per file:
//   dtype codec bytes ratio write_s read_volumes_per_s read_MiB_per_s (of float32 output)
// Codecs whose plugin this libhdf5 cannot find are reported and skipped.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "hse/cli/cli.h"
#include "hse/io/h5.h"

namespace fs = std::filesystem;
using namespace hse;

namespace {
std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t p = 0;
  while (p <= s.size()) {
    const auto q = std::min(s.find(',', p), s.size());
    if (q > p) out.push_back(s.substr(p, q - p));
    p = q + 1;
  }
  return out;
}
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

int main(int argc, char** argv) try {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_storage SOURCE.h5 OUTDIR [--codecs a,b] [--dtypes a,b] [--repeat N]\n");
    return 2;
  }
  const std::string source = argv[1], outdir = argv[2];
  std::vector<std::string> codecs{"none", "gzip", "lz4", "blosc", "bitshuffle"}, dtypes{"float32", "float16"};
  int repeat = 3;
  for (int i = 3; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--codecs") codecs = split(v);
    else if (k == "--dtypes") dtypes = split(v);
    else if (k == "--repeat") repeat = std::max(1, std::stoi(v));
    else {
      std::fprintf(stderr, "bench_storage: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  fs::create_directories(outdir);
  const h5::Reader src({source}, "volumes");
  const std::size_t n = src.size(), per = src.item_size("volumes");
  const auto shape = src.item_shape("volumes");
  std::vector<float> all(n * per);
  for (std::size_t i = 0; i < n; ++i) src.read("volumes", i, all.data() + i * per);
  const double raw_bytes = static_cast<double>(n * per * sizeof(float));
  std::fprintf(stderr, "source: %zu volumes of %zu floats (%.1f MiB as float32)\n", n, per, raw_bytes / 1048576.0);
  std::printf("dtype\tcodec\tbytes\tratio\twrite_s\tread_volumes_per_s\tread_MiB_per_s\n");
  std::vector<float> back(per);
  for (const auto& dts : dtypes) {
    const auto dt = h5::parse_dtype(dts);
    for (const auto& cs : codecs) {
      const auto codec = h5::parse_codec(cs);
      if (!h5::codec_available(codec)) {
        std::fprintf(stderr, "%s: no filter plugin in this libhdf5, skipped\n", cs.c_str());
        continue;
      }
      const std::string path = (fs::path(outdir) / (dts + "-" + cs + ".h5")).string();
      auto t0 = std::chrono::steady_clock::now();
      {
        h5::Writer w(path, "volumes");
        w.set_codec(codec);
        w.add_dataset("volumes", dt, shape);
        for (std::size_t i = 0; i < n; ++i) {
          w.append("volumes", all.data() + i * per);
          w.add_id(src.ids()[i]);
        }
        w.commit();
      }
      const double write_s = seconds_since(t0);
      const h5::Reader r({path}, "volumes");
      double best = 1e30;
      for (int pass = 0; pass <= repeat; ++pass) {  // pass 0 warms the page cache
        t0 = std::chrono::steady_clock::now();
        for (std::size_t i = 0; i < n; ++i) r.read("volumes", i, back.data());
        if (pass > 0) best = std::min(best, seconds_since(t0));
      }
      // Lossless: what was stored comes back.
      for (std::size_t i = 0; i < n; ++i) {
        r.read("volumes", i, back.data());
        for (std::size_t k = 0; k < per; ++k) {
          const float want = dt == h5::DType::f16 ? h5::half_to_float(h5::float_to_half(all[i * per + k])) : all[i * per + k];
          if (std::memcmp(&want, &back[k], sizeof(float)) != 0) {
            std::fprintf(stderr, "bench_storage: %s item %zu element %zu differs\n", path.c_str(), i, k);
            return 1;
          }
        }
      }
      const double bytes = static_cast<double>(fs::file_size(path));
      std::printf("%s\t%s\t%.0f\t%.3f\t%.3f\t%.1f\t%.0f\n", dts.c_str(), cs.c_str(), bytes, raw_bytes / bytes, write_s,
                  static_cast<double>(n) / best, raw_bytes / 1048576.0 / best);
      std::fflush(stdout);
    }
  }
  return 0;
} catch (const cli::Error& e) {
  std::fprintf(stderr, "bench_storage: %s\n", e.line().c_str());
  return static_cast<int>(e.code());
}
