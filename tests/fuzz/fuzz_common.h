// libFuzzer targets for the parsers hse wrote (issue 17). Each fuzz_<name>.cpp defines
// LLVMFuzzerTestOneInput; a parser may refuse an input only with hse::cli::Error (the tools'
// one-line error and exit code). Anything else, an uncaught exception of another type, a crash
// or a sanitizer report, is a finding. `make fuzz` builds the targets with clang and
// -fsanitize=fuzzer,address,undefined; ctest runs every target over its corpus
// (tests/fuzz/corpus/<name>/: seeds and every regression input found) with the normal build
// (regress_main.cpp).
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "hse/cli/cli.h"

namespace hse_fuzz {

inline std::string bytes(const std::uint8_t* data, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// A per-process scratch file holding `content` (for parsers that read paths).
inline std::string scratch_file(const std::string& content, const std::string& suffix) {
  const std::string path = "/tmp/hse_fuzz_" + std::to_string(::getpid()) + suffix;
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(content.data(), static_cast<std::streamsize>(content.size()));
  return path;
}

// Runs `fn`; the parser's documented refusal (cli::Error) is a normal outcome.
template <class F>
void refused_or_parsed(F&& fn) {
  try {
    fn();
  } catch (const hse::cli::Error&) {
  }
}

}  // namespace hse_fuzz
