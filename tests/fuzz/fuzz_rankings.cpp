// The rankings TSV of hse-retrieve as hse-eval retrieval reads it (eval/inputs.cpp read_rankings),
// and the --pairs TSV (read_pairs).
#include <sstream>

#include "fuzz_common.h"
#include "hse/eval/inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text = hse_fuzz::bytes(data, size);
  hse_fuzz::refused_or_parsed([&] {
    std::istringstream in(text);
    const auto r = hse::eval::read_rankings(in, "fuzz.tsv");
    if (r.items.size() != r.queries.size()) __builtin_trap();
  });
  hse_fuzz::refused_or_parsed([&] {
    std::istringstream in(text);
    (void)hse::eval::read_pairs(in, "pairs.tsv").size();
  });
  return 0;
}
