#include <doctest/doctest.h>

#include <hdf5.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <utility>
#include <filesystem>

#include "hse/cli/cli.h"
#include "hse/io/h5.h"
#include "require_all.h"

using namespace hse;
namespace fs = std::filesystem;

namespace {
std::string tmpdir() {
  auto d = fs::temp_directory_path() / ("hse_h5_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d.string();
}
cli::Exit code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const cli::Error& e) {
    return e.code();
  }
  return cli::Exit::ok;
}
}  // namespace

TEST_CASE("write, read back, shards, float16") {
  const auto d = tmpdir();
  for (int s = 0; s < 2; ++s) {
    h5::Writer w(d + "/s" + std::to_string(s) + ".h5", "volumes");
    w.add_dataset("volumes", s == 0 ? h5::DType::f32 : h5::DType::f16, {1, 2, 3});
    for (int i = 0; i < 2 + s; ++i) {
      std::vector<float> item(6);
      for (int k = 0; k < 6; ++k) item[k] = 0.25f * k + 10 * i + 100 * s;
      w.append("volumes", item.data());
      w.add_id("v" + std::to_string(s) + "_" + std::to_string(i));
    }
    w.set_attr("size", std::vector<std::int64_t>{1, 2, 3});
    w.add_provenance({h5::provenance_record("test", {"test", "-o", "x"})});
    w.commit();
  }
  h5::Reader r({d + "/s0.h5", d + "/s1.h5"}, "volumes");
  CHECK(r.size() == 5);
  CHECK(r.ids()[2] == "v1_0");
  CHECK(r.item_shape("volumes") == std::vector<std::uint64_t>{1, 2, 3});
  std::vector<float> out(6);
  r.read("volumes", 4, out.data());  // shard 1, row 2 (float16)
  CHECK(out[3] == doctest::Approx(0.75f + 20 + 100));
  CHECK(r.attr_string("hse_format_version") == "1.0");
  CHECK(r.provenance().size() == 1);  // identical records de-duplicated
  fs::remove_all(d);
}

TEST_CASE("uncommitted writer leaves no file; kind and version are checked") {
  const auto d = tmpdir();
  {
    h5::Writer w(d + "/never.h5", "volumes");
    w.add_dataset("volumes", h5::DType::f32, {2});
  }
  CHECK_FALSE(fs::exists(d + "/never.h5"));
  CHECK(std::distance(fs::directory_iterator(d), fs::directory_iterator()) == 0);
  {
    h5::Writer w(d + "/emb.h5", "embeddings");
    w.commit();
  }
  CHECK(code_of([&] { h5::Reader r({d + "/emb.h5"}, "volumes"); }) == cli::Exit::incompatible);
  {
    h5::Writer w(d + "/future.h5", "volumes");
    w.set_attr("hse_format_version", std::string("2.0"));
    w.commit();
  }
  CHECK(code_of([&] { h5::Reader r({d + "/future.h5"}, "volumes"); }) == cli::Exit::incompatible);
  CHECK(code_of([&] { h5::Reader r({d + "/missing.h5"}, "volumes"); }) == cli::Exit::incompatible);
  CHECK(code_of([&] { h5::Writer w("/nonexistent-dir/x.h5", "volumes"); }) == cli::Exit::runtime);
  fs::remove_all(d);
}

TEST_CASE("half conversion round trip") {
  for (float f : {0.f, 1.f, -2.5f, 0.1f, 65504.f, 1e-5f, 3.14159f}) {
    const float g = h5::half_to_float(h5::float_to_half(f));
    CHECK(std::fabs(g - f) <= std::fabs(f) * 1e-3f + 1e-7f);
  }
  CHECK(std::isinf(h5::half_to_float(h5::float_to_half(1e6f))));
}

namespace {
// A mostly-zero volume (normalised CT is zero outside the body) with a smooth blob.
std::vector<float> blob_volume(int d, int h, int w, int seed) {
  std::vector<float> v(static_cast<std::size_t>(d * h * w), 0.0f);
  for (int z = 0; z < d; ++z)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const float r = std::hypot(y - h / 2.0f, x - w / 2.0f) / (h / 3.0f);
        if (r < 1) v[static_cast<std::size_t>((z * h + y) * w + x)] = 0.3f + 0.5f * (1 - r) + 0.001f * ((x * 7 + y * 3 + z + seed) % 11);
      }
  return v;
}

// Writes 3 volumes with `codec` as float32 and float16 and reads them back bitwise; checks the
// filter is on the dataset and the file is smaller than an uncompressed one.
void codec_roundtrip(h5::Codec codec) {
  const auto d = tmpdir();
  const int D = 8, H = 32, W = 32;
  for (auto dt : {h5::DType::f32, h5::DType::f16}) {
    const std::string raw = d + "/raw.h5", packed = d + "/packed.h5";
    for (const auto& [path, c] : {std::pair{raw, h5::Codec::none}, std::pair{packed, codec}}) {
      h5::Writer w(path, "volumes");
      w.set_codec(c);
      w.add_dataset("volumes", dt, {1, D, H, W});
      for (int i = 0; i < 3; ++i) {
        w.append("volumes", blob_volume(D, H, W, i).data());
        w.add_id("v" + std::to_string(i));
      }
      w.commit();
    }
    CHECK(fs::file_size(packed) < fs::file_size(raw));
    h5::Reader r({packed}, "volumes");
    std::vector<float> got(static_cast<std::size_t>(D * H * W));
    for (int i = 0; i < 3; ++i) {
      r.read("volumes", static_cast<std::size_t>(i), got.data());
      const auto want = blob_volume(D, H, W, i);
      bool same = true;
      for (std::size_t k = 0; k < got.size(); ++k) {
        const float e = dt == h5::DType::f16 ? h5::half_to_float(h5::float_to_half(want[k])) : want[k];
        same = same && e == got[k];
      }
      CHECK(same);
    }
    // The filter is on the dataset, as other HDF5 readers see it.
    const hid_t f = H5Fopen(packed.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    const hid_t ds = H5Dopen2(f, "volumes", H5P_DEFAULT);
    const hid_t pl = H5Dget_create_plist(ds);
    bool found = false;
    for (int k = 0; k < H5Pget_nfilters(pl); ++k) {
      unsigned flags = 0, info = 0;
      std::size_t n = 0;
      const H5Z_filter_t id = H5Pget_filter2(pl, static_cast<unsigned>(k), &flags, &n, nullptr, 0, nullptr, &info);
      found = found || id == (codec == h5::Codec::gzip ? H5Z_FILTER_DEFLATE
                              : codec == h5::Codec::lz4 ? 32004
                              : codec == h5::Codec::blosc ? 32001 : 32008);
    }
    CHECK(found);
    H5Pclose(pl);
    H5Dclose(ds);
    H5Fclose(f);
  }
  fs::remove_all(d);
}
}  // namespace

TEST_CASE("codec names") {
  for (auto c : {h5::Codec::none, h5::Codec::gzip, h5::Codec::lz4, h5::Codec::blosc, h5::Codec::bitshuffle})
    CHECK(h5::parse_codec(h5::codec_name(c)) == c);
  CHECK(code_of([] { h5::parse_codec("zip"); }) == cli::Exit::usage);
  CHECK(h5::codec_available(h5::Codec::none));
  CHECK(h5::codec_available(h5::Codec::gzip));  // deflate is built into libhdf5
}

TEST_CASE("gzip-compressed volumes read back bitwise") { codec_roundtrip(h5::Codec::gzip); }

TEST_CASE("lz4, blosc and bitshuffle plugins: volumes read back bitwise") {
  for (auto c : {h5::Codec::lz4, h5::Codec::blosc, h5::Codec::bitshuffle}) {
    CAPTURE(h5::codec_name(c));
    if (!h5::codec_available(c))
      HSE_SKIP_OR_FAIL("the HDF5 " << h5::codec_name(c) << " filter plugin (scripts/install-deps.sh installs it)");
    codec_roundtrip(c);
  }
}

TEST_CASE("float16 items widen exactly: every finite half, infinities, signed zeros") {
  // All 63,488 finite halves and the infinities, written as float16 and read back as float32:
  // the reader's vectorised widening must equal the scalar reference half_to_float bit for bit.
  const auto d = tmpdir();
  std::vector<float> item;
  for (std::uint32_t b = 0; b < 0x10000u; ++b) {
    const auto h = static_cast<std::uint16_t>(b);
    if (((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff)) continue;  // NaNs
    item.push_back(h5::half_to_float(h));
  }
  {
    h5::Writer w(d + "/all.h5", "volumes");
    w.add_dataset("volumes", h5::DType::f16, {item.size()});
    w.append("volumes", item.data());
    w.add_id("all");
    w.commit();
  }
  h5::Reader r({d + "/all.h5"}, "volumes");
  std::vector<float> back(item.size());
  r.read("volumes", 0, back.data());
  CHECK(std::memcmp(back.data(), item.data(), item.size() * sizeof(float)) == 0);
  fs::remove_all(d);
}
