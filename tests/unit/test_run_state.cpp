#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "hse/train/run_state.h"

namespace fs = std::filesystem;
using namespace hse;

TEST_CASE("checkpoint directories are replaced atomically; a failed write leaves the old one") {
  const fs::path out = fs::temp_directory_path() / ("hse_rs_" + std::to_string(::getpid()));
  const auto dir = (out / "checkpoint-10").string();
  train::write_checkpoint_dir(dir, [](const std::string& t) { std::ofstream(t + "/a") << "one"; });
  train::write_checkpoint_dir(dir, [](const std::string& t) { std::ofstream(t + "/a") << "two"; });
  std::ifstream f(dir + "/a");
  std::string s;
  f >> s;
  CHECK(s == "two");
  CHECK_THROWS(train::write_checkpoint_dir(dir, [](const std::string&) { throw std::runtime_error("x"); }));
  std::ifstream g(dir + "/a");
  g >> s;
  CHECK(s == "two");
  std::size_t entries = 0;
  for (auto& e : fs::directory_iterator(out)) entries += e.path().filename().string()[0] != 'X';
  CHECK(entries == 1);  // no temporary directories left
  train::write_checkpoint_dir((out / "checkpoint-20").string(), [](const std::string&) {});
  train::write_checkpoint_dir((out / "checkpoint-3").string(), [](const std::string&) {});
  CHECK(fs::path(train::latest_checkpoint(out.string())).filename() == "checkpoint-20");
  train::prune_checkpoints(out.string(), 1);
  CHECK_FALSE(fs::exists(out / "checkpoint-10"));
  CHECK(fs::exists(out / "checkpoint-20"));
  fs::remove_all(out);
}

TEST_CASE("epoch order is a deterministic permutation") {
  auto a = train::epoch_order(10, 42, 0), b = train::epoch_order(10, 42, 0), c = train::epoch_order(10, 42, 1);
  CHECK(a == b);
  CHECK(a != c);
  std::sort(c.begin(), c.end());
  CHECK(c == train::epoch_order(10, 0, 0, false));
}
