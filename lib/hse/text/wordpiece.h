// BERT WordPiece tokenizer with the semantics of HF transformers' slow (Python)
// BertTokenizer: `BertTokenizerLegacy` in transformers 5, `BertTokenizer` in 4.x, built as
// BertTokenizer(vocab_file, do_lower_case=True) with the default special tokens
// (tokenize_chinese_chars=True, strip_accents=None, clean_up_tokenization_spaces=True).
//
// tokenize(text), in order (all character properties from unicode_tables.h, i.e. Python's
// unicodedata, Unicode 14):
//  1. the raw text is cut at every occurrence of a special token present in the vocabulary
//     ([PAD] [UNK] [CLS] [SEP] [MASK], case-sensitive); those are emitted as they are
//     (transformers' added-token trie);
//  2. each other piece goes through BasicTokenizer: drop U+0000, U+FFFD and every category C*
//     code point (Cc, Cf, Cs, Co, Cn: unassigned too) except \t \n \r; map \t \n \r and Zs to
//     " "; surround the CJK ideographs of _is_chinese_char with spaces; NFC; split on Python
//     whitespace; per word (unless it equals a special token): Python str.lower() (with
//     U+0130 -> "i\u0307" and the final-sigma rule), NFD, drop Mn; split off every
//     punctuation character (ASCII 33-47, 58-64, 91-96, 123-126, or category P*);
//  3. each word goes through WordpieceTokenizer: [UNK] when longer than 100 code points,
//     else greedy longest-match-first with "##" continuation pieces, [UNK] when some
//     remainder matches nothing.
//
// The differences from transformers 5's BertTokenizer (the Rust "fast" one) are those of the
// fast tokenizer: it lowercases Σ to σ always (no final sigma) and decodes without the
// clean-up by default; see tests/parity/test_wordpiece.py.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace hse::text {

struct Encoding {
  std::vector<int64_t> ids, attention_mask, token_type_ids;
};

class WordPieceTokenizer {
 public:
  // Loads vocab.txt (one token per line, id = line index; lines end in \n, \r\n or \r as
  // Python's universal newlines; a token repeated later gets the later id). Throws
  // cli::Error (exit 3, naming the file) when the file is missing, unreadable, empty, not
  // UTF-8, or lacks [UNK], [CLS], [SEP] or [PAD].
  static WordPieceTokenizer from_file(const std::string& vocab_path);
  // The same from the lines themselves (`source` names them in errors).
  WordPieceTokenizer(std::vector<std::string> tokens, const std::string& source = "<vocab>");

  // The tokens of `text` (UTF-8; invalid bytes are category Cs, hence dropped), no [CLS]/[SEP].
  std::vector<std::string> tokenize(const std::string& text) const;
  // Step 2 alone (BasicTokenizer.tokenize with never_split = the special tokens).
  std::vector<std::string> basic_tokenize(const std::string& text) const;
  // Step 3 alone, for one word of step 2.
  std::vector<std::string> wordpiece(const std::string& word) const;

  // [CLS] + tokens + [SEP] as the tokenizer's __call__ with padding="max_length",
  // truncation=True (HSENet): with `truncate`, the tokens are cut to max_length - 2; with
  // `pad_to_max`, [PAD] ids (mask 0) fill up to max_length. token_type_ids are all 0.
  // Throws std::invalid_argument when truncating to max_length < 2.
  Encoding encode(const std::string& text, int max_length = 512, bool pad_to_max = true,
                  bool truncate = true) const;
  std::vector<Encoding> encode_batch(const std::vector<std::string>& texts, int max_length = 512,
                                     bool pad_to_max = true, bool truncate = true) const;
  // The number of ids encode() gives without truncation or padding: tokenize(text).size() + 2
  // (len(tokenizer.encode(text, add_special_tokens=True))).
  std::size_t count_tokens(const std::string& text) const { return tokenize(text).size() + 2; }

  // BertTokenizer.decode: ids -> tokens (an unknown id -> [UNK]), special tokens dropped
  // when asked, " ".join, " ##" removed, strip(), then (clean_up_tokenization_spaces, the
  // slow tokenizer's default) " ." " ?" " !" " ," -> without the space, " ' " -> "'",
  // " n't" " 'm" " 's" " 've" " 're" -> without the space.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = false,
                     bool clean_up_tokenization_spaces = true) const;

  int64_t token_to_id(const std::string& token) const;  // [UNK]'s id when absent
  const std::string& id_to_token(int64_t id) const;     // "[UNK]" when out of range/shadowed
  std::size_t vocab_size() const { return tokens_.size(); }
  int64_t pad_id() const { return pad_id_; }
  int64_t unk_id() const { return unk_id_; }
  int64_t cls_id() const { return cls_id_; }
  int64_t sep_id() const { return sep_id_; }
  int64_t mask_id() const { return mask_id_; }  // -1 when the vocabulary has no [MASK]

 private:
  bool is_special(const std::u32string& word) const;
  void basic_tokenize_into(const std::u32string& text, std::vector<std::string>& out) const;

  std::vector<std::string> tokens_;                // by id
  std::unordered_map<std::string, int64_t> vocab_;  // token -> id (last occurrence)
  std::vector<std::string> specials_;              // special tokens present in the vocabulary
  std::vector<std::u32string> specials_u32_;
  std::size_t max_token_chars_ = 0;                // longest vocabulary entry, in code points
  int64_t pad_id_ = -1, unk_id_ = -1, cls_id_ = -1, sep_id_ = -1, mask_id_ = -1;
};

// Python-semantics Unicode helpers over code points (tables from unicode_tables.h).
std::u32string nfd(const std::u32string& s);
std::u32string nfc(const std::u32string& s);
std::u32string py_lower_u32(const std::u32string& s);  // str.lower(), final sigma included

// HSENet's text cleaning before tokenizing: removes every ", ', ( and ).
std::string hsenet_clean(const std::string& text);

// HSENet's truncate_text (M3D's CapDataset/ITRDataset.truncate_text) with
// count_tokens(t) = len(tokenizer.encode(t)) (special tokens included, no truncation):
//   if count_tokens(text) <= max_tokens: return text
//   sentences = text.split(".")          # Python str.split: empty pieces kept
//   selected = [sentences.pop(0)]; current = 0   # the first sentence is NOT counted
//   while current <= max_tokens and sentences:
//       s = random.choice(sentences); n = count_tokens(s)
//       if current + n <= max_tokens and s not in selected: selected.append(s); current += n
//       else: sentences.remove(s)        # the first equal element
//   return ".".join(selected)
// The random stream is Python's: random.seed(seed) (MT19937 seeded by init_by_array over
// the 32-bit words of |seed|) and random.choice = _randbelow via getrandbits, so the result
// equals Python's `random.seed(seed); truncate_text(text, max_tokens)`. As in HSENet, the
// result can exceed max_tokens (the first sentence is not counted and every count includes
// [CLS]/[SEP]); the encoder's truncation cuts it afterwards.
std::string hsenet_truncate(const std::string& text, const WordPieceTokenizer& tokenizer, int max_tokens,
                            uint64_t seed);

// Python's random module, enough for hsenet_truncate: MT19937 seeded as random.seed(int).
class PyRandom {
 public:
  explicit PyRandom(uint64_t seed);
  uint32_t genrand_uint32();
  uint64_t getrandbits(int k);  // 0 < k <= 64
  uint64_t randbelow(uint64_t n);  // random._randbelow_with_getrandbits, n > 0

 private:
  uint32_t mt_[624];
  int index_ = 625;
};

// hsenet_truncate drawing from `rng`: one stream over many texts, as HSENet's retrieval scripts
// call truncate_text on each report in turn after random.seed(42).
std::string hsenet_truncate(const std::string& text, const WordPieceTokenizer& tokenizer, int max_tokens,
                            PyRandom& rng);


}  // namespace hse::text
