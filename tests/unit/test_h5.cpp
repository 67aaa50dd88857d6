#include <doctest/doctest.h>

#include <hdf5.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "hse/cli/cli.h"
#include "hse/io/h5.h"

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
