#include <doctest/doctest.h>

#include <sstream>

#include <CLI/CLI.hpp>

#include "hse/cli/cli.h"
#include "hse/io/csv.h"

using namespace hse;

namespace {
int run_tool(const std::vector<std::string>& args, std::string& out, std::string& err, int& threads) {
  cli::Common c;
  std::istringstream in;
  std::ostringstream o, e;
  cli::Io io{in, o, e};
  const int rc = cli::run(
      "hse-test", "test tool", args, [&](CLI::App& app) { cli::add_common(app, c, cli::kOutputRequired | cli::kThreads | cli::kShard); },
      [&](cli::Io&) -> int {
        threads = c.threads;
        if (c.output == "boom") cli::fail_input("in.nii", "truncated");
        return 0;
      },
      io);
  out = o.str();
  err = e.str();
  return rc;
}
}  // namespace

TEST_CASE("run(): help, version, usage errors, typed errors") {
  std::string out, err;
  int t = -1;
  CHECK(run_tool({"--help"}, out, err, t) == 0);
  CHECK(out.find("--output") != std::string::npos);
  CHECK(run_tool({"--version"}, out, err, t) == 0);
  CHECK(out.find("hse-test") == 0);
  CHECK(out.find("HDF5") != std::string::npos);
  CHECK(run_tool({"-o", "x", "--bogus"}, out, err, t) == 2);
  CHECK(err.find("hse-test: ") == 0);
  CHECK(run_tool({}, out, err, t) == 2);
  CHECK(run_tool({"-o", "x", "--shard", "3/2"}, out, err, t) == 2);
  CHECK(run_tool({"-o", "boom"}, out, err, t) == 3);
  CHECK(err == "hse-test: in.nii: truncated\n");
  CHECK(run_tool({"-o", "x", "--threads", "3"}, out, err, t) == 0);
  CHECK(t == 3);
}

TEST_CASE("shards cover the items in contiguous blocks") {
  std::size_t covered = 0, prev_end = 0;
  for (int i = 0; i < 3; ++i) {
    auto [b, e] = cli::Shard::parse(std::to_string(i) + "/3").range(10);
    CHECK(b == prev_end);
    prev_end = e;
    covered += e - b;
  }
  CHECK(covered == 10);
}

TEST_CASE("csv: quotes, embedded commas and newlines, field counts") {
  auto t = io::parse_csv("VolumeName,XYSpacing,Note\r\na.nii.gz,\"[0.7, 0.7]\",\"say \"\"hi\"\"\nthere\"\n", "m.csv");
  REQUIRE(t.rows.size() == 1);
  CHECK(t.rows[0][1] == "[0.7, 0.7]");
  CHECK(t.rows[0][2] == "say \"hi\"\nthere");
  CHECK(io::csv_row({"a,b", "c"}) == "\"a,b\",c\n");
  CHECK_THROWS_AS(io::parse_csv("a,b\n1,2,3\n", "bad.csv"), cli::Error);
  try {
    io::parse_csv("a,b\n1,2,3\n", "bad.csv");
  } catch (const cli::Error& e) {
    CHECK(e.line() == "bad.csv: line 2: 3 fields, the header has 2");
  }
}
