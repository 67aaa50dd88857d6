#include "hse/io/atomic.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <vector>

#include "hse/cli/cli.h"

namespace fs = std::filesystem;

namespace hse::io {
namespace {
// A fixed table of temp paths that a signal handler can walk without locks.
constexpr int kMaxTemps = 64;
constexpr int kMaxPath = 4096;
char g_temps[kMaxTemps][kMaxPath];
std::atomic<bool> g_used[kMaxTemps];
std::mutex g_mutex;

void on_signal(int sig) {
  for (int i = 0; i < kMaxTemps; ++i)
    if (g_used[i].load()) ::unlink(g_temps[i]);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}
}  // namespace

std::string make_temp_path(const std::string& final_path) {
  const fs::path p(final_path);
  static std::atomic<unsigned> counter{0};
  std::random_device rd;
  const std::string name = "." + p.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                           std::to_string(counter++) + "-" + std::to_string(rd() % 100000);
  const std::string tmp = (p.parent_path() / name).string();
  std::lock_guard<std::mutex> lk(g_mutex);
  if (tmp.size() < kMaxPath) {
    for (int i = 0; i < kMaxTemps; ++i) {
      if (!g_used[i].load()) {
        std::memcpy(g_temps[i], tmp.c_str(), tmp.size() + 1);
        g_used[i].store(true);
        break;
      }
    }
  }
  return tmp;
}

void forget_temp_path(const std::string& temp_path) {
  std::lock_guard<std::mutex> lk(g_mutex);
  for (int i = 0; i < kMaxTemps; ++i)
    if (g_used[i].load() && temp_path == g_temps[i]) g_used[i].store(false);
}

void commit_temp(const std::string& temp_path, const std::string& final_path) {
  if (std::rename(temp_path.c_str(), final_path.c_str()) != 0) {
    const int e = errno;
    std::remove(temp_path.c_str());
    forget_temp_path(temp_path);
    cli::fail(cli::Exit::runtime, final_path, "cannot write output: {}", std::strerror(e));
  }
  forget_temp_path(temp_path);
}

void check_writable(const std::string& path) {
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    cli::fail(cli::Exit::runtime, path, "cannot write output: '{}' is not a directory", dir.string());
  if (!fs::is_directory(dir, ec))
    cli::fail(cli::Exit::runtime, path, "cannot write output: directory '{}' does not exist", dir.string());
  if (::access(dir.c_str(), W_OK) != 0)
    cli::fail(cli::Exit::runtime, path, "cannot write output: directory '{}' is not writable", dir.string());
  if (fs::is_directory(path, ec)) cli::fail(cli::Exit::runtime, path, "cannot write output: it is a directory");
}

void check_output_dir(const std::string& dir) {
  std::error_code ec;
  fs::path p = fs::absolute(dir, ec).lexically_normal();
  if (ec) cli::fail(cli::Exit::runtime, dir, "cannot write output: {}", ec.message());
  fs::path existing = p;
  while (!fs::exists(existing, ec) && existing.has_parent_path() && existing != existing.parent_path())
    existing = existing.parent_path();
  if (!fs::is_directory(existing, ec))
    cli::fail(cli::Exit::runtime, dir, "cannot write output: '{}' is not a directory", existing.string());
  if (::access(existing.c_str(), W_OK) != 0)
    cli::fail(cli::Exit::runtime, dir, "cannot write output: directory '{}' is not writable", existing.string());
}

void install_cleanup_handlers() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) std::signal(sig, on_signal);
}

AtomicFile::AtomicFile(std::string path, bool binary) : path_(std::move(path)) {
  check_writable(path_);
  temp_ = make_temp_path(path_);
  os_.open(temp_, binary ? std::ios::binary | std::ios::out : std::ios::out);
  if (!os_) {
    forget_temp_path(temp_);
    cli::fail(cli::Exit::runtime, path_, "cannot write output: {}", std::strerror(errno));
  }
}

AtomicFile::~AtomicFile() {
  if (!done_) {
    os_.close();
    std::remove(temp_.c_str());
    forget_temp_path(temp_);
  }
}

void AtomicFile::commit() {
  os_.flush();
  const bool ok = os_.good();
  os_.close();
  if (!ok) cli::fail(cli::Exit::runtime, path_, "cannot write output: write failed (disk full?)");
  commit_temp(temp_, path_);
  done_ = true;
}

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) cli::fail_input(path, "no such file");
  if (fs::is_directory(path, ec)) cli::fail_input(path, "is a directory, expected a file");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) cli::fail_input(path, "cannot open: {}", std::strerror(errno));
  std::string data;
  char buf[1 << 16];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.append(buf, n);
  const bool err = std::ferror(f);
  std::fclose(f);
  if (err) cli::fail_input(path, "read error");
  return data;
}

}  // namespace hse::io
