#include "hse/eval/bertscore.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <numeric>
#include <unordered_set>

#include <fmt/format.h>

#include "hse/cli/cli.h"
#include "hse/eval/vqa.h"
#include "hse/model/config_check.h"

namespace hse::eval {

using namespace model;

std::vector<int64_t> bert_score_encode(const std::string& sentence, const text::WordPieceTokenizer& tok,
                                       int max_length) {
  // sent_encode strips the sentence and maps "" to [CLS][SEP]; whitespace never yields a token,
  // so encoding the unstripped text gives the same ids.
  return tok.encode(sentence, max_length, /*pad_to_max=*/false, /*truncate=*/true).ids;
}

ScoreTokenizer score_tokenizer(const text::WordPieceTokenizer& tok, int max_length) {
  ScoreTokenizer t;
  t.encode = [&tok, max_length](const std::string& s) { return bert_score_encode(s, tok, max_length); };
  t.cls_id = tok.cls_id();
  t.sep_id = tok.sep_id();
  t.pad_id = tok.pad_id();
  return t;
}

ScoreTokenizer score_tokenizer(const text::BpeTokenizer& tok, int64_t bos_id, int64_t eos_id, int64_t pad_id,
                               int max_length) {
  ScoreTokenizer t;
  t.encode = [&tok, bos_id, eos_id, max_length](const std::string& s) {
    const std::string st = eval::py_strip(s);  // Python's str.strip()
    std::vector<int64_t> ids{bos_id};
    if (!st.empty()) {
      auto body = tok.encode(st);  // the tokenizer puts the prefix space
      if (static_cast<int>(body.size()) > max_length - 2) body.resize(static_cast<std::size_t>(std::max(0, max_length - 2)));
      ids.insert(ids.end(), body.begin(), body.end());
    }
    ids.push_back(eos_id);
    return ids;
  };
  t.cls_id = bos_id;
  t.sep_id = eos_id;
  t.pad_id = pad_id;
  return t;
}

ScoreModel load_score_model(const std::string& dir) {
  namespace fs = std::filesystem;
  ScoreModel m;
  const fs::path d(dir);
  m.model = load_bert(dir);
  if (fs::exists(d / "vocab.txt")) {
    m.wordpiece = std::make_unique<text::WordPieceTokenizer>(text::WordPieceTokenizer::from_file((d / "vocab.txt").string()));
    m.tokenizer = score_tokenizer(*m.wordpiece);
  } else if (fs::exists(d / "vocab.json") && fs::exists(d / "merges.txt")) {
    m.bpe = std::make_unique<text::BpeTokenizer>(text::BpeTokenizer::from_vocab_merges(
        (d / "vocab.json").string(), (d / "merges.txt").string(), {"<s>", "</s>", "<pad>", "<unk>", "<mask>"},
        /*add_prefix_space=*/true));
    auto id = [&](const char* t) { return *m.bpe->token_to_id(t); };
    if (id("<pad>") != m.model->config.pad_token_id)
      throw cli::Error(cli::Exit::incompatible, (d / "config.json").string(),
                       fmt::format("pad_token_id {} is not the vocabulary's <pad> ({})", m.model->config.pad_token_id,
                                   id("<pad>")));
    m.tokenizer = score_tokenizer(*m.bpe, id("<s>"), id("</s>"), id("<pad>"));
  } else {
    throw cli::Error(cli::Exit::incompatible, dir,
                     "no vocab.txt (BERT) and no vocab.json + merges.txt (RoBERTa) in the BERTScore model directory");
  }
  check_vocab_fits(m.bpe ? m.bpe->vocab_size() : static_cast<int64_t>(m.wordpiece->vocab_size()),
                   m.model->config.vocab_size, dir, (d / "model.safetensors").string());
  return m;
}

std::array<double, 3> read_bertscore_baseline(const std::string& path, int layer) {
  std::ifstream f(path);
  if (!f) cli::fail_input(path, "cannot open the BERTScore baseline file");
  std::string line;
  std::size_t n = 0;
  while (std::getline(f, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (n == 1 || line.empty()) continue;  // header LAYER,P,R,F
    std::vector<std::string> parts;
    std::stringstream ss(line);
    for (std::string x; std::getline(ss, x, ',');) parts.push_back(x);
    if (parts.size() != 4) cli::fail_input(path, "line {}: expected LAYER,P,R,F", n);
    try {
      std::size_t used = 0;
      const int l = std::stoi(parts[0], &used);
      if (used != parts[0].size()) throw std::invalid_argument("layer");
      if (l != layer) continue;
      std::array<double, 3> b{};
      for (int k = 0; k < 3; ++k) {
        b[static_cast<std::size_t>(k)] = std::stod(parts[static_cast<std::size_t>(k) + 1], &used);
        if (used != parts[static_cast<std::size_t>(k) + 1].size() || !(b[static_cast<std::size_t>(k)] < 1.0))
          throw std::invalid_argument("value");
      }
      return b;
    } catch (const std::exception&) {
      cli::fail_input(path, "line {}: '{}' is not LAYER,P,R,F with numbers below 1", n, line);
    }
  }
  cli::fail_input(path, "no baseline for layer {}", layer);
}

void rescale_with_baseline(BertScore& s, const std::array<double, 3>& b) {
  for (auto [v, base] : {std::pair<std::vector<double>*, double>{&s.P, b[0]}, {&s.R, b[1]}, {&s.F, b[2]}})
    for (double& x : *v) x = (x - base) / (1.0 - base);
}

IdfDict bert_score_idf(const std::vector<std::string>& refs, const text::WordPieceTokenizer& tok, bool idf,
                       int max_length) {
  return bert_score_idf(refs, score_tokenizer(tok, max_length), idf);
}

IdfDict bert_score_idf(const std::vector<std::string>& refs, const ScoreTokenizer& tok, bool idf) {
  IdfDict d;
  if (!idf) {
    d.unseen = 1.0;
    d.idf[tok.sep_id] = 0.0;
    d.idf[tok.cls_id] = 0.0;
    return d;
  }
  const double M = static_cast<double>(refs.size());
  std::unordered_map<int64_t, int64_t> df;
  for (const auto& r : refs) {
    const auto ids = tok.encode(r);
    for (int64_t id : std::unordered_set<int64_t>(ids.begin(), ids.end())) ++df[id];
  }
  d.unseen = std::log((M + 1.0) / 1.0);
  for (const auto& [id, c] : df) d.idf[id] = std::log((M + 1.0) / (static_cast<double>(c) + 1.0));
  return d;
}

BertScore bert_score(const std::vector<std::string>& cands, const std::vector<std::string>& refs,
                     const text::WordPieceTokenizer& tok, Bert& model, int layer, bool idf, int batch_size,
                     int max_length) {
  const auto st = score_tokenizer(tok, max_length);
  return bert_score(cands, refs, st, model, layer, bert_score_idf(refs, st, idf), batch_size);
}

BertScore bert_score(const std::vector<std::string>& cands, const std::vector<std::string>& refs,
                     const text::WordPieceTokenizer& tok, Bert& model, int layer, const IdfDict& weights,
                     int batch_size, int max_length) {
  return bert_score(cands, refs, score_tokenizer(tok, max_length), model, layer, weights, batch_size);
}

namespace {

struct SentStats {
  torch::Tensor emb;  // [len, H]
  torch::Tensor idf;  // [len] float32
};

// pad_batch_stats: embeddings padded with 2.0, idf with 0, mask = position < length.
void pad_batch(const std::vector<const SentStats*>& s, torch::Tensor& emb, torch::Tensor& mask, torch::Tensor& idf) {
  std::vector<torch::Tensor> e, w;
  std::vector<int64_t> lens;
  for (const auto* p : s) {
    e.push_back(p->emb);
    w.push_back(p->idf);
    lens.push_back(p->emb.size(0));
  }
  emb = torch::nn::utils::rnn::pad_sequence(e, /*batch_first=*/true, /*padding_value=*/2.0);
  idf = torch::nn::utils::rnn::pad_sequence(w, true, 0.0);
  const int64_t Lmax = emb.size(1);
  auto opts = torch::TensorOptions().dtype(torch::kLong).device(emb.device());
  auto base = torch::arange(Lmax, opts).unsqueeze(0);
  auto l = torch::tensor(lens, torch::kLong).to(emb.device()).unsqueeze(1);
  mask = base < l;
}

}  // namespace

BertScore bert_score(const std::vector<std::string>& cands, const std::vector<std::string>& refs,
                     const ScoreTokenizer& tok, Bert& model, int layer, const IdfDict& weights, int batch_size) {
  if (cands.size() != refs.size())
    cli::fail_usage("bertscore: {} candidates but {} references", cands.size(), refs.size());
  const int n_layers = static_cast<int>(model->config.num_hidden_layers);
  if (layer < 0 || layer > n_layers)
    cli::fail_usage("bertscore: layer {} out of range 0..{}", layer, n_layers);
  if (batch_size < 1) cli::fail_usage("bertscore: batch size must be positive");
  BertScore out;
  if (cands.empty()) return out;

  torch::NoGradGuard ng;
  const bool was_training = model->is_training();
  model->eval();
  const auto device = model->embeddings->word_embeddings->weight.device();

  // dedup_and_sort(refs + hyps): unique sentences, longest (in " "-separated words) first.
  std::vector<std::string> sentences;
  {
    std::unordered_set<std::string> seen;
    for (const auto* list : {&refs, &cands})
      for (const auto& s : *list)
        if (seen.insert(s).second) sentences.push_back(s);
    auto words = [](const std::string& s) { return std::count(s.begin(), s.end(), ' ') + 1; };
    std::stable_sort(sentences.begin(), sentences.end(),
                     [&](const std::string& a, const std::string& b) { return words(a) > words(b); });
  }

  std::unordered_map<std::string, SentStats> stats;
  for (std::size_t b0 = 0; b0 < sentences.size(); b0 += static_cast<std::size_t>(batch_size)) {
    const std::size_t b1 = std::min(sentences.size(), b0 + static_cast<std::size_t>(batch_size));
    std::vector<std::vector<int64_t>> ids;
    std::size_t Lmax = 0;
    for (std::size_t i = b0; i < b1; ++i) {
      ids.push_back(tok.encode(sentences[i]));
      Lmax = std::max(Lmax, ids.back().size());
    }
    const int64_t B = static_cast<int64_t>(ids.size()), L = static_cast<int64_t>(Lmax);
    auto input = torch::full({B, L}, tok.pad_id, torch::kLong);
    auto mask = torch::zeros({B, L}, torch::kLong);
    for (int64_t i = 0; i < B; ++i) {
      const auto& v = ids[static_cast<std::size_t>(i)];
      const int64_t n = static_cast<int64_t>(v.size());
      input[i].narrow(0, 0, n).copy_(torch::tensor(v, torch::kLong));
      mask[i].narrow(0, 0, n).fill_(1);
    }
    auto h = model->forward(input.to(device), mask.to(device), {}, false, layer).last_hidden_state;
    for (int64_t i = 0; i < B; ++i) {
      const auto& v = ids[static_cast<std::size_t>(i)];
      std::vector<float> w(v.size());
      for (std::size_t k = 0; k < v.size(); ++k) w[k] = static_cast<float>(weights(v[k]));
      SentStats st;
      st.emb = h[i].narrow(0, 0, static_cast<int64_t>(v.size()));
      st.idf = torch::tensor(w, torch::kFloat32).to(device);
      stats.emplace(sentences[b0 + static_cast<std::size_t>(i)], std::move(st));
    }
  }

  // greedy_cos_idf over batches of pairs.
  out.P.reserve(cands.size());
  out.R.reserve(cands.size());
  out.F.reserve(cands.size());
  for (std::size_t b0 = 0; b0 < refs.size(); b0 += static_cast<std::size_t>(batch_size)) {
    const std::size_t b1 = std::min(refs.size(), b0 + static_cast<std::size_t>(batch_size));
    std::vector<const SentStats*> rs, hs;
    for (std::size_t i = b0; i < b1; ++i) {
      rs.push_back(&stats.at(refs[i]));
      hs.push_back(&stats.at(cands[i]));
    }
    torch::Tensor r_emb, r_mask, r_idf, h_emb, h_mask, h_idf;
    pad_batch(rs, r_emb, r_mask, r_idf);
    pad_batch(hs, h_emb, h_mask, h_idf);
    r_emb = r_emb.to(torch::kFloat32);
    h_emb = h_emb.to(torch::kFloat32);
    r_emb = r_emb / torch::norm(r_emb, 2, {-1}).unsqueeze(-1);
    h_emb = h_emb / torch::norm(h_emb, 2, {-1}).unsqueeze(-1);
    auto sim = torch::bmm(h_emb, r_emb.transpose(1, 2));
    auto masks = torch::bmm(h_mask.unsqueeze(2).to(torch::kFloat32), r_mask.unsqueeze(1).to(torch::kFloat32));
    sim = sim * masks;
    auto word_precision = std::get<0>(sim.max(2));
    auto word_recall = std::get<0>(sim.max(1));
    h_idf = h_idf / h_idf.sum(1, true);
    r_idf = r_idf / r_idf.sum(1, true);
    auto P = (word_precision * h_idf).sum(1);
    auto R = (word_recall * r_idf).sum(1);
    auto F = 2 * P * R / (P + R);
    auto h_zero = h_mask.sum(1).eq(2);
    auto r_zero = r_mask.sum(1).eq(2);
    P = P.masked_fill(h_zero, 0.0).masked_fill(r_zero, 0.0);
    R = R.masked_fill(h_zero, 0.0).masked_fill(r_zero, 0.0);
    F = F.masked_fill(torch::isnan(F), 0.0);
    auto pc = P.to(torch::kCPU, torch::kFloat64), rc = R.to(torch::kCPU, torch::kFloat64),
         fc = F.to(torch::kCPU, torch::kFloat64);
    for (int64_t i = 0; i < pc.size(0); ++i) {
      out.P.push_back(pc[i].item<double>());
      out.R.push_back(rc[i].item<double>());
      out.F.push_back(fc[i].item<double>());
    }
  }
  if (was_training) model->train();
  return out;
}

}  // namespace hse::eval
