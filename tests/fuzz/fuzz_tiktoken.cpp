// tiktoken ranks ("base64(token) rank" lines) with a fixed o200k-like meta JSON.
#include "fuzz_common.h"
#include "hse/text/bpe.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string ranks = hse_fuzz::scratch_file(hse_fuzz::bytes(data, size), "_ranks.tiktoken");
  const std::string meta = hse_fuzz::scratch_file(
      R"({"pat_str": "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",)"
      R"( "special_tokens": {"<|endoftext|>": 199999}})",
      "_meta.json");
  hse_fuzz::refused_or_parsed([&] {
    const auto t = hse::text::BpeTokenizer::from_tiktoken(ranks, meta);
    (void)t.decode(t.encode("The lungs are clear, 2024."));
  });
  return 0;
}
