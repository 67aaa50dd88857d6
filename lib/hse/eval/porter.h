// hse::eval — nltk's PorterStemmer (mode NLTK_EXTENSIONS, the default that
// nltk.translate.meteor_score uses) and the two bits of Python string semantics
// that nltk's METEOR depends on: str.lower() and str.split().
//
// Strings are UTF-8. Like Python, the stemmer works on code points (a "letter"
// is one code point; only a, e, i, o, u and y are special). Bytes that are not
// valid UTF-8 are carried through unchanged (Python's surrogateescape).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hse::eval {

// Python 3.11's str.lower(): the full Unicode 14 lowercase mapping, including
// U+0130 -> "i\u0307" and the Final_Sigma rule for U+03A3.
std::string py_lower(std::string_view utf8);

// Python's str.split() with no argument: split on runs of Unicode whitespace
// (str.isspace()), dropping empty pieces.
std::vector<std::string> py_split(std::string_view utf8);

// nltk.stem.porter.PorterStemmer() (NLTK_EXTENSIONS), stem(word, to_lowercase=True).
class PorterStemmer {
 public:
  std::string stem(const std::string& word) const;
};

}  // namespace hse::eval
