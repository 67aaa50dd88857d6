// Predictions JSONL (eval/inputs.cpp read_predictions): JSON per line, ids as strings or numbers,
// "prediction" and optional "reference"; and the same bytes as a references JSONL.
#include <sstream>

#include <nlohmann/json.hpp>

#include "fuzz_common.h"
#include "hse/eval/inputs.h"
#include "hse/eval/inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text = hse_fuzz::bytes(data, size);
  hse_fuzz::refused_or_parsed([&] {
    std::istringstream in(text);
    for (const auto& p : hse::eval::read_predictions(in, "fuzz.jsonl"))
      (void)(p.id.size() + p.prediction.size() + p.reference.size());
  });
  hse_fuzz::refused_or_parsed([&] {
    std::istringstream in(text);
    std::size_t n = 0;
    hse::eval::for_each_jsonl(in, "refs.jsonl", [&](const nlohmann::json& j, std::size_t) { n += j.size(); });
  });
  return 0;
}
