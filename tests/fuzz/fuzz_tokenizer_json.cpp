// tokenizer.json (text/bpe.cpp): model, added tokens, normalizer, pre-tokenizer regexes,
// post-processor and decoder; then encode/decode a fixed text in both modes.
#include "fuzz_common.h"
#include "hse/text/bpe.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  hse_fuzz::refused_or_parsed([&] {
    const auto t = hse::text::BpeTokenizer::from_json(hse_fuzz::bytes(data, size), "fuzz/tokenizer.json");
    const std::string text = "The lungs are clear. 12 mm nodule, non-specific <|endoftext|>\n\n";
    const auto ids = t.encode(text, true);
    (void)t.decode(ids, true);
    (void)t.decode(ids, false);
    hse_fuzz::refused_or_parsed([&] {
      const auto s = t.with_mode(hse::text::BpeMode::slow);
      (void)s.decode(s.encode(text));
    });
  });
  return 0;
}
