#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <chrono>
#include <sstream>
#include <thread>

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
        // LibTorch's c10::Error what(): the message, then the C++ backtrace on further lines.
        if (c.output == "torch")
          throw std::runtime_error(
              "index out of range in self\nException raised from operator() at aten/src/ATen/native/TensorAdvancedIndexing.cpp:1234 "
              "(most recent call first):\nframe #0: c10::Error::Error(c10::SourceLocation, std::string) + 0x96\n"
              "frame #1: at::native::index_select_out_cpu_ + 0x1f0\n");
        if (c.output == "oom")
          throw std::runtime_error("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                                   "you tried to allocate 2199023255552 bytes. Error code 12 (Cannot allocate memory)\n"
                                   "frame #0: c10::ThrowEnforceNotMet + 0x3a");
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
  // A library's exception: one line without LibTorch's backtrace; exit 1, or 4 for memory.
  CHECK(run_tool({"-o", "torch"}, out, err, t) == 1);
  CHECK(err == "hse-test: index out of range in self\n");
  CHECK(run_tool({"-o", "oom"}, out, err, t) == 4);
  CHECK(err.rfind("hse-test: out of memory: ", 0) == 0);
  CHECK(err.find("frame #") == std::string::npos);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
}

TEST_CASE("logging: a progress bar is cleared before a log line; warnings once, none under -q") {
  std::ostringstream sink;
  cli::set_log("hse-test", 0, &sink);
  {
    cli::Progress p("work", 10, cli::ProgressMode::always);
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    p.tick();  // draws the bar in place, no newline
    REQUIRE(sink.str().find("[###") != std::string::npos);
    REQUIRE(sink.str().back() != '\n');
    cli::info("step {} loss {}", 1, 2.5);
    // The log line starts on a cleared line, never after the bar's text.
    CHECK(sink.str().find("\r\033[Khse-test: step 1 loss 2.5\n") != std::string::npos);
    sink.str("");
    cli::info("next");  // no bar shown since: nothing to clear
    CHECK(sink.str() == "hse-test: next\n");
  }
  sink.str("");
  cli::warn("{}: no spacing", "a.nii");
  cli::warn("{}: no spacing", "a.nii");
  cli::warn("{}: no spacing", "b.nii");
  CHECK(sink.str() == "hse-test: warning: a.nii: no spacing\nhse-test: warning: b.nii: no spacing\n");
  sink.str("");
  cli::set_log_level(-1);
  cli::warn("quiet please");
  CHECK(sink.str().empty());
  cli::set_log("hse", 0, nullptr);
}

TEST_CASE("list options take exactly their count in one argument") {
  std::array<std::int64_t, 3> size{32, 256, 256};
  std::string out;
  std::vector<std::string> cols{"Findings_EN"};
  auto parse = [&](std::vector<std::string> args) {
    std::istringstream in;
    std::ostringstream o, e;
    cli::Io io{in, o, e};
    out.clear();
    const int rc = cli::run("hse-test", "t", args,
                            [&](CLI::App& app) {
                              cli::add_list(app, "--size", size, "size", "D,H,W");
                              cli::add_list(app, "--text-columns", cols, 0, "columns", "COL[,COL...]");
                              app.add_option("-o", out);
                            },
                            [&](cli::Io&) { return 0; }, io);
    return std::make_pair(rc, e.str());
  };
  CHECK(parse({"--size", "16,64,64", "-o", "y.h5"}).first == 0);
  CHECK(size == std::array<std::int64_t, 3>{16, 64, 64});
  CHECK(out == "y.h5");
  const auto [rc, err] = parse({"--size", "16,64", "-o", "y.h5"});
  CHECK(rc == 2);
  CHECK(err.find("--size: '16,64' is not 3 comma-separated values") != std::string::npos);
  CHECK(parse({"--size", "16,64,x"}).first == 2);
  CHECK(parse({"--size", "16,64,64.5"}).first == 2);
  CHECK(parse({"--text-columns", "Findings_EN,Impressions_EN"}).first == 0);
  CHECK(cols == std::vector<std::string>{"Findings_EN", "Impressions_EN"});
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
