// Byte-level BPE tokenizer with the semantics of the Hugging Face `tokenizers` package
// (Rust, 0.23): reads a `tokenizer.json` and gives the ids and decoded text that
// `Tokenizer.from_file(path).encode(text, add_special_tokens=...).ids` and
// `.decode(ids, skip_special_tokens=...)` give. It is meant for the GPT-2-style byte-level BPE
// family (GPT-2, RoBERTa, the tiktoken conversions such as Phi-4-mini's o200k-based one, Llama 3);
// tested against tokenizers and tiktoken in tests/parity/test_bpe.py on GPT-2-style files
// trained by tokenizers and on o200k_base with Phi-4-mini-like special tokens. Phi-3 (and Llama 2,
// Mistral) use the sentencepiece-like BPE (normalizer Prepend/Replace "▁", byte_fallback, a
// Sequence decoder): those files are refused at load time (the unsupported normalizer or
// decoder is named).
//
// Supported (anything else in the file is refused with cli::Error, exit 3, naming the file):
//   model          type "BPE": vocab, merges as "a b" strings or [a, b] pairs, ignore_merges,
//                  continuing_subword_prefix, end_of_word_suffix, unk_token + fuse_unk,
//                  byte_fallback (<0xXX> tokens), dropout null or 0 (dropout > 0 is refused:
//                  it is random). Duplicate merges: the later rank wins (as tokenizers).
//   added_tokens   id, content, special, single_word, lstrip, rstrip, normalized. Ids are
//                  assigned exactly as tokenizers' AddedVocabulary::add_tokens does on load:
//                  a content already in the model vocab keeps that id, others are numbered on
//                  from max(model vocab size, max added id + 1) in list order; the ids written
//                  in the file are not trusted (tokenizers only warns about them).
//                  Matching: leftmost-longest over the raw text for normalized=false tokens,
//                  then over the normalized remaining pieces for normalized=true ones;
//                  single_word uses Rust regex's \w, lstrip/rstrip its \s (Unicode
//                  White_Space). When an rstrip match swallows the start of the next match
//                  both tokens are emitted, as tokenizers' find_matches would (tokenizers
//                  itself may panic there with "AddedVocabulary bad split").
//   normalizer     null, NFC, NFD, Sequence of those (tables: Python's unicodedata, Unicode 14).
//   pre_tokenizer  null, ByteLevel (add_prefix_space, use_regex with the GPT-2 pattern),
//                  Split (pattern Regex or String; behavior Removed, Isolated,
//                  MergedWithPrevious, MergedWithNext, Contiguous; invert), Sequence of those.
//                  Regexes are compiled with PCRE2 (UTF, UCP, MULTILINE as Oniguruma's Ruby
//                  syntax has ^ and $; JIT when available) after rewriting \s and \S to
//                  \p{White_Space} / \P{White_Space} (Oniguruma's \s; PCRE2 10.42's \s also
//                  takes U+180E). Other Oniguruma-only syntax (\h as hex digit, (?m) as
//                  dot-all) is not translated; \w \d \b keep PCRE2's UCP meaning.
//   post_processor null, ByteLevel (ids unchanged), TemplateProcessing (its "single"
//                  template), BertProcessing and RobertaProcessing ([cls] A [sep]), Sequence.
//                  They add ids only when encode(..., add_special_tokens=true).
//   decoder        null (tokens joined by " ") or ByteLevel (also as the only member of a
//                  Sequence) (each token's characters mapped
//                  back to bytes through the GPT-2 byte<->unicode table, a token with a
//                  character outside that table taken as its UTF-8 bytes; the bytes then
//                  decoded as Rust's String::from_utf8_lossy: each maximal invalid subpart
//                  becomes U+FFFD). Ids not in the vocabulary are skipped, as tokenizers does.
//   truncation / padding are ignored (callers cut and pad ids themselves).
//   Model vocab ids must be dense enough (max id <= 4 * vocab size + 65536) and < 2^31 - 1.
// Needs PCRE2 >= 10.40 (checked at compile time).
// Differences from tokenizers:
//   - Invalid UTF-8 input (which Python's str cannot carry) is first made valid as Python's
//     bytes.decode("utf-8", "replace") / Rust's from_utf8_lossy do (each maximal invalid
//     subpart -> U+FFFD); the ids are then those of tokenizers for that text. Invalid UTF-8
//     never throws (encode() throws std::runtime_error only for an unk_token missing from the
//     vocab, as tokenizers errors, or a PCRE2 matching limit).
//   - Unicode data: PCRE2 10.42 and the normalizer tables are Unicode 14. Where tokenizers'
//     Oniguruma has newer tables, code points assigned after Unicode 14 may pre-tokenize
//     differently (the parity test found no difference over U+0000..U+2FFFF).
//   - Offsets, type ids, attention masks, pairs of sequences are not produced (ids only).
//
// The tokenizer is immutable after construction except add_special_tokens(); encode(),
// decode() and encode_batch() are thread-safe (a per-word cache of up to 100k words is shared
// under a lock). It is move-only. Speed (o200k, one core): about 0.07 s for 1 MB of report
// text, 0.4 s for 1 MB of unique random words; loading: 0.9 s for a 200k-vocab tokenizer.json,
// 1.4 s from the tiktoken file.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hse::text {

// GPT-2's pre-tokenisation pattern (tokenizers' ByteLevel use_regex=true).
inline constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// How a tokenizer.json is read (--tokenizer-mode):
//   fast  as `tokenizers` (and transformers' use_fast=True) reads it;
//   slow  as transformers' slow GPT-2-family classes (GPT2Tokenizer, RobertaTokenizer; what
//         AutoTokenizer(use_fast=False) gave before transformers 5, e.g. HSENet's Phi-4-mini) run
//         the same vocabulary and merges: no normalizer; GPT-2's fixed pre-tokenizer regex
//         (kGpt2Pattern) instead of the file's pre_tokenizer (o200k's split pattern, for one);
//         the merges applied to every piece (no whole-piece lookup: ignore_merges off); no
//         post-processor; every added token matched on the raw text. Byte-level files only.
//         Differences from fast o200k: "non-specific" -> non,-,specific (fast: non,-specific);
//         "patient's" -> patient,'s; ".\n\n" -> .,\n,\n; "ground-glass" -> ground,-,glass.
enum class BpeMode { fast, slow };
const char* bpe_mode_name(BpeMode m);  // "fast" / "slow"
BpeMode parse_bpe_mode(const std::string& s);  // throws std::invalid_argument for anything else

struct BpeAddedToken {
  int64_t id = -1;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

class BpeTokenizer {
 public:
  // Loads a Hugging Face tokenizer.json. Throws cli::Error (exit 3, naming `path`): missing or
  // unreadable file, malformed JSON, "unsupported tokenizer model type X", an unsupported
  // normalizer / pre_tokenizer / post_processor / decoder (named), a merge naming a token
  // that is not in the vocabulary, an invalid regex.
  static BpeTokenizer from_file(const std::string& path);
  // The same file in `mode` (see BpeMode). slow also needs a byte-level file (a ByteLevel
  // pre-tokenizer or decoder), else cli::Error exit 3. add_prefix_space (slow only): one space
  // is put before the text, as the slow classes' add_prefix_space=True does (bert-score encodes
  // RoBERTa input so).
  static BpeTokenizer from_file(const std::string& path, BpeMode mode, bool add_prefix_space = false);
  // This tokenizer (its to_json()) read again in `mode`.
  BpeTokenizer with_mode(BpeMode mode, bool add_prefix_space = false) const;
  // A slow GPT-2-family tokenizer from the two files the slow classes read: vocab.json
  // ({token: id}) and merges.txt ("a b" per line; a first line starting "#version" is skipped).
  // `specials`: contents of vocab.json (e.g. RoBERTa's <s> </s> <unk> <pad> <mask>) that are
  // matched as special added tokens; a content not in the vocabulary is refused (exit 3).
  static BpeTokenizer from_vocab_merges(const std::string& vocab_json, const std::string& merges_txt,
                                        const std::vector<std::string>& specials = {},
                                        bool add_prefix_space = false);
  // The same from the JSON text (`source` names it in errors).
  static BpeTokenizer from_json(const std::string& json_text, const std::string& source = "<tokenizer.json>");
  // A tiktoken BPE: `ranks_path` has one "base64(token) rank" line per token, `meta_json_path`
  // a JSON object with "pat_str" and "special_tokens" {content: id} (as ../shared/data/o200k beside the repository).
  // Built as the tokenizer.json conversions of tiktoken encodings are: vocab = the ranks with
  // the bytes mapped through the byte<->unicode table, one merge per token of two or more
  // bytes (the two parts a rank-limited BPE of its own bytes ends with; rank order),
  // ignore_merges = true (tiktoken looks a whole piece up first), pre_tokenizer
  // Sequence[Split(Regex(pat_str), Isolated), ByteLevel(add_prefix_space=false,
  // use_regex=false)], decoder ByteLevel; the special tokens are added tokens (special,
  // not normalized) and are also entered in the model vocab so that their ids survive
  // save() + a reload by tokenizers.
  static BpeTokenizer from_tiktoken(const std::string& ranks_path, const std::string& meta_json_path);

  // Trains a byte-level BPE (like tokenizers' BpeTrainer with the 256-byte initial alphabet):
  // ids 0..k-1 are `special_tokens` (added tokens: special, not normalized, split out of the
  // texts before counting), then the 256 byte symbols in byte order, then one token per merge.
  // Each step merges the most frequent adjacent pair over the pre-tokenised words (weighted by
  // word count); ties go to the pair with the smaller (left id, right id). Stops at
  // `vocab_size` tokens (specials included; never fewer than the specials and the 256 byte
  // symbols) or when no pair is left. The pre-tokenizer is
  // ByteLevel(add_prefix_space=false, use_regex=true) (GPT-2) when `pattern` is empty, else
  // Sequence[Split(Regex(pattern), Isolated), ByteLevel(add_prefix_space=false,
  // use_regex=false)]; decoder ByteLevel; no normalizer, no post-processor. The merges are not
  // guaranteed to equal tokenizers' BpeTrainer's (its tie-breaking differs), but the result is
  // a valid tokenizer.json (save()) that tokenizers loads and encodes exactly as this class.
  // Throws std::invalid_argument when vocab_size < 1 or the pattern does not compile.
  static BpeTokenizer train(const std::vector<std::string>& texts, int vocab_size, const std::string& pattern = {},
                            const std::vector<std::string>& special_tokens = {});

  BpeTokenizer(BpeTokenizer&&) noexcept;
  BpeTokenizer& operator=(BpeTokenizer&&) noexcept;
  BpeTokenizer(const BpeTokenizer&) = delete;
  BpeTokenizer& operator=(const BpeTokenizer&) = delete;
  ~BpeTokenizer();

  // tokenizer.encode(text, add_special_tokens=...).ids (see the notes above on invalid UTF-8).
  std::vector<int64_t> encode(const std::string& text, bool add_special_tokens = false) const;
  // encode() of each text, on `threads` threads (0: all cores), results in input order.
  std::vector<std::vector<int64_t>> encode_batch(const std::vector<std::string>& texts,
                                                 bool add_special_tokens = false, int threads = 0) const;
  // The pieces the model receives (after added-token splitting, normalizer, pre_tokenizer;
  // byte-level pieces are in their mapped form), an added token as its content. For tests.
  std::vector<std::string> pre_tokenize(const std::string& text) const;
  // tokenizer.decode(ids, skip_special_tokens=...) (note: Python's default is True).
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = false) const;
  // The raw bytes one token stands for through the decoder (ByteLevel: the unmapped bytes,
  // possibly not valid UTF-8 alone; no decoder: the token string). Empty for an unknown id.
  std::string token_bytes(int64_t id) const;

  std::optional<int64_t> token_to_id(const std::string& token) const;  // added tokens first
  // Added tokens first (a normalized one in its normalized form, as tokenizers gives it).
  std::optional<std::string> id_to_token(int64_t id) const;
  // max id + 1 over the model vocab and the added tokens.
  int64_t vocab_size() const;
  BpeMode mode() const;
  bool is_special(int64_t id) const;
  // The added tokens, by id.
  std::vector<BpeAddedToken> added_tokens() const;

  // Appends special tokens (special, not normalized, no strip) with ids vocab_size(),
  // vocab_size()+1, ... (HSENet: <im_patch>, <bx_start>, <bx_end>, [SEG]). A content that is
  // already a token (model or added) keeps its id and becomes a special added token, as with
  // tokenizers' add_special_tokens. Returns the number of new ids.
  int add_special_tokens(const std::vector<std::string>& tokens);

  // Writes tokenizer.json (atomically) that tokenizers loads to the same tokenizer (same ids:
  // when its id numbering of added tokens would differ, the added tokens are also written into
  // model.vocab). to_json() gives the text.
  void save(const std::string& path) const;
  std::string to_json() const;

  struct Impl;
  Impl& impl_for_mode() { return *impl_; }  // internal: the mode loaders set the slow flags

 private:
  explicit BpeTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class BpeDecodeStream;
};

// Incremental decoding for generation: feed ids one at a time, get the text that became
// complete. Bytes of an incomplete UTF-8 sequence at the end are held back until the next ids
// complete it (or flush()); invalid sequences become U+FFFD as in decode(). The concatenation
// of all step() results and flush() equals tokenizer.decode(all ids, skip_special_tokens).
// The tokenizer must outlive the stream.
class BpeDecodeStream {
 public:
  explicit BpeDecodeStream(const BpeTokenizer& tokenizer, bool skip_special_tokens = false);
  std::string step(int64_t id);
  std::string flush();  // the held-back bytes (as U+FFFD); the stream starts anew

 private:
  const BpeTokenizer* tok_;
  bool skip_;
  bool first_ = true;
  std::string pending_;
};

}  // namespace hse::text
