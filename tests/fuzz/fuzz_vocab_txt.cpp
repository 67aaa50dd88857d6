// vocab.txt (text/wordpiece.cpp): one token per line; then BERT tokenization of a fixed text.
#include "fuzz_common.h"
#include "hse/text/wordpiece.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = hse_fuzz::scratch_file(hse_fuzz::bytes(data, size), "_vocab.txt");
  hse_fuzz::refused_or_parsed([&] {
    const auto t = hse::text::WordPieceTokenizer::from_file(path);
    const auto e = t.encode("The lungs are clear. No pleural effusion (12 mm).", 32, true, true);
    (void)t.decode(e.ids, true);
  });
  return 0;
}
