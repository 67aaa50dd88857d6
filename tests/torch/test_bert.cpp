// hse::model::Bert (HF BertModel layout) and BERTScore.
// The "driver: bert" case doubles as the C++ side of tests/parity/test_bert.py: with
// HSE_BERT_DIR (HF model dir), HSE_BERT_IN (JSONL) and HSE_BERT_OUT set it runs
//   HSE_BERT_MODE=hidden     lines {"text": ...}: one padded batch (or batches of
//                            HSE_BERT_BATCH); writes safetensors "ids.{i}" (I64 [L]),
//                            "last.{i}" [L,H] and "hidden.{i}.{k}" [L,H] (k = 0..layers)
//   HSE_BERT_MODE=bertscore  lines {"cand": ..., "ref": ...}, HSE_BERT_LAYER, HSE_BERT_IDF (0/1),
//                            HSE_BERT_BATCH (default 64); writes JSONL {"P","R","F"} per pair
// HSE_BERT_PREFIX sets the key prefix, HSE_BERT_VOCAB the vocab (default <dir>/vocab.txt),
// HSE_BERT_DEVICE the device (default cpu; e.g. cuda), HSE_BERT_THREADS torch's threads.
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/io/safetensors.h"
#include "hse/model/bert.h"
#include "hse/eval/bertscore.h"
#include "hse/model/checkpoint.h"
#include "hse/text/wordpiece.h"

using namespace hse;
namespace fs = std::filesystem;

namespace {

model::BertConfig tiny() {
  model::BertConfig c;
  c.vocab_size = 40;
  c.hidden_size = 16;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 4;
  c.intermediate_size = 32;
  c.max_position_embeddings = 64;
  return c;
}

fs::path tmpdir(const std::string& n) {
  auto p = fs::temp_directory_path() / ("hse_bert_" + n + std::to_string(::getpid()));
  fs::create_directories(p);
  return p;
}

text::WordPieceTokenizer small_vocab() {
  return text::WordPieceTokenizer({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "lung", "is", "clear",
                                   "no", "nodule", "effusion", "heart", "normal", "size", ".", ",", "mild",
                                   "##s", "pleural"});
}

// Random but not tiny weights, so that the layers do something.
void randomize(model::Bert& m, int seed) {
  torch::manual_seed(seed);
  torch::NoGradGuard ng;
  for (auto& p : m->parameters()) p.normal_(0.0, 0.2);
}

}  // namespace

TEST_CASE("bert: shapes, hidden states and key names") {
  auto c = tiny();
  model::Bert m(c);
  randomize(m, 1);
  m->eval();
  auto ids = torch::randint(5, c.vocab_size, {2, 7}, torch::kLong);
  auto mask = torch::ones({2, 7}, torch::kLong);
  mask[1].narrow(0, 4, 3).fill_(0);
  auto out = m->forward(ids, mask, {}, true);
  DOCTEST_CHECK(out.last_hidden_state.sizes() == torch::IntArrayRef({2, 7, 16}));
  DOCTEST_REQUIRE(out.hidden_states.size() == 4);
  DOCTEST_CHECK(torch::equal(out.hidden_states.back(), out.last_hidden_state));
  DOCTEST_CHECK(m->pool(out.last_hidden_state).sizes() == torch::IntArrayRef({2, 16}));
  // Running only the first k layers gives hidden_states[k].
  for (int k = 0; k <= 3; ++k) {
    auto o = m->forward(ids, mask, {}, false, k);
    DOCTEST_CHECK(torch::allclose(o.last_hidden_state, out.hidden_states[static_cast<size_t>(k)]));
  }
  // HF key names: 5 embedding tensors + 16 per layer + 2 pooler.
  std::set<std::string> keys;
  for (const auto& p : m->named_parameters(true)) keys.insert(p.key());
  DOCTEST_CHECK(keys.size() == 5 + 16 * 3 + 2);
  for (const char* k : {"embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                        "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
                        "encoder.layer.0.attention.self.query.weight", "encoder.layer.2.attention.self.value.bias",
                        "encoder.layer.1.attention.output.dense.weight",
                        "encoder.layer.1.attention.output.LayerNorm.bias", "encoder.layer.2.intermediate.dense.weight",
                        "encoder.layer.2.output.dense.bias", "encoder.layer.0.output.LayerNorm.weight",
                        "pooler.dense.weight"})
    DOCTEST_CHECK_MESSAGE(keys.count(k) == 1, k);
  model::Bert np(c, false);
  DOCTEST_CHECK(np->named_parameters(true).size() == 5 + 16 * 3);
}

TEST_CASE("bert: padding does not change the kept positions") {
  auto c = tiny();
  model::Bert m(c);
  randomize(m, 2);
  m->eval();
  torch::NoGradGuard ng;
  auto ids = torch::randint(5, c.vocab_size, {1, 5}, torch::kLong);
  auto alone = m->forward(ids).last_hidden_state;
  auto padded_ids = torch::cat({ids, torch::zeros({1, 4}, torch::kLong)}, 1);
  auto mask = torch::cat({torch::ones({1, 5}, torch::kLong), torch::zeros({1, 4}, torch::kLong)}, 1);
  auto padded = m->forward(padded_ids, mask).last_hidden_state.narrow(1, 0, 5);
  DOCTEST_CHECK(torch::allclose(alone, padded, 1e-5, 1e-5));
  // bf16 runs (mask in the model's dtype) and stays close to fp32.
  {
    model::Bert h(c);
    randomize(h, 2);
    h->to(torch::kBFloat16);
    h->eval();
    auto hb = h->forward(padded_ids, mask).last_hidden_state.narrow(1, 0, 5).to(torch::kFloat32);
    DOCTEST_CHECK(hb.isfinite().all().item<bool>());
    DOCTEST_CHECK((hb - alone).abs().max().item<float>() < 0.25f);
  }
  // token_type_ids matter.
  auto tt = torch::ones({1, 5}, torch::kLong);
  DOCTEST_CHECK(!torch::allclose(alone, m->forward(ids, {}, tt).last_hidden_state));
  // The additive mask is finfo.min on masked keys.
  auto em = model::BertImpl::extended_attention_mask(mask, torch::kFloat32);
  DOCTEST_CHECK(em.sizes() == torch::IntArrayRef({1, 1, 1, 9}));
  DOCTEST_CHECK(em[0][0][0][0].item<float>() == 0.f);
  DOCTEST_CHECK(em[0][0][0][8].item<float>() == std::numeric_limits<float>::lowest());
}

TEST_CASE("bert: dropout acts in training mode only") {
  auto c = tiny();
  c.hidden_dropout_prob = 0.1;
  c.attention_probs_dropout_prob = 0.1;
  model::Bert m(c, false);
  randomize(m, 3);
  const auto ids = torch::randint(5, 40, {4, 12}, torch::kLong);
  torch::NoGradGuard ng;
  m->eval();
  const auto ref = m->forward(ids).last_hidden_state;
  DOCTEST_CHECK(torch::equal(ref, m->forward(ids).last_hidden_state));  // eval: deterministic
  m->train();
  torch::manual_seed(11);
  const auto a = m->forward(ids).last_hidden_state;
  torch::manual_seed(11);
  const auto b = m->forward(ids).last_hidden_state;
  const auto d = m->forward(ids).last_hidden_state;
  DOCTEST_CHECK(torch::equal(a, b));     // seeded
  DOCTEST_CHECK(!torch::equal(a, d));    // stochastic
  DOCTEST_CHECK(!torch::allclose(a, ref));
  // The embedding dropout is exactly inverted dropout of the eval output: zeros at
  // about p of the positions, the rest scaled by 1 / (1 - p).
  torch::manual_seed(5);
  const auto emb = m->embeddings->forward(torch::randint(5, 40, {64, 60}, torch::kLong), {});
  torch::manual_seed(5);
  const auto ids2 = torch::randint(5, 40, {64, 60}, torch::kLong);
  m->eval();
  const auto emb_ref = m->embeddings->forward(ids2, {});
  const auto kept = emb != 0;
  const double zero_frac = 1.0 - kept.to(torch::kDouble).mean().item<double>();
  DOCTEST_CHECK(zero_frac > 0.08);
  DOCTEST_CHECK(zero_frac < 0.12);
  DOCTEST_CHECK(torch::allclose(emb.masked_select(kept), emb_ref.masked_select(kept) / 0.9, 1e-5, 1e-6));
  // p = 0 in training mode equals eval mode.
  auto c0 = c;
  c0.hidden_dropout_prob = c0.attention_probs_dropout_prob = 0;
  model::Bert m0(c0, false);
  randomize(m0, 3);
  m0->train();
  DOCTEST_CHECK(torch::allclose(m0->forward(ids).last_hidden_state, ref, 1e-6, 1e-6));
}

TEST_CASE("bert: config parsing and errors") {
  const auto dir = tmpdir("cfg");
  const auto path = (dir / "config.json").string();
  {
    std::ofstream f(path);
    f << R"({"hidden_size": 32, "num_attention_heads": 4, "num_hidden_layers": 2, "intermediate_size": 64,
             "hidden_act": "swishy"})";
  }
  try {
    (void)model::BertConfig::from_file(path);
    DOCTEST_FAIL("no error");
  } catch (const cli::Error& e) {
    DOCTEST_CHECK(e.code() == cli::Exit::incompatible);
    DOCTEST_CHECK(e.file() == path);
    DOCTEST_CHECK(std::string(e.what()).find("swishy") != std::string::npos);
  }
  {
    std::ofstream f(path);
    f << R"({"hidden_size": 30, "num_attention_heads": 4})";
  }
  DOCTEST_CHECK_THROWS_AS(model::BertConfig::from_file(path), cli::Error);
  {
    std::ofstream f(path);
    f << R"({"hidden_act": "gelu_new", "position_embedding_type": "relative_key"})";
  }
  DOCTEST_CHECK_THROWS_AS(model::BertConfig::from_file(path), cli::Error);
  {
    std::ofstream f(path);
    f << R"({"hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-5, "vocab_size": 100})";
  }
  auto c = model::BertConfig::from_file(path);
  DOCTEST_CHECK(c.act() == model::BertAct::gelu_tanh);
  DOCTEST_CHECK(c.vocab_size == 100);
  DOCTEST_CHECK(c.hidden_size == 768);
  DOCTEST_CHECK(c.layer_norm_eps == 1e-5);
  DOCTEST_CHECK(c.hidden_dropout_prob == 0.1);  // HF's defaults
  DOCTEST_CHECK(c.attention_probs_dropout_prob == 0.1);
  {
    std::ofstream f(path);
    f << R"({"hidden_dropout_prob": 0.25, "attention_probs_dropout_prob": 0})";
  }
  c = model::BertConfig::from_file(path);
  DOCTEST_CHECK(c.hidden_dropout_prob == 0.25);
  DOCTEST_CHECK(c.attention_probs_dropout_prob == 0.0);
  DOCTEST_CHECK(c.to_json()["hidden_dropout_prob"].get<double>() == 0.25);
  {
    std::ofstream f(path);
    f << R"({"hidden_dropout_prob": 1.5})";
  }
  DOCTEST_CHECK_THROWS_AS(model::BertConfig::from_file(path), cli::Error);
  DOCTEST_CHECK_THROWS_AS(model::BertConfig::from_file((dir / "none.json").string()), cli::Error);
  {
    std::ofstream f(path);
    f << R"({"model_type": "distilbert"})";
  }
  DOCTEST_CHECK_THROWS_AS(model::BertConfig::from_file(path), cli::Error);
  {
    std::ofstream f(path);
    f << R"({"model_type": "roberta", "pad_token_id": 1, "max_position_embeddings": 514, "type_vocab_size": 1,
             "hidden_size": 32, "num_attention_heads": 4, "num_hidden_layers": 1, "intermediate_size": 64,
             "vocab_size": 50})";
  }
  c = model::BertConfig::from_file(path);
  DOCTEST_CHECK(c.roberta());
  DOCTEST_CHECK(c.to_json()["model_type"] == "roberta");
  {
    // RoBERTa positions: pad + cumsum over real tokens; padding keeps the padding index, so a
    // right-padded sequence gives its real tokens the same states as alone.
    torch::manual_seed(0);
    model::Bert m(c, false);
    m->eval();
    torch::NoGradGuard ng;
    auto ids = torch::tensor({0, 7, 8, 2, 1, 1}, torch::kLong).unsqueeze(0);
    auto mask = torch::tensor({1, 1, 1, 1, 0, 0}, torch::kLong).unsqueeze(0);
    auto h = m->forward(ids, mask).last_hidden_state;
    auto alone = m->forward(ids.narrow(1, 0, 4), mask.narrow(1, 0, 4)).last_hidden_state;
    DOCTEST_CHECK(torch::allclose(h.narrow(1, 0, 4), alone, 1e-5, 1e-6));
    auto e = m->embeddings->forward(ids.narrow(1, 0, 1), {});
    auto expect = m->embeddings->LayerNorm->forward(m->embeddings->word_embeddings->weight[0] +
                                                   m->embeddings->token_type_embeddings->weight[0] +
                                                   m->embeddings->position_embeddings->weight[2]);
    DOCTEST_CHECK(torch::allclose(e[0][0], expect, 1e-5, 1e-6));  // first real token: position pad + 1 = 2
  }
  // The shipped tiny config parses.
  if (const char* src = std::getenv("HSE_SOURCE_DIR")) {
    auto t = model::BertConfig::from_file(std::string(src) + "/share/hse/configs/bert-tiny.json");
    DOCTEST_CHECK(t.hidden_size == 32);
    DOCTEST_CHECK(t.vocab_size == 30522);
  }
  fs::remove_all(dir);
}

TEST_CASE("bert: save, load, 'bert.' prefix and position_ids") {
  auto c = tiny();
  model::Bert a(c);
  randomize(a, 3);
  a->eval();
  const auto dir = tmpdir("save");
  model::save_bert(a, dir.string());
  auto b = model::load_bert(dir.string());
  auto ids = torch::randint(5, c.vocab_size, {2, 6}, torch::kLong);
  DOCTEST_CHECK(torch::equal(a->forward(ids).last_hidden_state, b->forward(ids).last_hidden_state));

  // A BertFor* style file: "bert." prefix, a position_ids buffer (I64), no pooler, other heads.
  const auto dir2 = tmpdir("prefixed");
  fs::copy_file(dir / "config.json", dir2 / "config.json", fs::copy_options::overwrite_existing);
  {
    io::SafeTensorsWriter w;
    model::Bert np(c, false);
    randomize(np, 4);
    model::add_state(w, *np, "bert.");
    std::vector<int64_t> pos(64);
    for (int i = 0; i < 64; ++i) pos[static_cast<size_t>(i)] = i;
    w.add("bert.embeddings.position_ids", io::Dtype::I64, {1, 64}, pos.data());
    std::vector<float> head(4, 1.f);
    w.add_float("cls.predictions.bias", io::Dtype::F32, {4}, head.data());
    w.write((dir2 / "model.safetensors").string());
    auto l = model::load_bert(dir2.string());
    DOCTEST_CHECK(l->pooler.is_empty());
    np->eval();
    l->eval();
    DOCTEST_CHECK(torch::equal(np->forward(ids).last_hidden_state, l->forward(ids).last_hidden_state));
  }
  // A wrong prefix fails with exit 3 unless allow_partial.
  DOCTEST_CHECK_THROWS_AS(model::load_bert(c, dir.string(), "language_encoder."), cli::Error);
  DOCTEST_CHECK_NOTHROW(model::load_bert(c, dir.string(), "language_encoder.", true));
  fs::remove_all(dir);
  fs::remove_all(dir2);
}

TEST_CASE("bertscore: identical, empty, idf") {
  auto tok = small_vocab();
  auto c = tiny();
  model::Bert m(c);
  randomize(m, 5);
  m->eval();
  std::vector<std::string> cands = {"the lung is clear .", "no nodule", "", "mild pleural effusion"};
  std::vector<std::string> refs = {"the lung is clear .", "heart normal size", "the lung", "no pleural effusion ."};
  auto s = eval::bert_score(cands, refs, tok, m, 2, false);
  DOCTEST_REQUIRE(s.P.size() == 4);
  DOCTEST_CHECK(s.P[0] == doctest::Approx(1.0).epsilon(1e-5));
  DOCTEST_CHECK(s.R[0] == doctest::Approx(1.0).epsilon(1e-5));
  DOCTEST_CHECK(s.F[0] == doctest::Approx(1.0).epsilon(1e-5));
  DOCTEST_CHECK(s.P[2] == 0.0);
  DOCTEST_CHECK(s.R[2] == 0.0);
  DOCTEST_CHECK(s.F[2] == 0.0);
  for (std::size_t i : {1u, 3u}) {
    DOCTEST_CHECK(s.F[i] == doctest::Approx(2 * s.P[i] * s.R[i] / (s.P[i] + s.R[i])).epsilon(1e-5));
    DOCTEST_CHECK(s.P[i] <= 1.0 + 1e-6);
  }
  // One pair per matching batch: no padding takes part in the max; an identical pair still scores 1.
  auto s1 = eval::bert_score(cands, refs, tok, m, 2, false, 1);
  DOCTEST_CHECK(s1.F[0] == doctest::Approx(1.0).epsilon(1e-5));
  for (std::size_t i = 0; i < 4; ++i) DOCTEST_CHECK(std::abs(s1.F[i]) <= 1.0 + 1e-6);
  // idf weights: log((M+1)/(df+1)); [CLS]/[SEP] in every reference -> 0; unseen log(M+1).
  auto w = eval::bert_score_idf(refs, tok, true);
  DOCTEST_CHECK(w(tok.cls_id()) == doctest::Approx(0.0));
  DOCTEST_CHECK(w(tok.sep_id()) == doctest::Approx(0.0));
  DOCTEST_CHECK(w(tok.token_to_id("the")) == doctest::Approx(std::log(5.0 / 3.0)));
  DOCTEST_CHECK(w(tok.token_to_id("mild")) == doctest::Approx(std::log(5.0)));
  auto si = eval::bert_score(cands, refs, tok, m, 3, true);
  DOCTEST_CHECK(si.F[0] == doctest::Approx(1.0).epsilon(1e-5));
  DOCTEST_CHECK_THROWS_AS(eval::bert_score(cands, refs, tok, m, 4, false), cli::Error);
  DOCTEST_CHECK_THROWS_AS(eval::bert_score(cands, {"x"}, tok, m, 1, false), cli::Error);
}

// ---------------------------------------------------------------- parity driver
TEST_CASE("driver: bert") {
  const char* dir = std::getenv("HSE_BERT_DIR");
  const char* in = std::getenv("HSE_BERT_IN");
  const char* outp = std::getenv("HSE_BERT_OUT");
  if (!dir || !in || !outp) return;
  const char* mode_c = std::getenv("HSE_BERT_MODE");
  const std::string mode = mode_c ? mode_c : "hidden";
  const char* prefix = std::getenv("HSE_BERT_PREFIX");
  const char* vocab = std::getenv("HSE_BERT_VOCAB");
  const char* batch_c = std::getenv("HSE_BERT_BATCH");
  const char* threads = std::getenv("HSE_BERT_THREADS");
  if (threads) torch::set_num_threads(std::atoi(threads));
  auto tok = text::WordPieceTokenizer::from_file(vocab ? vocab : (fs::path(dir) / "vocab.txt").string());
  auto m = model::load_bert(dir, prefix ? prefix : "");
  const char* dev_c = std::getenv("HSE_BERT_DEVICE");
  const torch::Device device(dev_c ? dev_c : "cpu");
  m->to(device);
  m->eval();
  torch::NoGradGuard ng;
  std::ifstream fin(in);
  DOCTEST_REQUIRE(fin.good());
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(fin, line);)
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));

  if (mode == "hidden") {
    const std::size_t batch = batch_c ? static_cast<std::size_t>(std::atoi(batch_c)) : lines.size();
    io::SafeTensorsWriter w;
    std::vector<std::shared_ptr<std::vector<float>>> keep;
    auto put = [&](const std::string& name, const torch::Tensor& t) {
      auto c = t.to(torch::kCPU, torch::kFloat32).contiguous();
      w.add(name, io::Dtype::F32, std::vector<int64_t>(c.sizes().begin(), c.sizes().end()), c.data_ptr<float>());
    };
    for (std::size_t b0 = 0; b0 < lines.size(); b0 += batch) {
      const std::size_t b1 = std::min(lines.size(), b0 + batch);
      std::vector<text::Encoding> enc;
      int64_t L = 0;
      for (std::size_t i = b0; i < b1; ++i) {
        enc.push_back(tok.encode(lines[i].at("text").get<std::string>(), 512, false, true));
        L = std::max<int64_t>(L, static_cast<int64_t>(enc.back().ids.size()));
      }
      const int64_t B = static_cast<int64_t>(enc.size());
      auto ids = torch::full({B, L}, tok.pad_id(), torch::kLong);
      auto mask = torch::zeros({B, L}, torch::kLong);
      for (int64_t i = 0; i < B; ++i) {
        const auto& e = enc[static_cast<size_t>(i)];
        const int64_t n = static_cast<int64_t>(e.ids.size());
        ids[i].narrow(0, 0, n).copy_(torch::tensor(e.ids, torch::kLong));
        mask[i].narrow(0, 0, n).fill_(1);
      }
      auto o = m->forward(ids.to(device), mask.to(device), {}, true);
      for (int64_t i = 0; i < B; ++i) {
        const auto& e = enc[static_cast<size_t>(i)];
        const int64_t n = static_cast<int64_t>(e.ids.size());
        const std::string idx = std::to_string(b0 + static_cast<size_t>(i));
        w.add("ids." + idx, io::Dtype::I64, {n}, e.ids.data());
        put("last." + idx, o.last_hidden_state[i].narrow(0, 0, n));
        for (std::size_t k = 0; k < o.hidden_states.size(); ++k)
          put("hidden." + idx + "." + std::to_string(k), o.hidden_states[k][i].narrow(0, 0, n));
      }
    }
    w.write(outp);
  } else if (mode == "bertscore") {
    const char* layer_c = std::getenv("HSE_BERT_LAYER");
    const char* idf_c = std::getenv("HSE_BERT_IDF");
    DOCTEST_REQUIRE_MESSAGE(layer_c != nullptr, "HSE_BERT_LAYER must be set");
    std::vector<std::string> cands, refs;
    for (const auto& j : lines) {
      cands.push_back(j.at("cand").get<std::string>());
      refs.push_back(j.at("ref").get<std::string>());
    }
    const bool idf = idf_c && std::string(idf_c) == "1";
    auto s = eval::bert_score(cands, refs, tok, m, std::atoi(layer_c), idf, batch_c ? std::atoi(batch_c) : 64);
    std::ofstream fout(outp);
    DOCTEST_REQUIRE(fout.good());
    for (std::size_t i = 0; i < s.P.size(); ++i)
      fout << nlohmann::json{{"P", s.P[i]}, {"R", s.R[i]}, {"F", s.F[i]}}.dump() << "\n";
  } else {
    DOCTEST_FAIL("unknown HSE_BERT_MODE " << mode);
  }
}
