#include "hse/train/run_state.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <regex>
#include <cstdlib>

#include "hse/cli/cli.h"
#include "hse/io/atomic.h"
#include "hse/io/failpoint.h"

namespace fs = std::filesystem;

namespace hse::train {
namespace {
std::atomic<bool> g_stop{false};
void on_stop(int) { g_stop.store(true); }
}  // namespace

void write_checkpoint_dir(const std::string& dir, const std::function<void(const std::string&)>& fill) {
  const fs::path d(dir);
  const fs::path parent = d.parent_path().empty() ? fs::path(".") : d.parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) cli::fail(cli::Exit::runtime, dir, "cannot write output: {}", ec.message());
  const fs::path tmp = parent / ("." + d.filename().string() + ".tmp-" + std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) cli::fail(cli::Exit::runtime, dir, "cannot write output: {}", ec.message());
  try {
    fill(tmp.string());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  // Replace: move the old directory aside, rename the new one in, then delete the old.
  const fs::path old = parent / ("." + d.filename().string() + ".old-" + std::to_string(::getpid()));
  if (fs::exists(d)) fs::rename(d, old, ec);
  fs::rename(tmp, d, ec);
  if (ec) {
    fs::remove_all(tmp);
    cli::fail(cli::Exit::runtime, dir, "cannot write output: {}", ec.message());
  }
  fs::remove_all(old, ec);
  io::failpoint("checkpoint-committed");
}

namespace {
std::vector<std::pair<long, fs::path>> checkpoints(const std::string& out) {
  std::vector<std::pair<long, fs::path>> v;
  std::error_code ec;
  if (!fs::is_directory(out, ec)) return v;
  static const std::regex re("checkpoint-([0-9]+)");
  for (const auto& e : fs::directory_iterator(out, ec)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (e.is_directory() && std::regex_match(name, m, re)) v.emplace_back(std::stol(m[1]), e.path());
  }
  std::sort(v.begin(), v.end());
  return v;
}
}  // namespace

void prune_checkpoints(const std::string& out, int keep) {
  auto v = checkpoints(out);
  std::error_code ec;
  for (std::size_t i = 0; i + static_cast<std::size_t>(std::max(keep, 0)) < v.size(); ++i) fs::remove_all(v[i].second, ec);
}

std::string latest_checkpoint(const std::string& out) {
  const auto v = checkpoints(out);
  return v.empty() ? std::string() : v.back().second.string();
}

int remove_interrupted_writes(const std::string& out) {
  static const std::regex dir_re(R"(\.checkpoint-[0-9]+\.(tmp|old)-[0-9]+)");
  static const std::regex file_re(R"(\..+\.tmp-[0-9]+-[0-9]+-[0-9]+)");
  int n = 0;
  std::error_code ec;
  if (!fs::is_directory(out, ec)) return 0;
  std::vector<fs::path> stale;
  for (const auto& e : fs::directory_iterator(out, ec)) {
    const std::string name = e.path().filename().string();
    if ((e.is_directory() && std::regex_match(name, dir_re)) || (e.is_regular_file() && std::regex_match(name, file_re)))
      stale.push_back(e.path());
  }
  for (const auto& p : stale) {
    fs::remove_all(p, ec);
    if (ec) cli::fail(cli::Exit::runtime, p.string(), "cannot remove what an interrupted run left: {}", ec.message());
    cli::warn("removed {} (left by an interrupted run)", p.string());
    ++n;
  }
  return n;
}

void install_stop_handler() {
  std::signal(SIGTERM, on_stop);
  std::signal(SIGINT, on_stop);
}
bool stop_requested() { return g_stop.load(); }
void request_stop() { g_stop.store(true); }

std::vector<std::size_t> epoch_order(std::size_t n, std::uint64_t seed, long epoch, bool shuffle) {
  std::vector<std::size_t> v(n);
  std::iota(v.begin(), v.end(), 0);
  if (!shuffle) return v;
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(epoch) + 1);
  for (std::size_t i = n; i > 1; --i) std::swap(v[i - 1], v[static_cast<std::size_t>(rng() % i)]);
  return v;
}

bool end_of_step(long step, long total_steps, long save_steps, const std::function<void(bool)>& save,
                 const std::function<void()>& barrier) {
  io::failpoint("train-step");
  if (stop_requested()) {
    cli::info("stop requested (signal): saving at step {}", step);
    save(false);
    barrier();
    return true;
  }
  if (save_steps > 0 && step % save_steps == 0 && step < total_steps) save(false);
  return false;
}

struct MetricsTsv::File {
  std::ofstream out;
  std::string path;
};

MetricsTsv::MetricsTsv(const std::string& path, const std::vector<std::string>& columns, bool append,
                       long keep_through_step) {
  if (path.empty()) return;
  std::error_code ec;
  if (append && keep_through_step >= 0 && fs::is_regular_file(path, ec)) {
    std::ifstream in(path);
    std::string text, l;
    long dropped = 0;
    while (std::getline(in, l)) {
      const std::string first = l.substr(0, l.find('\t'));
      char* end = nullptr;
      const long s = std::strtol(first.c_str(), &end, 10);
      const bool numeric = !first.empty() && end && *end == '\0';
      if (numeric && s > keep_through_step) {
        ++dropped;
        continue;
      }
      text += l + '\n';
    }
    if (dropped > 0) {
      io::AtomicFile f(path);
      f.stream() << text;
      f.commit();
      cli::warn("{}: dropped {} line{} after step {} (logged after the last checkpoint of an interrupted run)", path,
                dropped, dropped == 1 ? "" : "s", keep_through_step);
    }
  }
  const bool fresh = !append || !std::filesystem::exists(path, ec) || std::filesystem::file_size(path, ec) == 0;
  f_ = std::make_unique<File>();
  f_->path = path;
  f_->out.open(path, append ? std::ios::app : std::ios::trunc);
  if (!f_->out) cli::fail(cli::Exit::runtime, path, "cannot write the metrics file");
  if (fresh) {
    std::string h;
    for (const auto& c : columns) h += (h.empty() ? "" : "\t") + c;
    line(h);
  }
}
MetricsTsv::~MetricsTsv() = default;
MetricsTsv::MetricsTsv(MetricsTsv&&) noexcept = default;
MetricsTsv& MetricsTsv::operator=(MetricsTsv&&) noexcept = default;

void MetricsTsv::line(const std::string& s) {
  if (!f_) return;
  f_->out << s << '\n';
  f_->out.flush();
  if (!f_->out) cli::fail(cli::Exit::runtime, f_->path, "cannot write the metrics file (disk full?)");
}

}  // namespace hse::train
