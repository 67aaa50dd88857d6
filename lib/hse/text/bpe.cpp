// Byte-level BPE tokenizer (Hugging Face tokenizers semantics); see bpe.h. Encoding, decoding,
// the added vocabulary and saving; loading is in bpe_load.cpp, training in bpe_train.cpp.
#include "hse/text/bpe_impl.h"

namespace hse::text {

std::vector<int64_t> BpeTokenizer::encode(const std::string& text, bool add_special_tokens) const {
  return impl_->encode(text, add_special_tokens);
}

std::vector<std::vector<int64_t>> BpeTokenizer::encode_batch(const std::vector<std::string>& texts,
                                                             bool add_special_tokens, int threads) const {
  std::vector<std::vector<int64_t>> out(texts.size());
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(threads), texts.size()));
  if (threads <= 1) {
    for (std::size_t i = 0; i < texts.size(); ++i) out[i] = encode(texts[i], add_special_tokens);
    return out;
  }
  std::atomic<std::size_t> next{0};
  std::exception_ptr err;
  std::mutex err_mu;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (std::size_t i; (i = next++) < texts.size();) {
        try {
          out[i] = encode(texts[i], add_special_tokens);
        } catch (...) {
          std::lock_guard lk(err_mu);
          if (!err) err = std::current_exception();
        }
      }
    });
  for (auto& th : pool) th.join();
  if (err) std::rethrow_exception(err);
  return out;
}

std::vector<std::string> BpeTokenizer::pre_tokenize(const std::string& text) const {
  std::vector<std::string> out;
  impl_->walk(
      text, [&](int64_t, std::string_view content) { out.emplace_back(content); },
      [&](const std::string& p) { out.push_back(p); });
  return out;
}

std::string BpeTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  std::string out;
  if (impl_->byte_level_decoder) {
    std::string bytes;
    for (int64_t id : ids) {
      const std::string* t = impl_->token_string(id);
      if (!t || (skip_special_tokens && impl_->special_set.count(*t))) continue;
      impl_->append_token_bytes(*t, bytes);
    }
    utf8_lossy_append(out, bytes, false);
    return out;
  }
  bool first = true;
  for (int64_t id : ids) {
    const std::string* t = impl_->token_string(id);
    if (!t || (skip_special_tokens && impl_->special_set.count(*t))) continue;
    if (!first) out += ' ';
    out += *t;
    first = false;
  }
  return out;
}

std::string BpeTokenizer::token_bytes(int64_t id) const {
  std::string out;
  if (const std::string* t = impl_->token_string(id)) impl_->append_token_bytes(*t, out);
  return out;
}

std::optional<int64_t> BpeTokenizer::token_to_id(const std::string& token) const { return impl_->token_to_id(token); }

std::optional<std::string> BpeTokenizer::id_to_token(int64_t id) const {
  if (const std::string* t = impl_->token_string(id)) return *t;
  return std::nullopt;
}

int64_t BpeTokenizer::vocab_size() const {
  int64_t mx = static_cast<int64_t>(impl_->vocab_r.size()) - 1;
  if (!impl_->added.empty()) mx = std::max(mx, impl_->added.rbegin()->first);
  return mx + 1;
}

bool BpeTokenizer::is_special(int64_t id) const {
  auto a = impl_->added.find(id);
  return a != impl_->added.end() && impl_->special_set.count(a->second.content) > 0;
}

std::vector<BpeAddedToken> BpeTokenizer::added_tokens() const {
  std::vector<BpeAddedToken> out;
  for (const auto& [id, t] : impl_->added) out.push_back(t);
  return out;
}

int BpeTokenizer::add_special_tokens(const std::vector<std::string>& tokens) {
  std::vector<BpeAddedToken> toks;
  for (const auto& s : tokens) {
    BpeAddedToken t;
    t.content = s;
    t.special = true;
    toks.push_back(t);
  }
  return impl_->add_tokens(toks, vocab_size());
}

std::string BpeTokenizer::to_json() const { return impl_->to_json(); }

void BpeTokenizer::save(const std::string& path) const {
  io::AtomicFile f(path, true);
  f.stream() << impl_->to_json();
  f.commit();
}

// ------------------------------------------------------------------ streaming decode

BpeDecodeStream::BpeDecodeStream(const BpeTokenizer& tokenizer, bool skip_special_tokens)
    : tok_(&tokenizer), skip_(skip_special_tokens) {}

std::string BpeDecodeStream::step(int64_t id) {
  const auto& impl = *tok_->impl_;
  const std::string* t = impl.token_string(id);
  if (!t || (skip_ && impl.special_set.count(*t))) return {};
  if (!impl.byte_level_decoder && !first_) pending_ += ' ';
  first_ = false;
  impl.append_token_bytes(*t, pending_);
  std::string out;
  const std::size_t held = utf8_lossy_append(out, pending_, true);
  pending_.erase(0, held);
  return out;
}

std::string BpeDecodeStream::flush() {
  std::string out;
  utf8_lossy_append(out, pending_, false);
  pending_.clear();
  first_ = true;
  return out;
}

}  // namespace hse::text
