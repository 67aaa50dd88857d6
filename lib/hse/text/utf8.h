// UTF-8 <-> code points with Python's semantics, for text that must be processed exactly as
// Python's str does (metrics parity, tokenizers).
#pragma once

#include <string>
#include <string_view>

namespace hse::text {

// Decodes UTF-8 as Python's str.decode("utf-8", "surrogateescape"): an invalid byte b
// becomes U+DC00+b, so nothing is lost and encoding gives the same bytes back.
std::u32string utf8_decode(std::string_view s);
// Appends the UTF-8 encoding of `cp` (U+DC80..U+DCFF: the escaped byte itself).
void utf8_append(std::string& out, char32_t cp);
std::string utf8_encode(const std::u32string& s);
// Python's str.isspace() for one code point (what str.split() and str.strip() use).
bool py_isspace(char32_t c);

}  // namespace hse::text
