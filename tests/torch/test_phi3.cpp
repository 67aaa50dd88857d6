// hse::model::Phi3ForCausalLM (HF Phi3ForCausalLM layout) and generate().
// The "driver: phi3" case doubles as the C++ side of tests/parity/test_phi3.py:
//   HSE_PHI3_JOBS    a JSON file {"jobs": [...]}, each job
//                      {"name", "kind": "logits" | "logits_cached" | "generate" | "generate_embeds",
//                       "model": dir, "dtype": "fp32"|"bf16"|"fp16", "int8": bool,
//                       "ids": [[..]], "mask": [[..]], "position_ids": [[..]],  (logits)
//                       "split": n                                 (logits_cached: prefill n, then 1 by 1)
//                       "prompts": [[..]], "options": {...}       (generate)
//                       "embeds": name in HSE_PHI3_TENSORS, "mask"  (generate_embeds)}
//   HSE_PHI3_TENSORS input tensors (safetensors) for generate_embeds
//   HSE_PHI3_OUT     output safetensors: "<name>.logits" F32 [B,T,V]; "<name>.<i>" I64 token ids
//   HSE_PHI3_MODE=config with HSE_PHI3_CONFIG=<file>: reads the config; a cli::Error prints
//                    "<file>: <message>" to stderr and exits with its code (3).
//   HSE_PHI3_DEVICE (default cpu), HSE_PHI3_THREADS.
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/io/safetensors.h"
#include "hse/model/checkpoint.h"
#include "hse/decode/decode.h"
#include "hse/model/phi3.h"
#include "fixtures.h"

using namespace hse;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path tmpdir(const std::string& n) { return fixtures::tmpdir("hse_phi3_", n, /*keep=*/true); }

// Phi-4-mini's shape in miniature: GQA 4/2, head_dim 16, partial RoPE 0.75 (12 dims), LongRoPE 32 -> 128.
model::Phi3Config tiny(bool tied = true, bool longrope = true) {
  auto c = fixtures::tiny_phi3(64, tied);
  c.original_max_position_embeddings = 32;
  if (longrope) {
    c.rope_type = model::RopeType::longrope;
    c.short_factor = {1.0, 1.1, 1.3, 1.6, 2.0, 2.5};
    c.long_factor = {2.0, 3.0, 5.0, 8.0, 13.0, 21.0};
  }
  return c;
}

model::Phi3ForCausalLM make(const model::Phi3Config& c, int seed = 1) {
  return fixtures::make_phi3(c, seed, /*frozen=*/false);
}

void write(const fs::path& p, const std::string& s) {
  std::ofstream f(p);
  f << s;
}

json phi4_mini_json() {
  // Phi-4-mini-instruct's config.json (transformers 4 form), the factor lists shortened to 48 values.
  json j = json::parse(R"({"architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "vocab_size": 200064,
    "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 32, "num_attention_heads": 24,
    "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "partial_rotary_factor": 0.75,
    "max_position_embeddings": 131072, "original_max_position_embeddings": 4096, "tie_word_embeddings": true,
    "bos_token_id": 199999, "eos_token_id": 199999, "pad_token_id": 199999, "hidden_act": "silu",
    "sliding_window": 262144, "attention_bias": false, "full_attn_mod": 1, "lm_head_bias": false,
    "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attention_dropout": 0.0, "torch_dtype": "bfloat16"})");
  std::vector<double> s(48, 1.0), l(48, 2.0);
  j["rope_scaling"] = {{"type", "longrope"}, {"short_factor", s}, {"long_factor", l}};
  return j;
}

}  // namespace

TEST_CASE("phi3: config parsing (Phi-4-mini, transformers 5 form) and errors naming the file") {
  auto c = model::Phi3Config::from_json(phi4_mini_json(), "phi4.json");
  DOCTEST_CHECK(c.head_size() == 128);
  DOCTEST_CHECK(c.kv_heads() == 8);
  DOCTEST_CHECK(c.rotary_dim() == 96);
  DOCTEST_CHECK((c.rope_type == model::RopeType::longrope));
  DOCTEST_CHECK(c.tie_word_embeddings);
  DOCTEST_CHECK(c.eos_token_ids == std::vector<std::int64_t>{199999});
  DOCTEST_CHECK(c.sliding_window == 262144);
  DOCTEST_CHECK(c.original_max_position_embeddings == 4096);
  DOCTEST_CHECK(c.rope_attention_scaling() ==
                doctest::Approx(std::sqrt(1 + std::log(32.0) / std::log(4096.0))).epsilon(1e-12));

  // transformers 5 writes rope_parameters (with rope_theta, partial_rotary_factor, original max inside).
  json j5 = json::parse(R"({"model_type": "phi3", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 8,
    "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 256,
    "rope_parameters": {"rope_type": "longrope", "rope_theta": 500.0, "partial_rotary_factor": 0.5,
      "original_max_position_embeddings": 64, "short_factor": [1.0], "long_factor": [4.0]},
    "eos_token_id": [2, 3], "pad_token_id": null, "sliding_window": null})");
  auto c5 = model::Phi3Config::from_json(j5, "c5.json");
  DOCTEST_CHECK(c5.rope_theta == 500.0);
  DOCTEST_CHECK(c5.rotary_dim() == 2);
  DOCTEST_CHECK(c5.original_max_position_embeddings == 64);
  DOCTEST_CHECK(c5.eos_token_ids == std::vector<std::int64_t>{2, 3});
  DOCTEST_CHECK(c5.pad_token_id == -1);
  DOCTEST_CHECK(c5.sliding_window == 0);
  DOCTEST_CHECK(c5.rope_attention_scaling() == doctest::Approx(std::sqrt(1 + std::log(4.0) / std::log(64.0))));
  // No scaling: default RoPE, scaling 1.
  j5.erase("rope_parameters");
  DOCTEST_CHECK((model::Phi3Config::from_json(j5, "x").rope_type == model::RopeType::standard));
  DOCTEST_CHECK(model::Phi3Config::from_json(j5, "x").rope_attention_scaling() == 1.0);

  // Round trip through to_json.
  auto back = model::Phi3Config::from_json(c.to_json(), "back");
  DOCTEST_CHECK(back.long_factor == c.long_factor);
  DOCTEST_CHECK(back.rotary_dim() == 96);
  DOCTEST_CHECK(back.eos_token_ids == c.eos_token_ids);

  const auto dir = tmpdir("cfg");
  const auto path = (dir / "config.json").string();
  auto expect_error = [&](const json& bad_json, const std::string& needle) {
    write(path, bad_json.dump());
    try {
      (void)model::Phi3Config::from_file(dir.string());  // a directory reads <dir>/config.json
      DOCTEST_FAIL("no error for " << needle);
    } catch (const cli::Error& e) {
      DOCTEST_CHECK((e.code() == cli::Exit::incompatible));
      DOCTEST_CHECK(e.file() == path);
      DOCTEST_CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
    }
  };
  auto j = phi4_mini_json();
  j["rope_scaling"]["type"] = "dynamic";
  expect_error(j, "unknown rope_scaling type 'dynamic'");
  j = phi4_mini_json();
  j.erase("hidden_size");
  expect_error(j, "missing required field 'hidden_size'");
  j = phi4_mini_json();
  j["rope_scaling"]["long_factor"] = std::vector<double>(47, 1.0);
  expect_error(j, "'long_factor' has 47 values, expected rotary_dim/2 = 48");
  j = phi4_mini_json();
  j["rope_scaling"].erase("short_factor");
  expect_error(j, "short_factor");
  j = phi4_mini_json();
  j["model_type"] = "llama";
  expect_error(j, "model_type 'llama'");
  j = phi4_mini_json();
  j["hidden_act"] = "gelu";
  expect_error(j, "hidden_act 'gelu'");
  j = phi4_mini_json();
  j["attention_bias"] = true;
  expect_error(j, "attention_bias");
  j = phi4_mini_json();
  j["num_key_value_heads"] = 7;
  expect_error(j, "num_key_value_heads");
  j = phi4_mini_json();
  j["num_attention_heads"] = "24";
  expect_error(j, "'num_attention_heads' must be an integer");
  write(path, "{not json");
  DOCTEST_CHECK_THROWS_AS(model::Phi3Config::from_file(path), cli::Error);
  DOCTEST_CHECK_THROWS_AS(model::Phi3Config::from_file((dir / "absent.json").string()), cli::Error);
  // "su" and "yarn" are read as longrope (Phi3Config's backward compatibility).
  j = phi4_mini_json();
  j["rope_scaling"]["type"] = "su";
  DOCTEST_CHECK((model::Phi3Config::from_json(j, "su").rope_type == model::RopeType::longrope));
  fs::remove_all(dir);
}

TEST_CASE("phi3: resid_pdrop and attention_dropout act in training mode only") {
  auto c = tiny();
  c.resid_pdrop = 0.1;
  c.attention_dropout = 0.1;
  auto m = make(c, 3);
  const auto ids = torch::randint(3, 90, {2, 9}, torch::kLong);
  torch::NoGradGuard ng;
  m->eval();
  const auto ref = m->forward(ids);
  DOCTEST_CHECK(torch::equal(ref, m->forward(ids)));  // eval: deterministic
  m->train();
  torch::manual_seed(11);
  const auto a = m->forward(ids);
  torch::manual_seed(11);
  const auto b = m->forward(ids);
  const auto d = m->forward(ids);
  DOCTEST_CHECK(torch::equal(a, b));   // seeded
  DOCTEST_CHECK(!torch::equal(a, d));  // stochastic
  DOCTEST_CHECK(!torch::allclose(a, ref));
  // Each dropout alone changes the training output; both at 0 equal eval.
  for (int which = 0; which < 3; ++which) {
    auto c1 = c;
    c1.resid_pdrop = which == 0 ? 0.1 : 0.0;
    c1.attention_dropout = which == 1 ? 0.1 : 0.0;
    auto m1 = make(c1, 3);
    m1->train();
    const bool same = torch::allclose(m1->forward(ids), ref, 1e-6, 1e-6);
    DOCTEST_CHECK(same == (which == 2));
  }
  // The config keeps them, refuses p outside [0, 1).
  const auto j = c.to_json();
  DOCTEST_CHECK(j["resid_pdrop"].get<double>() == 0.1);
  DOCTEST_CHECK(model::Phi3Config::from_json(j, "c.json").attention_dropout == 0.1);
  auto bad = j;
  bad["resid_pdrop"] = 1.0;
  DOCTEST_CHECK_THROWS_AS(model::Phi3Config::from_json(bad, "c.json").validate("c.json"), cli::Error);
}

TEST_CASE("phi3: key names, shapes, tied and untied heads") {
  auto c = tiny(true);
  auto m = make(c);
  std::set<std::string> keys;
  for (const auto& p : m->named_parameters(true)) keys.insert(p.key());
  DOCTEST_CHECK(keys.size() == 2 + 6 * 2);
  for (const char* k : {"model.embed_tokens.weight", "model.norm.weight", "model.layers.0.input_layernorm.weight",
                        "model.layers.1.self_attn.qkv_proj.weight", "model.layers.1.self_attn.o_proj.weight",
                        "model.layers.0.post_attention_layernorm.weight", "model.layers.0.mlp.gate_up_proj.weight",
                        "model.layers.1.mlp.down_proj.weight"})
    DOCTEST_CHECK_MESSAGE(keys.count(k) == 1, k);
  DOCTEST_CHECK(keys.count("lm_head.weight") == 0);
  auto params = m->named_parameters(true);
  DOCTEST_CHECK(params["model.layers.0.self_attn.qkv_proj.weight"].sizes() == torch::IntArrayRef({(4 + 2 * 2) * 16, 64}));
  DOCTEST_CHECK(params["model.layers.0.self_attn.o_proj.weight"].sizes() == torch::IntArrayRef({64, 64}));
  DOCTEST_CHECK(params["model.layers.0.mlp.gate_up_proj.weight"].sizes() == torch::IntArrayRef({192, 64}));
  DOCTEST_CHECK(params["model.layers.0.mlp.down_proj.weight"].sizes() == torch::IntArrayRef({64, 96}));
  torch::NoGradGuard ng;
  auto ids = torch::randint(3, c.vocab_size, {2, 5}, torch::kLong);
  auto logits = m->forward(ids);
  DOCTEST_CHECK(logits.sizes() == torch::IntArrayRef({2, 5, 97}));
  DOCTEST_CHECK(m->forward(ids, {}, {}, nullptr, 1).sizes() == torch::IntArrayRef({2, 1, 97}));
  DOCTEST_CHECK(torch::allclose(m->forward(ids, {}, {}, nullptr, 1).select(1, 0), logits.select(1, 4), 1e-5, 1e-5));
  // Tied: the logits are the hidden states times the embedding.
  auto h = m->model->forward(m->embed(ids));
  DOCTEST_CHECK(torch::allclose(logits, torch::matmul(h, m->model->embed_tokens->weight.t()), 1e-4, 1e-5));
  auto u = make(tiny(false));
  DOCTEST_CHECK(u->named_parameters(true).contains("lm_head.weight"));
  // Padding id handling of the mask helper.
  auto mask = torch::tensor({0, 0, 1, 1, 1}, torch::kLong).unsqueeze(0);
  DOCTEST_CHECK(torch::equal(model::phi3_position_ids(mask), torch::tensor({0, 0, 0, 1, 2}, torch::kLong).unsqueeze(0)));
}

TEST_CASE("phi3: RoPE, partial rotation and the LongRoPE switch") {
  auto c = tiny();
  auto m = make(c);
  const auto s = m->model->inv_freq(32), l = m->model->inv_freq(33);
  DOCTEST_REQUIRE(s.numel() == 6);
  for (int i = 0; i < 6; ++i) {
    const double base = std::pow(10000.0, (2.0 * i) / 12.0);
    DOCTEST_CHECK(s[i].item<double>() == doctest::Approx(1.0 / (c.short_factor[i] * base)).epsilon(1e-6));
    DOCTEST_CHECK(l[i].item<double>() == doctest::Approx(1.0 / (c.long_factor[i] * base)).epsilon(1e-6));
  }
  auto [cos, sin] = m->model->rotary(torch::arange(4, torch::kLong).unsqueeze(0), torch::kFloat32);
  DOCTEST_CHECK(cos.sizes() == torch::IntArrayRef({1, 4, 12}));
  const double scaling = c.rope_attention_scaling();  // sqrt(1 + ln 4 / ln 32)
  DOCTEST_CHECK(scaling == doctest::Approx(std::sqrt(1 + std::log(4.0) / std::log(32.0))));
  DOCTEST_CHECK(cos[0][0][0].item<double>() == doctest::Approx(scaling));
  DOCTEST_CHECK(cos[0][3][6].item<double>() == doctest::Approx(scaling * std::cos(3 * s[0].item<double>())));
  // The choice is made per forward from max(position_ids)+1: the same prefix gives other logits
  // once the sequence passes original_max_position_embeddings (32).
  torch::NoGradGuard ng;
  auto ids = torch::randint(3, c.vocab_size, {1, 40}, torch::kLong);
  auto short_run = m->forward(ids.narrow(1, 0, 32));
  auto long_run = m->forward(ids);
  DOCTEST_CHECK(!torch::allclose(short_run, long_run.narrow(1, 0, 32), 1e-3, 1e-3));
  auto also_short = m->forward(ids.narrow(1, 0, 20));
  DOCTEST_CHECK(torch::allclose(also_short, short_run.narrow(1, 0, 20), 1e-5, 1e-5));
}

TEST_CASE("phi3: the KV cache and padding do not change the logits") {
  auto c = tiny();
  auto m = make(c, 2);
  torch::NoGradGuard ng;
  auto ids = torch::randint(3, c.vocab_size, {2, 12}, torch::kLong);
  auto full = m->forward(ids);
  model::KVCache cache;
  std::vector<torch::Tensor> parts{m->forward(ids.narrow(1, 0, 5), {}, {}, &cache)};
  for (int t = 5; t < 12; ++t) parts.push_back(m->forward(ids.narrow(1, t, 1), {}, {}, &cache));
  DOCTEST_CHECK(cache.length() == 12);
  DOCTEST_CHECK(torch::allclose(torch::cat(parts, 1), full, 1e-5, 1e-5));
  // A chunk of several tokens on top of a cache (causal mask with an offset).
  model::KVCache c2;
  auto a = m->forward(ids.narrow(1, 0, 4), {}, {}, &c2);
  auto b = m->forward(ids.narrow(1, 4, 8), {}, {}, &c2);
  DOCTEST_CHECK(torch::allclose(torch::cat({a, b}, 1), full, 1e-5, 1e-5));
  // Beam reordering.
  model::KVCache c3;
  (void)m->forward(ids.narrow(1, 0, 6), {}, {}, &c3);
  c3.reorder(torch::tensor({1, 1}, torch::kLong));
  auto r = m->forward(ids.narrow(1, 6, 1).select(0, 1).unsqueeze(0).expand({2, 1}), {}, {}, &c3);
  DOCTEST_CHECK(torch::allclose(r[0], full[1].narrow(0, 6, 1), 1e-5, 1e-5));

  // Left and right padding with the mask-derived positions equal the unpadded rows.
  auto one = ids.narrow(1, 0, 7).narrow(0, 0, 1);
  auto alone = m->forward(one);
  auto left = torch::cat({torch::zeros({1, 5}, torch::kLong), one}, 1);
  auto left_mask = torch::cat({torch::zeros({1, 5}, torch::kLong), torch::ones({1, 7}, torch::kLong)}, 1);
  auto batch = torch::cat({left, ids.narrow(0, 1, 1)}, 0);
  auto batch_mask = torch::cat({left_mask, torch::ones({1, 12}, torch::kLong)}, 0);
  auto lb = m->forward(batch, batch_mask);
  DOCTEST_CHECK(torch::allclose(lb[0].narrow(0, 5, 7), alone[0], 1e-5, 1e-5));
  DOCTEST_CHECK(torch::allclose(lb[1], full[1], 1e-5, 1e-5));
  auto right = torch::cat({one, torch::zeros({1, 5}, torch::kLong)}, 1);
  auto right_mask = torch::cat({torch::ones({1, 7}, torch::kLong), torch::zeros({1, 5}, torch::kLong)}, 1);
  auto rb = m->forward(right, right_mask);
  DOCTEST_CHECK(torch::allclose(rb[0].narrow(0, 0, 7), alone[0], 1e-5, 1e-5));
  DOCTEST_CHECK(!torch::isnan(rb).any().item<bool>());
  DOCTEST_CHECK(!torch::isnan(lb).any().item<bool>());
  // Incremental decoding on a left-padded batch.
  model::KVCache c4;
  auto p0 = m->forward(batch.narrow(1, 0, 9), batch_mask.narrow(1, 0, 9), {}, &c4);
  auto p1 = m->forward(batch.narrow(1, 9, 1), batch_mask.narrow(1, 0, 10), {}, &c4);
  DOCTEST_CHECK(torch::allclose(p1, lb.narrow(1, 9, 1), 1e-5, 1e-5));
  // Sliding window: with a window the far tokens drop out; without reaching it nothing changes.
  auto cw = c;
  cw.sliding_window = 4;
  model::Phi3ForCausalLM mw(cw);
  {
    auto src = m->named_parameters(true);
    for (auto& p : mw->named_parameters(true)) p.value().copy_(src[p.key()]);
  }
  auto w = mw->forward(ids);
  DOCTEST_CHECK(torch::allclose(w.narrow(1, 0, 3), full.narrow(1, 0, 3), 1e-5, 1e-5));
  DOCTEST_CHECK(!torch::allclose(w.narrow(1, 8, 4), full.narrow(1, 8, 4), 1e-3, 1e-3));
}

TEST_CASE("phi3: bf16, fp16 and int8 weight-only") {
  auto c = tiny();
  auto m = make(c, 3);
  torch::NoGradGuard ng;
  auto ids = torch::randint(3, c.vocab_size, {2, 9}, torch::kLong);
  auto ref = m->forward(ids);
  const double scale = ref.abs().max().item<double>();
  for (auto dt : {torch::kBFloat16, torch::kFloat16}) {
    auto h = make(c, 3);
    h->to(dt);
    auto out = h->forward(ids);
    DOCTEST_CHECK((out.scalar_type() == dt));
    const double d = (out.to(torch::kFloat32) - ref).abs().max().item<double>();
    DOCTEST_CHECK_MESSAGE(d < 0.05 * scale, "dtype diff " << d << " vs max " << scale);
  }
  // int8: per-row symmetric codes, the error of every weight at most scale/2.
  auto q = make(c, 3);
  auto w0 = q->model->layers[0]->as<model::Phi3DecoderLayerImpl>()->mlp->gate_up_proj->weight.clone();
  q->quantize_int8();
  DOCTEST_CHECK(q->quantized());
  auto* lin = q->model->layers[0]->as<model::Phi3DecoderLayerImpl>()->mlp->gate_up_proj.get();
  DOCTEST_CHECK((lin->qweight.scalar_type() == torch::kInt8));
  DOCTEST_CHECK(lin->qweight.abs().max().item<int>() == 127);
  const auto err = (lin->dense_weight(torch::kFloat32) - w0).abs();
  DOCTEST_CHECK((err <= lin->scale.unsqueeze(1) * 0.5 + 1e-7).all().item<bool>());
  std::set<std::string> keys;
  for (const auto& p : q->named_parameters(true)) keys.insert(p.key());
  DOCTEST_CHECK(keys.count("model.layers.0.mlp.gate_up_proj.weight") == 0);
  DOCTEST_CHECK(keys.count("model.embed_tokens.weight") == 1);
  auto qo = q->forward(ids);
  const double dq = (qo - ref).abs().max().item<double>();
  DOCTEST_CHECK_MESSAGE(dq < 0.05 * scale, "int8 diff " << dq << " vs max " << scale);
  DOCTEST_CHECK(dq > 0);
  // to(bf16) keeps the int8 codes and float32 scales.
  q->to(torch::kBFloat16);
  DOCTEST_CHECK((lin->qweight.scalar_type() == torch::kInt8));
  DOCTEST_CHECK((lin->scale.scalar_type() == torch::kFloat32));
  DOCTEST_CHECK((q->forward(ids).scalar_type() == torch::kBFloat16));
  DOCTEST_CHECK_THROWS_AS(model::save_phi3(q, tmpdir("q8").string()), cli::Error);
}

TEST_CASE("phi3: save, load (dtype, int8, partial, mismatches)") {
  auto c = tiny(false);
  auto m = make(c, 4);
  const auto dir = tmpdir("save");
  model::save_phi3(m, dir.string());
  DOCTEST_CHECK(fs::exists(dir / "config.json"));
  auto l = model::load_phi3(dir.string());
  torch::NoGradGuard ng;
  auto ids = torch::randint(3, c.vocab_size, {1, 8}, torch::kLong);
  DOCTEST_CHECK(torch::equal(m->forward(ids), l->forward(ids)));
  DOCTEST_CHECK(!l->parameters()[0].requires_grad());
  model::Phi3LoadOptions bf;
  bf.dtype = torch::kBFloat16;
  auto lb = model::load_phi3(dir.string(), bf);
  DOCTEST_CHECK((lb->dtype() == torch::kBFloat16));
  DOCTEST_CHECK((lb->forward(ids).scalar_type() == torch::kBFloat16));
  model::Phi3LoadOptions q8;
  q8.int8 = true;
  DOCTEST_CHECK(model::load_phi3(dir.string(), q8)->quantized());
  // A bf16 save loads back as its values.
  const auto dir_b = tmpdir("saveb");
  model::save_phi3(lb, dir_b.string());
  {
    io::SafeTensorsSet st(dir_b.string());
    DOCTEST_CHECK((st.info("lm_head.weight").dtype == io::Dtype::BF16));
  }
  DOCTEST_CHECK(torch::equal(model::load_phi3(dir_b.string(), bf)->forward(ids), lb->forward(ids)));
  // The tied config on an untied checkpoint: lm_head.weight is ignored, nothing missing.
  auto tied = c;
  tied.tie_word_embeddings = true;
  DOCTEST_CHECK_NOTHROW(model::load_phi3(tied, dir.string()));
  // An untied config on a checkpoint without lm_head: exit 3 naming the key, unless allow_partial.
  const auto dir_t = tmpdir("savet");
  model::save_phi3(make(tiny(true), 5), dir_t.string());
  try {
    (void)model::load_phi3(c, dir_t.string());
    DOCTEST_FAIL("no error");
  } catch (const cli::Error& e) {
    DOCTEST_CHECK((e.code() == cli::Exit::incompatible));
    DOCTEST_CHECK(std::string(e.what()).find("lm_head.weight") != std::string::npos);
  }
  model::Phi3LoadOptions part;
  part.allow_partial = true;
  auto p = model::load_phi3(c, dir_t.string(), part);
  DOCTEST_CHECK(torch::isfinite(p->forward(ids)).all().item<bool>());
  // Foreign tensors (e.g. HSENet's projector in a merged file) are refused unless ignored.
  const auto dir_x = tmpdir("savex");
  {
    io::SafeTensorsWriter w;
    model::add_state(w, *m, "");
    std::vector<float> extra(4, 1.f);
    w.add_float("model.mm_projector.0.weight", io::Dtype::F32, {2, 2}, extra.data());
    w.write((dir_x / "model.safetensors").string());
    fs::copy_file(dir / "config.json", dir_x / "config.json");
  }
  DOCTEST_CHECK_THROWS_AS(model::load_phi3(dir_x.string()), cli::Error);
  model::Phi3LoadOptions ig;
  ig.ignore_unexpected = {"model.mm_projector"};
  DOCTEST_CHECK(torch::equal(model::load_phi3(dir_x.string(), ig)->forward(ids), m->forward(ids)));
  fs::remove_all(dir_x);
  // A wrong size: mis-shaped keys are reported.
  auto big = c;
  big.vocab_size = 98;
  DOCTEST_CHECK_THROWS_AS(model::load_phi3(big, dir.string()), cli::Error);
  DOCTEST_CHECK_THROWS_AS(model::load_phi3((dir / "nothing").string()), cli::Error);
  for (const auto& d : {dir, dir_b, dir_t}) fs::remove_all(d);
}

TEST_CASE("generate: greedy equals a cache-free argmax loop; streaming, stop ids, embeddings") {
  auto c = tiny();
  auto m = make(c, 6);
  torch::NoGradGuard ng;
  // Prompts of different lengths; the longest crosses original_max_position_embeddings (32) while generating.
  std::vector<std::vector<std::int64_t>> prompts = {{5, 6, 7}, {}, {9, 10, 11, 12, 13, 14, 15, 16, 17, 18}};
  for (int i = 0; i < 25; ++i) prompts[1].push_back(3 + (i * 7) % 90);
  decode::GenerateOptions o;
  o.max_new_tokens = 12;
  o.eos_token_ids = std::vector<std::int64_t>{};
  auto out = decode::generate(m, prompts, o);
  DOCTEST_REQUIRE(out.size() == 3);
  // Each prompt alone against the whole sequence re-run each step (no cache, no padding). (In a
  // batch, LongRoPE's choice follows the longest row, as in transformers, so rows are checked alone.)
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    std::vector<std::int64_t> seq = prompts[i];
    std::vector<std::int64_t> ref;
    for (int s = 0; s < 12; ++s) {
      auto logits = m->forward(torch::tensor(seq, torch::kLong).unsqueeze(0));
      const auto next = logits[0][-1].argmax().item<std::int64_t>();
      ref.push_back(next);
      seq.push_back(next);
    }
    DOCTEST_CHECK_MESSAGE(decode::generate(m, {prompts[i]}, o)[0] == ref, "prompt " << i);
  }
  // A padded batch that stays below original_max_position_embeddings equals its rows alone.
  auto short_batch = decode::generate(m, {prompts[0], prompts[2]}, o);
  DOCTEST_CHECK(short_batch[0] == decode::generate(m, {prompts[0]}, o)[0]);
  DOCTEST_CHECK(short_batch[1] == decode::generate(m, {prompts[2]}, o)[0]);
  // Streaming: one call per step with the new tokens; returning false stops.
  std::vector<std::vector<std::int64_t>> streamed(3);
  int calls = 0;
  auto out2 = decode::generate(m, prompts, o, [&](const decode::GenerateStep& st) {
    DOCTEST_CHECK(st.step == calls);
    for (std::size_t i = 0; i < 3; ++i) streamed[i].push_back(st.tokens[i]);
    ++calls;
    return calls < 5;
  });
  DOCTEST_CHECK(calls == 5);
  for (std::size_t i = 0; i < 3; ++i) {
    DOCTEST_CHECK(out2[i].size() == 5);
    DOCTEST_CHECK(streamed[i] == std::vector<std::int64_t>(out[i].begin(), out[i].begin() + 5));
  }
  // A stop id: sequences end with it, the others go on.
  const std::int64_t stop = out[0][3];
  o.eos_token_ids = std::vector<std::int64_t>{stop};
  auto out3 = decode::generate(m, prompts, o);
  for (std::size_t i = 0; i < 3; ++i) {
    auto it = std::find(out[i].begin(), out[i].end(), stop);
    std::vector<std::int64_t> want(out[i].begin(), it == out[i].end() ? it : it + 1);
    DOCTEST_CHECK_MESSAGE(out3[i] == want, "prompt " << i);
  }
  DOCTEST_CHECK(out3[0].size() == 4);
  // Embeddings: embed(ids) gives the same tokens; a right-padded mask is re-packed.
  o.eos_token_ids = std::vector<std::int64_t>{};
  const std::int64_t L = 25;
  auto emb = torch::zeros({3, L, c.hidden_size});
  auto mask = torch::zeros({3, L}, torch::kLong);
  for (std::int64_t i = 0; i < 3; ++i) {
    const auto& p = prompts[static_cast<std::size_t>(i)];
    const std::int64_t n = static_cast<std::int64_t>(p.size());
    emb[i].narrow(0, 0, n).copy_(m->embed(torch::tensor(p, torch::kLong).unsqueeze(0))[0]);  // right padding
    mask[i].narrow(0, 0, n).fill_(1);
  }
  auto out4 = decode::generate(m, emb, mask, o);
  for (std::size_t i = 0; i < 3; ++i) DOCTEST_CHECK_MESSAGE(out4[i] == out[i], "prompt " << i);
  // Bad input: exit 2.
  DOCTEST_CHECK_THROWS_AS(decode::generate(m, {{5}, {}}, o), cli::Error);
  DOCTEST_CHECK_THROWS_AS(decode::generate(m, {{500}}, o), cli::Error);
  o.num_beams = 0;
  DOCTEST_CHECK_THROWS_AS(decode::generate(m, {{5}}, o), cli::Error);
}

TEST_CASE("generate: beam search, sampling and the repetition penalty") {
  auto c = tiny();
  auto m = make(c, 7);
  torch::NoGradGuard ng;
  std::vector<std::vector<std::int64_t>> prompts = {{5, 6, 7, 8}, {20, 21}};
  decode::GenerateOptions o;
  o.max_new_tokens = 8;
  o.eos_token_ids = std::vector<std::int64_t>{};
  // One beam is greedy.
  auto greedy = decode::generate(m, prompts, o);
  o.num_beams = 1;
  DOCTEST_CHECK(decode::generate(m, prompts, o) == greedy);
  // Beam search scores at least as well as greedy (sum of log-probabilities, no stop ids: same length).
  o.num_beams = 4;
  auto beams = decode::generate(m, prompts, o);
  auto score = [&](const std::vector<std::int64_t>& p, const std::vector<std::int64_t>& g) {
    std::vector<std::int64_t> seq = p;
    seq.insert(seq.end(), g.begin(), g.end());
    auto lp = torch::log_softmax(m->forward(torch::tensor(seq, torch::kLong).unsqueeze(0))[0], -1);
    double s = 0;
    for (std::size_t t = 0; t < g.size(); ++t) s += lp[static_cast<std::int64_t>(p.size() + t - 1)][g[t]].item<double>();
    return s;
  };
  for (std::size_t i = 0; i < 2; ++i) {
    DOCTEST_REQUIRE(beams[i].size() == 8);
    DOCTEST_CHECK(score(prompts[i], beams[i]) >= score(prompts[i], greedy[i]) - 1e-4);
  }
  // Sampling is reproducible with a seed and differs across seeds.
  o.num_beams = 1;
  o.do_sample = true;
  o.top_k = 0;
  o.temperature = 1.5;
  o.seed = 11;
  auto s1 = decode::generate(m, prompts, o), s2 = decode::generate(m, prompts, o);
  DOCTEST_CHECK(s1 == s2);
  o.seed = 12;
  auto s3 = decode::generate(m, prompts, o);
  DOCTEST_CHECK(s3 != s1);
  // top_k 1 is greedy.
  o.top_k = 1;
  DOCTEST_CHECK(decode::generate(m, prompts, o) == greedy);
  // A strong repetition penalty avoids repeating any token seen (prompt included).
  o = decode::GenerateOptions{};
  o.max_new_tokens = 10;
  o.eos_token_ids = std::vector<std::int64_t>{};
  o.repetition_penalty = 1e4;
  auto rp = decode::generate(m, prompts, o);
  for (std::size_t i = 0; i < 2; ++i) {
    std::set<std::int64_t> seen(prompts[i].begin(), prompts[i].end());
    for (auto t : rp[i]) {
      DOCTEST_CHECK_MESSAGE(seen.count(t) == 0, "token " << t << " repeated");
      seen.insert(t);
    }
  }
}

// ---------------------------------------------------------------- parity driver
namespace {

torch::Tensor tensor2d(const json& j, torch::Dtype dt = torch::kLong) {
  std::vector<std::int64_t> flat;
  const std::int64_t rows = static_cast<std::int64_t>(j.size());
  std::int64_t cols = rows ? static_cast<std::int64_t>(j[0].size()) : 0;
  for (const auto& r : j)
    for (const auto& v : r) flat.push_back(v.get<std::int64_t>());
  return torch::tensor(flat, torch::kLong).view({rows, cols}).to(dt);
}

decode::GenerateOptions options_from(const json& j) {
  decode::GenerateOptions o;
  o.max_new_tokens = j.value("max_new_tokens", o.max_new_tokens);
  o.do_sample = j.value("do_sample", o.do_sample);
  o.temperature = j.value("temperature", o.temperature);
  o.top_k = j.value("top_k", o.top_k);
  o.top_p = j.value("top_p", o.top_p);
  o.seed = j.value("seed", o.seed);
  o.num_beams = j.value("num_beams", o.num_beams);
  o.length_penalty = j.value("length_penalty", o.length_penalty);
  o.repetition_penalty = j.value("repetition_penalty", o.repetition_penalty);
  o.guidance_scale = j.value("guidance_scale", o.guidance_scale);
  if (j.contains("negative_prompt_ids"))
    for (const auto& p : j["negative_prompt_ids"]) o.negative_prompt_ids.push_back(p.get<std::vector<std::int64_t>>());
  o.pad_token_id = j.value("pad_token_id", o.pad_token_id);
  const std::string es = j.value("early_stopping", std::string("heuristic"));
  o.early_stopping = es == "on" ? decode::EarlyStopping::on
                     : es == "never" ? decode::EarlyStopping::never
                                     : decode::EarlyStopping::heuristic;
  if (j.contains("eos_token_ids") && !j["eos_token_ids"].is_null())
    o.eos_token_ids = j["eos_token_ids"].get<std::vector<std::int64_t>>();
  return o;
}

torch::Dtype dtype_of(const std::string& s) {
  if (s == "bf16") return torch::kBFloat16;
  if (s == "fp16") return torch::kFloat16;
  return torch::kFloat32;
}

}  // namespace

TEST_CASE("driver: phi3") {
  const char* mode = std::getenv("HSE_PHI3_MODE");
  if (mode && std::string(mode) == "config") {
    const char* cfg = std::getenv("HSE_PHI3_CONFIG");
    DOCTEST_REQUIRE(cfg != nullptr);
    try {
      auto c = model::Phi3Config::from_file(cfg);
      std::cout << c.to_json().dump() << std::endl;
    } catch (const cli::Error& e) {
      std::cerr << e.line() << std::endl;
      std::_Exit(static_cast<int>(e.code()));
    }
    return;
  }
  const char* jobs_path = std::getenv("HSE_PHI3_JOBS");
  const char* outp = std::getenv("HSE_PHI3_OUT");
  if (!jobs_path || !outp) return;
  if (const char* th = std::getenv("HSE_PHI3_THREADS")) torch::set_num_threads(std::atoi(th));
  const char* dev_c = std::getenv("HSE_PHI3_DEVICE");
  const torch::Device device(dev_c ? dev_c : "cpu");
  std::ifstream f(jobs_path);
  DOCTEST_REQUIRE(f.good());
  const json spec = json::parse(f);
  std::unique_ptr<io::SafeTensorsSet> inputs;
  if (const char* tin = std::getenv("HSE_PHI3_TENSORS")) inputs = std::make_unique<io::SafeTensorsSet>(tin);

  std::map<std::string, model::Phi3ForCausalLM> models;
  auto get_model = [&](const json& job) {
    const std::string dir = job.at("model").get<std::string>();
    const std::string dt = job.value("dtype", std::string("fp32"));
    const bool int8 = job.value("int8", false);
    const std::string key = dir + "|" + dt + "|" + (int8 ? "int8" : "");
    auto it = models.find(key);
    if (it != models.end()) return it->second;
    model::Phi3LoadOptions o;
    o.dtype = dtype_of(dt);
    o.device = device;
    o.int8 = int8;
    auto m = model::load_phi3(dir, o);
    models.emplace(key, m);
    return m;
  };

  torch::NoGradGuard ng;
  io::SafeTensorsWriter w;
  auto put_f = [&](const std::string& name, const torch::Tensor& t) { fixtures::add_f32(w, name, t); };
  auto put_ids = [&](const std::string& name, const std::vector<std::vector<std::int64_t>>& out) {
    for (std::size_t i = 0; i < out.size(); ++i)
      w.add(name + "." + std::to_string(i), io::Dtype::I64, {static_cast<std::int64_t>(out[i].size())},
            out[i].data());
  };
  for (const auto& job : spec.at("jobs")) {
    const std::string name = job.at("name").get<std::string>();
    const std::string kind = job.at("kind").get<std::string>();
    auto m = get_model(job);
    if (kind == "logits") {
      auto ids = tensor2d(job.at("ids")).to(device);
      torch::Tensor mask, pos;
      if (job.contains("mask")) mask = tensor2d(job["mask"]).to(device);
      if (job.contains("position_ids")) pos = tensor2d(job["position_ids"]).to(device);
      put_f(name + ".logits", m->forward(ids, mask, pos));
    } else if (kind == "logits_cached") {
      auto ids = tensor2d(job.at("ids")).to(device);
      const std::int64_t split = job.at("split").get<std::int64_t>();
      model::KVCache cache;
      std::vector<torch::Tensor> parts{m->forward(ids.narrow(1, 0, split), {}, {}, &cache)};
      for (std::int64_t t = split; t < ids.size(1); ++t) parts.push_back(m->forward(ids.narrow(1, t, 1), {}, {}, &cache));
      put_f(name + ".logits", torch::cat(parts, 1));
    } else if (kind == "generate") {
      std::vector<std::vector<std::int64_t>> prompts;
      for (const auto& p : job.at("prompts")) prompts.push_back(p.get<std::vector<std::int64_t>>());
      put_ids(name, decode::generate(m, prompts, options_from(job.value("options", json::object()))));
    } else if (kind == "generate_embeds") {
      DOCTEST_REQUIRE_MESSAGE(inputs != nullptr, "HSE_PHI3_TENSORS must be set");
      auto emb = model::tensor_from(*inputs, job.at("embeds").get<std::string>());
      torch::Tensor mask;
      if (job.contains("mask")) mask = tensor2d(job["mask"]);
      auto o = options_from(job.value("options", json::object()));
      if (job.contains("negative_embeds"))
        o.negative_prompt_embeds = model::tensor_from(*inputs, job["negative_embeds"].get<std::string>());
      put_ids(name, decode::generate(m, emb, mask, o));
    } else {
      DOCTEST_FAIL("unknown job kind " << kind);
    }
  }
  w.write(outp);
}
