// Atomic outputs: every file hse writes is first written under a temporary
// name in the destination directory and renamed into place only when complete,
// so an interrupted or failed run never leaves a half-written output.
#pragma once

#include <fstream>
#include <string>

namespace hse::io {

// A temporary path beside `final_path` (same directory, so rename is atomic).
// The path is registered for removal if the process is killed by a signal.
std::string make_temp_path(const std::string& final_path);
void forget_temp_path(const std::string& temp_path);

// Renames temp -> final (throws hse::cli::Error naming `final_path` on failure).
void commit_temp(const std::string& temp_path, const std::string& final_path);

// Checks that the directory of `path` exists and is writable; throws a
// one-line error (exit 1) naming `path` otherwise. Call before long work.
void check_writable(const std::string& path);

// Checks that the directory `dir` exists or can be created: it is a directory, or its nearest
// existing ancestor is a writable directory. Throws a one-line error (exit 1) naming `dir`
// otherwise. Call before long work that ends by writing into `dir`.
void check_output_dir(const std::string& dir);

// Installs SIGINT/SIGTERM/SIGHUP handlers that remove registered temporary
// files and then re-raise the signal.
void install_cleanup_handlers();

// A text file written atomically: write to stream(), then commit().
// Destroyed without commit(), the temporary file is removed.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path, bool binary = false);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  std::ostream& stream() { return os_; }
  void commit();
  const std::string& path() const { return path_; }

 private:
  std::string path_, temp_;
  std::ofstream os_;
  bool done_ = false;
};

// Reads a whole file into memory (throws an input error naming the file).
std::string read_file(const std::string& path);

}  // namespace hse::io
