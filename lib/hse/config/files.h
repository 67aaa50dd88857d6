// The config files of adapters and VLM checkpoints: reading a JSON input file with one-line input
// errors naming it, and writing a text file atomically.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/io/atomic.h"

namespace hse::model {

// Parses the JSON file `path`, or `<path>/<default_name>` when `path` is a directory; `file` receives
// the path read. A file that cannot be opened fails with "cannot read the <what>", one that does not
// parse with "not valid JSON: ..." (cli::fail_input, naming the file).
inline nlohmann::json read_json_input(const std::string& path, const char* default_name, const char* what,
                                      std::string& file) {
  std::filesystem::path p(path);
  if (std::filesystem::is_directory(p)) p /= default_name;
  file = p.string();
  std::ifstream f(p);
  if (!f) cli::fail_input(file, "cannot read the {}", what);
  try {
    return nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    cli::fail_input(file, "not valid JSON: {}", e.what());
  }
}

// Writes text to `path` atomically (io::AtomicFile: a registered temporary name beside it, removed
// on a signal and by --resume after a kill, then a rename); a failed write exits with a runtime error.
inline void write_text_atomic(const std::filesystem::path& path, const std::string& text) {
  io::AtomicFile f(path.string(), /*binary=*/true);
  f.stream() << text;
  f.commit();
}

}  // namespace hse::model
