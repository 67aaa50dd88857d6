// hse::model::HsenetVlm (vlm.h): config, text layout and labels, input assembly, loss, forward,
// generation, trainable set, adapter directory and published-layout loading, vocabulary resize.
// The "driver: vlm" case is the C++ side of the VLM part of tests/parity/test_packer.py:
//   HSE_VLM_JOBS     {"jobs": [...]}, each job one of
//     {"name", "kind": "layout", "tokens": {"bos","eos","pad","im_patch"}, "image_tokens": n,
//      "question": [..], "answer": [..], "max_length": L}
//        -> "<name>.input_ids", "<name>.labels", "<name>.attention_mask" (I64 [L])
//     {"name", "kind": "forward", "weights": published .safetensors or hse adapter dir,
//      "config": {VlmConfig JSON} (for a .safetensors), "llm": dir, "save": dir (optional)}
//        inputs "<name>.ids", "<name>.mask", "<name>.labels", "<name>.t1", "<name>.t2" in HSE_VLM_TENSORS
//        -> "<name>.embeds" [B,T,H], "<name>.logits" [B,T,V], "<name>.loss" [1] (F32)
//     {"name", "kind": "generate", "weights", "config", "llm", "prompts": [[..]], "max_new_tokens"}
//        inputs "<name>.t1", "<name>.t2" -> "<name>.<i>" (I64 new ids)
//   HSE_VLM_TENSORS  inputs (safetensors); HSE_VLM_OUT output safetensors.
//   A cli::Error prints "<file>: <message>" on stderr and exits with its code.
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/io/safetensors.h"
#include "hse/model/checkpoint.h"
#include "hse/decode/decode.h"
#include "hse/model/vlm.h"
#include "fixtures.h"

using namespace hse;
namespace fs = std::filesystem;
using nlohmann::json;
using fixtures::expect_error;
using fixtures::maxdiff;

namespace {

fs::path tmpdir(const std::string& n) { return fixtures::tmpdir("hse_vlm_", n); }

// fixtures::tiny_phi3 at hidden 32 (intermediate 48), 256 positions, pad = eos = 2.
model::Phi3Config tiny_llm() {
  auto c = fixtures::tiny_phi3(32);
  c.intermediate_size = 48;
  c.max_position_embeddings = 256;
  c.pad_token_id = 2;
  return c;
}

model::Phi3ForCausalLM make_llm(int seed = 1) { return fixtures::make_phi3(tiny_llm(), seed); }

model::VlmConfig tiny_config() {
  model::VlmConfig c;
  for (auto* p : {&c.packer, &c.packer2}) {
    p->in_dim = 16;
    p->out_dim = 32;
    p->grid = {2, 4, 4};
    p->window = {1, 2, 2};
  }
  c.lora.r = 4;
  c.lora.lora_alpha = 8;
  c.tokens = {1, 2, 2, 5};
  return c;
}

void randomize(model::HsenetVlm& v, int seed) {
  torch::manual_seed(seed);
  torch::NoGradGuard ng;
  for (auto& t : v->trainable_parameters()) t.normal_(0.0, 0.1);
}

}  // namespace

TEST_CASE("vlm: config defaults (HSENet), JSON round trip, refusals") {
  model::VlmConfig d;
  DOCTEST_CHECK(d.image_tokens() == 256);
  DOCTEST_CHECK(d.tokens.bos == 199999);
  DOCTEST_CHECK(d.lora.r == 16);
  auto j = d.to_json();
  DOCTEST_CHECK(j["image_tokens"] == 256);
  DOCTEST_CHECK(j["lora"]["r"] == 16);
  DOCTEST_CHECK(j["lora"]["target_modules"].size() == 4);
  auto back = model::VlmConfig::from_json(j, "x");
  DOCTEST_CHECK(back.to_json() == j);
  auto single = d;
  single.dual_encoder = false;
  single.use_lora = false;
  DOCTEST_CHECK(single.image_tokens() == 128);
  auto sj = single.to_json();
  DOCTEST_CHECK(sj["lora"].is_null());
  DOCTEST_CHECK(!sj.contains("packer2"));
  DOCTEST_CHECK(!model::VlmConfig::from_json(sj, "s").use_lora);
  auto bad = j;
  bad["image_tokens"] = 255;
  auto e = expect_error([&] { (void)model::VlmConfig::from_json(bad, "hse_vlm.json"); });
  DOCTEST_CHECK((e.code() == cli::Exit::incompatible));
  DOCTEST_CHECK(e.file() == "hse_vlm.json");
  bad = j;
  bad["packer2"]["out_dim"] = 64;
  e = expect_error([&] { (void)model::VlmConfig::from_json(bad, "hse_vlm.json"); });
  DOCTEST_CHECK_MESSAGE(std::string(e.what()).find("out_dim") != std::string::npos, e.what());
  bad = j;
  bad["version"] = 2;
  e = expect_error([&] { (void)model::VlmConfig::from_json(bad, "hse_vlm.json"); });
  DOCTEST_CHECK_MESSAGE(std::string(e.what()).find("version") != std::string::npos, e.what());
}

TEST_CASE("vlm: text layout and labels as LaMed's dataset") {
  const model::VlmTokens t{1, 2, 2, 5};  // pad == eos, as Phi-4-mini
  auto p = model::vlm_prompt_ids(t, 3, {10, 11});
  DOCTEST_CHECK(p == std::vector<std::int64_t>{1, 5, 5, 5, 10, 11});
  auto e = model::vlm_train_example(t, 3, {10, 11}, {20, 21, 22}, 12);
  DOCTEST_CHECK(e.valid_len == 9);
  DOCTEST_CHECK(e.input_ids == std::vector<std::int64_t>{1, 5, 5, 5, 10, 11, 20, 21, 22, 2, 2, 2});
  DOCTEST_CHECK(e.attention_mask == std::vector<std::int64_t>{1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0});
  DOCTEST_CHECK(e.labels == std::vector<std::int64_t>{-100, -100, -100, -100, -100, -100, 20, 21, 22, 2, -100, -100});
  // Truncated: no room for EOS.
  e = model::vlm_train_example(t, 3, {10, 11}, {20, 21, 22}, 8);
  DOCTEST_CHECK(e.input_ids == std::vector<std::int64_t>{1, 5, 5, 5, 10, 11, 20, 21});
  DOCTEST_CHECK(e.labels == std::vector<std::int64_t>{-100, -100, -100, -100, -100, -100, 20, 21});
  // An eos id inside the answer is masked when pad == eos (the published quirk).
  e = model::vlm_train_example(t, 3, {10}, {20, 2, 22}, 10);
  DOCTEST_CHECK(e.labels == std::vector<std::int64_t>{-100, -100, -100, -100, -100, 20, -100, 22, 2, -100});
  // pad != eos: only pads are masked, EOS (written at valid_len) kept.
  const model::VlmTokens t2{1, 3, 0, 5};
  e = model::vlm_train_example(t2, 2, {10}, {20}, 8);
  DOCTEST_CHECK(e.input_ids == std::vector<std::int64_t>{1, 5, 5, 10, 20, 3, 0, 0});
  DOCTEST_CHECK(e.labels == std::vector<std::int64_t>{-100, -100, -100, -100, 20, 3, -100, -100});
  auto b = model::vlm_collate({e, e});
  DOCTEST_CHECK(b.input_ids.sizes() == torch::IntArrayRef({2, 8}));
  DOCTEST_CHECK(b.labels[1][5].item<std::int64_t>() == 3);
  auto other = model::vlm_train_example(t2, 2, {10}, {20}, 9);
  DOCTEST_CHECK_THROWS_AS(model::vlm_collate({e, other}), cli::Error);
}

TEST_CASE("vlm: input assembly overwrites positions 1..n; shifted loss") {
  auto text = torch::randn({2, 10, 4});
  auto img = torch::randn({2, 3, 4}, torch::kFloat64);
  auto x = model::assemble_inputs_embeds(text, img);
  DOCTEST_CHECK((x.scalar_type() == torch::kFloat64));
  DOCTEST_CHECK(maxdiff(x.narrow(1, 0, 1), text.narrow(1, 0, 1)) == 0.0);
  DOCTEST_CHECK(maxdiff(x.narrow(1, 1, 3), img) == 0.0);
  DOCTEST_CHECK(maxdiff(x.narrow(1, 4, 6), text.narrow(1, 4, 6)) == 0.0);
  auto e = expect_error([&] { (void)model::assemble_inputs_embeds(text.narrow(1, 0, 3), img); });
  DOCTEST_CHECK((e.code() == cli::Exit::incompatible));

  auto logits = torch::randn({2, 5, 7});
  auto labels = torch::tensor({-100, -100, 3, 4, -100, -100, 1, -100, 6, 2}, torch::kLong).view({2, 5});
  // By hand: positions t predict labels t+1.
  double sum = 0;
  int n = 0;
  auto lsm = torch::log_softmax(logits, -1);
  for (int b = 0; b < 2; ++b)
    for (int t = 0; t < 4; ++t) {
      const auto y = labels[b][t + 1].item<std::int64_t>();
      if (y == -100) continue;
      sum -= lsm[b][t][y].item<double>();
      ++n;
    }
  DOCTEST_CHECK(model::causal_lm_loss(logits, labels).item<double>() == doctest::Approx(sum / n).epsilon(1e-6));
}

TEST_CASE("vlm: vocabulary resize as initialize_vision_tokenizer") {
  auto m = make_llm();
  const auto w = m->model->embed_tokens->weight.clone();
  model::resize_token_embeddings(*m, 90, 4);
  DOCTEST_CHECK(m->config.vocab_size == 90);
  DOCTEST_CHECK(m->model->embed_tokens->weight.size(0) == 90);
  DOCTEST_CHECK(maxdiff(m->model->embed_tokens->weight.narrow(0, 0, 86), w.narrow(0, 0, 86)) == 0.0);
  const auto mean = w.narrow(0, 0, 86).mean(0);
  for (int r = 86; r < 90; ++r) DOCTEST_CHECK(maxdiff(m->model->embed_tokens->weight[r], mean) < 1e-6);
  torch::NoGradGuard ng;
  DOCTEST_CHECK(m->forward(torch::tensor({{1, 89}}, torch::kLong)).size(2) == 90);
  model::resize_token_embeddings(*m, 100, 2);
  DOCTEST_CHECK(m->model->embed_tokens->weight.size(0) == 100);
  const auto mean2 = m->model->embed_tokens->weight.narrow(0, 0, 90).mean(0);
  DOCTEST_CHECK(maxdiff(m->model->embed_tokens->weight[99], mean2) < 1e-6);
}

TEST_CASE("vlm: forward, image placement, trainable set and gradients, generation") {
  auto cfg = tiny_config();
  model::HsenetVlm v(cfg, make_llm());
  randomize(v, 3);
  v->eval();
  DOCTEST_CHECK(v->image_tokens() == 16);
  DOCTEST_CHECK(v->tokens().im_patch == 5);
  auto named = v->named_trainable_parameters();
  DOCTEST_CHECK(named.size() == 14 + 14 + 16);
  DOCTEST_CHECK(named[0].first == "base_model.model.model.mm_projector.resolution_attention.Wq.weight");
  DOCTEST_CHECK(named[14].first == "base_model.model.model.mm_projector2.resolution_attention.Wq.weight");
  DOCTEST_CHECK(named[28].first == "base_model.model.model.layers.0.self_attn.o_proj.lora_A.default.weight");

  torch::manual_seed(4);
  auto t1 = torch::randn({2, 32, 16}), t2 = torch::randn({2, 32, 16});
  const model::VlmTokens tk = v->tokens();
  auto ex = model::vlm_train_example(tk, 16, {10, 11, 12}, {20, 21}, 24);
  auto ex2 = model::vlm_train_example(tk, 16, {13}, {22, 23, 24, 25}, 24);
  auto batch = model::vlm_collate({ex, ex2});
  {
    torch::NoGradGuard ng;
    auto emb = v->inputs_embeds(batch.input_ids, t1, t2);
    auto img = v->image_embeds(t1, t2);
    DOCTEST_CHECK(img.sizes() == torch::IntArrayRef({2, 16, 32}));
    DOCTEST_CHECK(maxdiff(emb.narrow(1, 1, 16), img) == 0.0);
    DOCTEST_CHECK(maxdiff(img.narrow(1, 0, 8), v->mm_projector->forward(t1)) == 0.0);
    DOCTEST_CHECK(maxdiff(img.narrow(1, 8, 8), v->mm_projector2->forward(t2)) == 0.0);
    // CLS-carrying tokens: the first one is dropped.
    auto with_cls = torch::cat({torch::randn({2, 1, 16}), t1}, 1);
    DOCTEST_CHECK(maxdiff(v->image_embeds(with_cls, t2), img) == 0.0);
    auto logits = v->forward(batch.input_ids, batch.attention_mask, t1, t2);
    DOCTEST_CHECK(logits.sizes() == torch::IntArrayRef({2, 24, 97}));
    // Another image changes the answer logits.
    auto other = v->forward(batch.input_ids, batch.attention_mask, t1 + 1.0, t2);
    DOCTEST_CHECK(maxdiff(other.narrow(1, 20, 2), logits.narrow(1, 20, 2)) > 1e-4);
    DOCTEST_CHECK(maxdiff(other.narrow(1, 0, 1), logits.narrow(1, 0, 1)) == 0.0);
  }
  // Gradients reach the packers and LoRA only.
  v->train();
  auto loss = v->loss(batch.input_ids, batch.attention_mask, batch.labels, t1, t2);
  DOCTEST_CHECK(std::isfinite(loss.item<double>()));
  loss.backward();
  std::set<const void*> trainable;
  for (auto& t : v->trainable_parameters()) {
    DOCTEST_CHECK(t.grad().defined());
    trainable.insert(t.unsafeGetTensorImpl());
  }
  for (auto& p : v->named_parameters(true))
    if (!trainable.count(p.value().unsafeGetTensorImpl())) DOCTEST_CHECK_MESSAGE(!p.value().grad().defined(), p.key());
  v->eval();

  // Generation equals a manual greedy loop over the full forward.
  torch::NoGradGuard ng;
  auto p1 = model::vlm_prompt_ids(tk, 16, {10, 11, 12});
  auto p2 = model::vlm_prompt_ids(tk, 16, {13});
  decode::GenerateOptions go;
  go.max_new_tokens = 6;
  go.eos_token_ids = std::vector<std::int64_t>{};
  auto out = decode::generate(*v, {p1, p2}, t1, t2, go);
  DOCTEST_REQUIRE(out.size() == 2);
  for (int b = 0; b < 2; ++b) {
    std::vector<std::int64_t> seq = b == 0 ? p1 : p2;
    for (int s = 0; s < 6; ++s) {
      auto ids = torch::tensor(seq, torch::kLong).unsqueeze(0);
      auto lg = v->forward(ids, {}, t1.narrow(0, b, 1), t2.narrow(0, b, 1));
      seq.push_back(lg[0][-1].argmax().item<std::int64_t>());
    }
    std::vector<std::int64_t> gen(seq.end() - 6, seq.end());
    DOCTEST_CHECK(out[static_cast<std::size_t>(b)] == gen);
  }
  auto e = expect_error([&] { (void)decode::generate(*v, {{1, 5, 5}}, t1.narrow(0, 0, 1), t2.narrow(0, 0, 1), go); });
  DOCTEST_CHECK((e.code() == cli::Exit::usage));
  e = expect_error([&] { (void)v->image_embeds(t1); });
  DOCTEST_CHECK((e.code() == cli::Exit::incompatible));

  // Single-encoder option.
  auto sc = tiny_config();
  sc.dual_encoder = false;
  model::HsenetVlm sv(sc, make_llm());
  DOCTEST_CHECK(sv->image_tokens() == 8);
  DOCTEST_CHECK(sv->image_embeds(t1).sizes() == torch::IntArrayRef({2, 8, 32}));
  // Packers that do not give the LLM's width.
  auto wc = tiny_config();
  wc.packer.out_dim = wc.packer2.out_dim = 48;
  e = expect_error([&] { model::HsenetVlm w(wc, make_llm()); });
  DOCTEST_CHECK((e.code() == cli::Exit::incompatible));
}

TEST_CASE("vlm: adapter directory and published layout: round trip and strict loading") {
  const auto dir = tmpdir("io");
  const auto llm_dir = dir / "Tiny-Phi";
  model::save_phi3(make_llm(7), llm_dir.string());
  auto cfg = tiny_config();
  model::HsenetVlm v(cfg, model::load_phi3(llm_dir.string()));
  randomize(v, 8);
  v->eval();
  DOCTEST_CHECK(v->config.lora.base_model_name_or_path == llm_dir.string());
  torch::manual_seed(9);
  auto t1 = torch::randn({1, 32, 16}), t2 = torch::randn({1, 32, 16});
  auto ex = model::vlm_train_example(v->tokens(), 16, {10, 11}, {20, 21}, 22);
  auto b = model::vlm_collate({ex});
  torch::NoGradGuard ng;
  const auto ref = v->forward(b.input_ids, b.attention_mask, t1, t2);

  const auto ad = dir / "adapter";
  model::save_vlm_adapter(*v, ad.string());
  DOCTEST_CHECK(fs::exists(ad / "hse_vlm.json"));
  {
    io::SafeTensors st((ad / "adapter.safetensors").string());
    DOCTEST_CHECK(st.size() == 14 + 14 + 16);
    DOCTEST_CHECK(st.contains("base_model.model.model.mm_projector.proj_mpls.2.weight"));
    DOCTEST_CHECK(st.contains("base_model.model.model.mm_projector2.resolution_attention.norm.bias"));
    DOCTEST_CHECK(st.contains("base_model.model.model.layers.1.mlp.down_proj.lora_B.default.weight"));
  }
  auto j = json::parse(std::ifstream(ad / "hse_vlm.json"));
  DOCTEST_CHECK(j["llm"] == llm_dir.string());
  DOCTEST_CHECK(j["image_tokens"] == 16);
  model::VlmLoadOptions o;
  o.llm = llm_dir.string();
  auto v2 = model::load_vlm(ad.string(), o);
  DOCTEST_CHECK(maxdiff(v2->forward(b.input_ids, b.attention_mask, t1, t2), ref) == 0.0);
  // Merged, and merged + int8.
  o.merge_lora = true;
  auto v3 = model::load_vlm(ad.string(), o);
  DOCTEST_CHECK(model::lora_merged(*v3->llm));
  DOCTEST_CHECK(maxdiff(v3->forward(b.input_ids, b.attention_mask, t1, t2), ref) < 1e-4);
  o.int8 = true;
  auto v4 = model::load_vlm(ad.string(), o);
  DOCTEST_CHECK(v4->llm->quantized());
  DOCTEST_CHECK(maxdiff(v4->forward(b.input_ids, b.attention_mask, t1, t2), ref) < 0.05 * ref.abs().max().item<double>());
  o.merge_lora = o.int8 = false;

  // The published layout (a converted pytorch_model.bin) with the config given.
  const auto pub = dir / "hsenet_vlm.safetensors";
  fs::copy_file(ad / "adapter.safetensors", pub);
  model::VlmLoadOptions po;
  po.llm = llm_dir.string();
  po.config = cfg;
  auto v5 = model::load_vlm(pub.string(), po);
  DOCTEST_CHECK(maxdiff(v5->forward(b.input_ids, b.attention_mask, t1, t2), ref) == 0.0);
  // PEFT-form LoRA names load too.
  {
    io::SafeTensorsWriter w;
    model::add_vlm_state(w, *v, model::LoraKeyForm::peft);
    w.write((dir / "peft_names.safetensors").string());
    auto v6 = model::load_vlm((dir / "peft_names.safetensors").string(), po);
    DOCTEST_CHECK(maxdiff(v6->forward(b.input_ids, b.attention_mask, t1, t2), ref) == 0.0);
  }
  // A single-encoder model refuses a dual-encoder file (unexpected mm_projector2 keys).
  auto sc = cfg;
  sc.dual_encoder = false;
  po.config = sc;
  auto e = expect_error([&] { (void)model::load_vlm(pub.string(), po); });
  DOCTEST_CHECK((e.code() == cli::Exit::incompatible));
  DOCTEST_CHECK(e.file() == pub.string());
  DOCTEST_CHECK_MESSAGE(std::string(e.what()).find("unexpected") != std::string::npos, e.what());
  po.allow_partial = true;
  (void)model::load_vlm(pub.string(), po);
  po.allow_partial = false;
  // Another LoRA rank: mis-shaped.
  auto rc = cfg;
  rc.lora.r = 8;
  po.config = rc;
  e = expect_error([&] { (void)model::load_vlm(pub.string(), po); });
  DOCTEST_CHECK_MESSAGE(std::string(e.what()).find("mis-shaped") != std::string::npos, e.what());
  // Missing keys.
  {
    io::SafeTensorsWriter w;
    model::add_state(w, *v->mm_projector, "base_model.model.model.mm_projector.");
    w.write((dir / "partial.safetensors").string());
    po.config = cfg;
    e = expect_error([&] { (void)model::load_vlm((dir / "partial.safetensors").string(), po); });
    DOCTEST_CHECK_MESSAGE(std::string(e.what()).find("missing") != std::string::npos, e.what());
  }
  // Another base model for the adapter.
  const auto other = dir / "Other-Phi";
  fs::create_directories(other);
  fs::copy(llm_dir, other);
  model::VlmLoadOptions oo;
  oo.llm = other.string();
  e = expect_error([&] { (void)model::load_vlm(ad.string(), oo); });
  DOCTEST_CHECK((e.code() == cli::Exit::incompatible));
  DOCTEST_CHECK(e.file() == (ad / "hse_vlm.json").string());
  DOCTEST_CHECK_MESSAGE(std::string(e.what()).find("Tiny-Phi") != std::string::npos, e.what());
  // The pickle: conversion hint.
  std::ofstream(dir / "pytorch_model.bin") << "x";
  e = expect_error([&] { (void)model::load_vlm((dir / "pytorch_model.bin").string(), po); });
  DOCTEST_CHECK((e.code() == cli::Exit::incompatible));
  DOCTEST_CHECK(e.hint().find("convert_hsenet_vlm.py") != std::string::npos);
  // The adapter names its LLM; a published file needs one given.
  DOCTEST_CHECK(maxdiff(model::load_vlm(ad.string())->forward(b.input_ids, b.attention_mask, t1, t2), ref) == 0.0);
  e = expect_error([&] { (void)model::load_vlm(pub.string()); });
  DOCTEST_CHECK((e.code() == cli::Exit::usage));
  fs::remove_all(dir);
}

// ---------------------------------------------------------------- parity driver
namespace {
model::VlmTokens tokens_from(const json& j) {
  model::VlmTokens t;
  t.bos = j.at("bos");
  t.eos = j.at("eos");
  t.pad = j.at("pad");
  t.im_patch = j.at("im_patch");
  return t;
}
}  // namespace

TEST_CASE("driver: vlm") {
  const char* jobs_path = std::getenv("HSE_VLM_JOBS");
  const char* outp = std::getenv("HSE_VLM_OUT");
  if (!jobs_path || !outp) return;
  torch::set_num_threads(1);
  try {
    const json spec = json::parse(std::ifstream(jobs_path));
    std::unique_ptr<io::SafeTensorsSet> inputs;
    if (const char* tin = std::getenv("HSE_VLM_TENSORS")) inputs = std::make_unique<io::SafeTensorsSet>(tin);
    io::SafeTensorsWriter w;
    auto put_f = [&](const std::string& name, const torch::Tensor& t) { fixtures::add_f32(w, name, t); };
    auto put_i = [&](const std::string& name, const std::vector<std::int64_t>& v) {
      w.add(name, io::Dtype::I64, {static_cast<std::int64_t>(v.size())}, v.data());
    };
    auto in = [&](const std::string& n) { return model::tensor_from(*inputs, n); };
    torch::NoGradGuard ng;
    for (const auto& job : spec.at("jobs")) {
      const std::string name = job.at("name").get<std::string>();
      const std::string kind = job.at("kind").get<std::string>();
      if (kind == "layout") {
        auto e = model::vlm_train_example(tokens_from(job.at("tokens")), job.at("image_tokens").get<std::int64_t>(),
                                          job.at("question").get<std::vector<std::int64_t>>(),
                                          job.at("answer").get<std::vector<std::int64_t>>(),
                                          job.at("max_length").get<std::int64_t>());
        put_i(name + ".input_ids", e.input_ids);
        put_i(name + ".labels", e.labels);
        put_i(name + ".attention_mask", e.attention_mask);
        continue;
      }
      model::VlmLoadOptions o;
      o.llm = job.at("llm").get<std::string>();
      if (job.contains("config")) o.config = model::VlmConfig::from_json(job["config"], name);
      auto v = model::load_vlm(job.at("weights").get<std::string>(), o);
      if (job.contains("save")) model::save_vlm_adapter(*v, job["save"].get<std::string>());
      const auto t1 = in(name + ".t1");
      const auto t2 = inputs->contains(name + ".t2") ? in(name + ".t2") : torch::Tensor();
      if (kind == "forward") {
        const auto ids = in(name + ".ids").to(torch::kLong), mask = in(name + ".mask").to(torch::kLong);
        const auto labels = in(name + ".labels").to(torch::kLong);
        put_f(name + ".embeds", v->inputs_embeds(ids, t1, t2));
        const auto logits = v->forward(ids, mask, t1, t2);
        put_f(name + ".logits", logits);
        put_f(name + ".loss", model::causal_lm_loss(logits, labels).reshape({1}));
      } else if (kind == "generate") {
        std::vector<std::vector<std::int64_t>> prompts;
        for (const auto& p : job.at("prompts")) prompts.push_back(p.get<std::vector<std::int64_t>>());
        decode::GenerateOptions go;
        go.max_new_tokens = job.value("max_new_tokens", 8);
        auto out = decode::generate(*v, prompts, t1, t2, go);
        for (std::size_t i = 0; i < out.size(); ++i) put_i(name + "." + std::to_string(i), out[i]);
      } else {
        DOCTEST_FAIL("unknown job kind " << kind);
      }
    }
    w.write(outp);
  } catch (const cli::Error& e) {
    std::cerr << e.line() << std::endl;
    std::_Exit(static_cast<int>(e.code()));
  }
}
