// hse::model LoRA (lora.h) on the Phi-3 decoder: config parsing (PEFT adapter_config.json), target
// selection, PEFT init, forward, merge/unmerge, dropout, gradients, int8/bf16 interplay, adapter
// save/load and its errors.
// The "driver: lora" case is the C++ side of tests/parity/test_lora.py:
//   HSE_LORA_JOBS  a JSON file {"jobs": [...]}, each job
//                    {"name", "model": base dir, "ids": [[..]],
//                     "adapter": PEFT dir or .safetensors  -> "<name>.unmerged", "<name>.merged",
//                                                            "<name>.unmerged_again" logits
//                     "save": dir                           (save the loaded adapter there)
//                     "init_seed": n, "config": {PEFT json} -> torch::manual_seed(n), apply_lora:
//                                                            "<name>.init.<module>.lora_A" weights}
//   HSE_LORA_OUT   output safetensors (F32)
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
#include "hse/model/lora.h"
#include "hse/model/phi3.h"
#include "fixtures.h"

using namespace hse;
namespace fs = std::filesystem;
using nlohmann::json;
using fixtures::expect_error;
using fixtures::maxdiff;

namespace {

fs::path tmpdir(const std::string& n) { return fixtures::tmpdir("hse_lora_", n); }

model::Phi3Config tiny(std::int64_t hidden = 64, bool tied = true) { return fixtures::tiny_phi3(hidden, tied); }

model::Phi3ForCausalLM make(const model::Phi3Config& c, int seed = 1) { return fixtures::make_phi3(c, seed); }

void randomize_lora(model::Phi3ForCausalLM& m, int seed, double std = 0.1) {
  torch::manual_seed(seed);
  torch::NoGradGuard ng;
  for (auto& t : model::lora_parameters(*m)) t.normal_(0.0, std);
}

// PEFT 0.21.2's save_pretrained output for LoraConfig(r=4, lora_alpha=8, ...).
const char* kPeftConfig = R"({
  "alora_invocation_tokens": null, "alpha_pattern": {}, "arrow_config": null, "auto_mapping": null,
  "base_model_name_or_path": "/models/Phi-4-mini-instruct", "bias": "none", "corda_config": null,
  "ensure_weight_tying": false, "eva_config": null, "exclude_modules": null, "fan_in_fan_out": false,
  "inference_mode": true, "init_lora_weights": true, "kasa_config": null, "layer_replication": null,
  "layers_pattern": null, "layers_to_transform": null, "loftq_config": {}, "lora_alpha": 8, "lora_bias": false,
  "lora_dropout": 0.05, "lora_ga_config": null, "megatron_config": null, "megatron_core": "megatron.core",
  "modules_to_save": null, "monteclora_config": null, "peft_type": "LORA", "peft_version": "0.21.2",
  "qalora_group_size": 16, "r": 4, "rank_pattern": {}, "revision": null,
  "target_modules": ["qkv_proj", "gate_up_proj", "down_proj", "o_proj"], "target_parameters": null,
  "task_type": "CAUSAL_LM", "trainable_token_indices": null, "use_bdlora": null, "use_dora": false,
  "use_qalora": false, "use_rslora": false, "velora_config": null, "some_future_field": 5})";

}  // namespace

TEST_CASE("lora: PEFT adapter_config.json parsing, round trip and refusals") {
  auto c = model::LoraConfig::from_json(json::parse(kPeftConfig), "adapter_config.json");
  DOCTEST_CHECK(c.r == 4);
  DOCTEST_CHECK(c.lora_alpha == 8.0);
  DOCTEST_CHECK(c.lora_dropout == doctest::Approx(0.05));
  DOCTEST_CHECK(c.target_modules.size() == 4);
  DOCTEST_CHECK(c.base_model_name_or_path == "/models/Phi-4-mini-instruct");
  DOCTEST_CHECK(c.scaling_for("model.layers.0.mlp.down_proj") == 2.0);
  DOCTEST_CHECK(c.extra.contains("some_future_field"));
  auto back = model::LoraConfig::from_json(c.to_json(), "back");
  DOCTEST_CHECK(back.r == 4);
  DOCTEST_CHECK(back.to_json() == c.to_json());
  DOCTEST_CHECK(c.to_json()["lora_alpha"].is_number_integer());
  DOCTEST_CHECK(c.to_json()["target_modules"].is_array());
  // HSENet defaults.
  model::LoraConfig d;
  DOCTEST_CHECK(d.r == 16);
  DOCTEST_CHECK(d.scaling_for("x.qkv_proj") == 2.0);
  d.use_rslora = true;
  DOCTEST_CHECK(d.scaling_for("x.qkv_proj") == doctest::Approx(32.0 / 4.0));

  const auto dir = tmpdir("cfg");
  const auto path = (dir / "adapter_config.json").string();
  auto expect = [&](const std::string& field, const json& value, const std::string& needle) {
    json j = json::parse(kPeftConfig);
    j[field] = value;
    std::ofstream(path) << j.dump();
    auto e = expect_error([&] { (void)model::LoraConfig::from_file(dir.string()); });
    DOCTEST_CHECK((e.code() == cli::Exit::incompatible));
    DOCTEST_CHECK(e.file() == path);
    DOCTEST_CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
  };
  expect("use_dora", true, "use_dora");
  expect("bias", "all", "bias 'all'");
  expect("modules_to_save", json::array({"lm_head"}), "modules_to_save");
  expect("fan_in_fan_out", true, "fan_in_fan_out");
  expect("peft_type", "IA3", "peft_type");
  expect("r", 0, "'r' must be >= 1");
  expect("r", "4", "'r' must be an integer");
  expect("init_lora_weights", "pissa", "init_lora_weights 'pissa'");
  fs::remove_all(dir);
}

TEST_CASE("lora: target selection as PEFT's check_target_module_exists") {
  model::LoraConfig c;
  DOCTEST_CHECK(c.targets("model.layers.0.self_attn.qkv_proj"));
  DOCTEST_CHECK(c.targets("qkv_proj"));
  DOCTEST_CHECK(!c.targets("model.layers.0.self_attn.xqkv_proj"));
  DOCTEST_CHECK(!c.targets("lm_head"));
  c.exclude_modules = {"layers.1.mlp.down_proj"};
  DOCTEST_CHECK(!c.targets("model.layers.1.mlp.down_proj"));
  DOCTEST_CHECK(c.targets("model.layers.0.mlp.down_proj"));
  c.exclude_modules.clear();
  c.layers_to_transform = {1};
  DOCTEST_CHECK(!c.targets("model.layers.0.mlp.down_proj"));
  DOCTEST_CHECK(c.targets("model.layers.1.mlp.down_proj"));
  c.layers_pattern = {"layers"};
  DOCTEST_CHECK(c.targets("model.layers.1.mlp.down_proj"));
  DOCTEST_CHECK(!c.targets("model.layers.0.mlp.down_proj"));
  c.layers_to_transform.clear();
  c.target_regex = R"(.*\.self_attn\.(qkv|o)_proj)";
  DOCTEST_CHECK(c.targets("model.layers.3.self_attn.o_proj"));
  DOCTEST_CHECK(!c.targets("model.layers.3.mlp.down_proj"));
  model::LoraConfig p;
  p.rank_pattern = {{"o_proj", 2}};
  p.alpha_pattern = {{"layers.1.mlp.down_proj", 3.0}};
  DOCTEST_CHECK(p.rank_for("model.layers.0.self_attn.o_proj") == 2);
  DOCTEST_CHECK(p.rank_for("model.layers.0.self_attn.qkv_proj") == 16);
  DOCTEST_CHECK(p.alpha_for("model.layers.1.mlp.down_proj") == 3.0);
  DOCTEST_CHECK(p.alpha_for("model.layers.0.mlp.down_proj") == 32.0);
  DOCTEST_CHECK(p.scaling_for("model.layers.0.self_attn.o_proj") == 16.0);
}

TEST_CASE("lora: attach, PEFT init, frozen base, names and shapes") {
  auto c = tiny();
  auto m = make(c);
  torch::NoGradGuard ng;
  auto ids = torch::randint(3, c.vocab_size, {2, 9}, torch::kLong);
  const auto before = m->forward(ids);
  model::LoraConfig lc;
  lc.r = 4;
  lc.lora_alpha = 8;
  auto names = model::apply_lora(*m, lc);
  DOCTEST_CHECK(names.size() == 8);
  DOCTEST_CHECK(names[0] == "model.layers.0.self_attn.o_proj");  // HF registration order
  DOCTEST_CHECK(model::has_lora(*m));
  auto params = m->named_parameters(true);
  DOCTEST_CHECK(params["model.layers.0.self_attn.qkv_proj.lora_A.weight"].sizes() == torch::IntArrayRef({4, 64}));
  DOCTEST_CHECK(params["model.layers.0.self_attn.qkv_proj.lora_B.weight"].sizes() == torch::IntArrayRef({128, 4}));
  DOCTEST_CHECK(params["model.layers.1.mlp.gate_up_proj.lora_B.weight"].sizes() == torch::IntArrayRef({192, 4}));
  DOCTEST_CHECK(params["model.layers.1.mlp.down_proj.lora_A.weight"].sizes() == torch::IntArrayRef({4, 96}));
  // kaiming_uniform(a=sqrt(5)): U(-1/sqrt(in), 1/sqrt(in)); B zeros.
  const auto A = params["model.layers.0.mlp.down_proj.lora_A.weight"];
  DOCTEST_CHECK(A.abs().max().item<double>() <= 1.0 / std::sqrt(96.0) + 1e-7);
  DOCTEST_CHECK(A.abs().max().item<double>() > 0.5 / std::sqrt(96.0));
  DOCTEST_CHECK(params["model.layers.0.mlp.down_proj.lora_B.weight"].abs().max().item<double>() == 0.0);
  for (const auto& p : params) {
    const bool is_lora = p.key().find(".lora_") != std::string::npos;
    DOCTEST_CHECK_MESSAGE(p.value().requires_grad() == is_lora, p.key());
  }
  DOCTEST_CHECK(model::lora_parameter_count(*m) == 2 * (4 * 64 + 128 * 4 + 4 * 64 + 64 * 4 + 4 * 64 + 192 * 4 + 4 * 96 + 64 * 4));
  // B = 0: the model is unchanged.
  DOCTEST_CHECK(maxdiff(m->forward(ids), before) == 0.0);
  // HSENet's numbers at Phi-4-mini's size: 23.07 M LoRA parameters (spec §4).
  const std::int64_t per_layer = 16 * 3072 + 5120 * 16 + 16 * 3072 + 3072 * 16 + 16 * 3072 + 16384 * 16 + 16 * 8192 + 3072 * 16;
  DOCTEST_CHECK(per_layer * 32 == 23068672);
  // Targets matching nothing.
  model::LoraConfig none;
  none.target_modules = {"q_proj"};
  auto e = expect_error([&] { model::apply_lora(*m, none); });
  DOCTEST_CHECK((e.code() == cli::Exit::incompatible));
  // lm_head of an untied model can be targeted.
  auto u = make(tiny(64, false));
  model::LoraConfig lh;
  lh.target_modules = {"lm_head"};
  DOCTEST_CHECK(model::apply_lora(*u, lh) == std::vector<std::string>{"lm_head"});
  // remove_lora restores the plain module tree.
  model::remove_lora(*m);
  DOCTEST_CHECK(!model::has_lora(*m));
  DOCTEST_CHECK(m->named_parameters(true).size() == 2 + 6 * 2);
}

TEST_CASE("lora: forward equals the explicit delta; merge and unmerge; rslora") {
  auto c = tiny();
  auto m = make(c, 3);
  torch::NoGradGuard ng;
  auto ids = torch::randint(3, c.vocab_size, {2, 11}, torch::kLong);
  const auto base = m->forward(ids);
  std::map<std::string, torch::Tensor> w0;
  for (auto& p : m->named_parameters(true)) w0[p.key()] = p.value().clone();
  model::LoraConfig lc;
  lc.r = 4;
  lc.lora_alpha = 8;
  model::apply_lora(*m, lc);
  randomize_lora(m, 5);
  const auto unmerged = m->forward(ids);
  DOCTEST_CHECK(maxdiff(unmerged, base) > 1e-2);
  // One layer by hand: x W^T + 2 * (x A^T) B^T.
  auto* l = m->model->layers[0]->as<model::Phi3DecoderLayerImpl>()->mlp->down_proj.get();
  auto x = torch::randn({3, 96});
  auto want = torch::matmul(x, l->weight.t()) + torch::matmul(torch::matmul(x, l->lora_A->weight.t()), l->lora_B->weight.t()) * 2.0;
  DOCTEST_CHECK(maxdiff(l->forward(x), want) < 1e-5);

  model::merge_lora(*m);
  DOCTEST_CHECK(model::lora_merged(*m));
  DOCTEST_CHECK(maxdiff(m->forward(ids), unmerged) < 1e-4);
  auto delta = torch::matmul(l->lora_B->weight, l->lora_A->weight) * 2.0;
  DOCTEST_CHECK(maxdiff(l->weight, w0["model.layers.0.mlp.down_proj.weight"] + delta) < 1e-6);
  model::merge_lora(*m);  // idempotent
  DOCTEST_CHECK(maxdiff(m->forward(ids), unmerged) < 1e-4);
  model::unmerge_lora(*m);
  DOCTEST_CHECK(!model::lora_merged(*m));
  DOCTEST_CHECK(maxdiff(l->weight, w0["model.layers.0.mlp.down_proj.weight"]) < 1e-6);
  DOCTEST_CHECK(maxdiff(m->forward(ids), unmerged) < 1e-5);

  // rslora: scaling alpha / sqrt(r).
  lc.use_rslora = true;
  model::apply_lora(*m, lc);
  DOCTEST_CHECK(l->lora_scaling == doctest::Approx(8.0 / 2.0));
  // save_phi3 writes the base weights only (merged LoRA inside them).
  randomize_lora(m, 6);
  model::merge_lora(*m);
  const auto dir = tmpdir("savephi3");
  model::save_phi3(m, dir.string());
  io::SafeTensors st((dir / "model.safetensors").string());
  for (const auto& k : st.names()) DOCTEST_CHECK_MESSAGE(k.find("lora") == std::string::npos, k);
  auto merged_model = model::load_phi3(dir.string());
  DOCTEST_CHECK(maxdiff(merged_model->forward(ids), m->forward(ids)) < 1e-5);
  fs::remove_all(dir);
}

TEST_CASE("lora: dropout in training only; gradients reach only the LoRA factors") {
  auto c = tiny();
  auto m = make(c, 4);
  model::LoraConfig lc;
  lc.r = 4;
  lc.lora_alpha = 8;
  lc.lora_dropout = 0.5;
  model::apply_lora(*m, lc);
  randomize_lora(m, 7);
  auto ids = torch::randint(3, c.vocab_size, {2, 7}, torch::kLong);
  torch::Tensor e1, e2;
  {
    torch::NoGradGuard ng;
    e1 = m->forward(ids);
    e2 = m->forward(ids);
  }
  DOCTEST_CHECK(maxdiff(e1, e2) == 0.0);
  m->train();
  torch::Tensor t1, t2;
  {
    torch::NoGradGuard ng;
    t1 = m->forward(ids);
    t2 = m->forward(ids);
  }
  DOCTEST_CHECK(maxdiff(t1, t2) > 1e-4);
  m->eval();
  auto loss = m->forward(ids).pow(2).mean();
  loss.backward();
  for (auto& p : m->named_parameters(true)) {
    const bool is_lora = p.key().find(".lora_") != std::string::npos;
    DOCTEST_CHECK_MESSAGE(p.value().grad().defined() == is_lora, p.key());
  }
  // With B = 0 (fresh init), A gets no gradient signal but B does (as in PEFT).
  model::apply_lora(*m, lc);
  auto l2 = m->forward(ids).pow(2).mean();
  l2.backward();
  auto* l = m->model->layers[0]->as<model::Phi3DecoderLayerImpl>()->self_attn->qkv_proj.get();
  DOCTEST_CHECK(l->lora_B->weight.grad().abs().max().item<double>() > 0);
  DOCTEST_CHECK(l->lora_A->weight.grad().abs().max().item<double>() == 0);
}

TEST_CASE("lora: bf16 base keeps float32 LoRA; int8 base works unmerged, refuses merge") {
  auto c = tiny();
  auto m = make(c, 8);
  model::LoraConfig lc;
  lc.r = 4;
  lc.lora_alpha = 8;
  model::apply_lora(*m, lc);
  randomize_lora(m, 9);
  torch::NoGradGuard ng;
  auto ids = torch::randint(3, c.vocab_size, {1, 8}, torch::kLong);
  const auto ref = m->forward(ids);
  m->to(torch::kBFloat16);
  auto* l = m->model->layers[0]->as<model::Phi3DecoderLayerImpl>()->mlp->gate_up_proj.get();
  DOCTEST_CHECK((l->weight.scalar_type() == torch::kBFloat16));
  DOCTEST_CHECK((l->lora_A->weight.scalar_type() == torch::kFloat32));
  const auto bf = m->forward(ids);
  DOCTEST_CHECK((bf.scalar_type() == torch::kBFloat16));
  DOCTEST_CHECK(maxdiff(bf, ref) < 0.05 * ref.abs().max().item<double>());
  model::set_lora_dtype(*m, torch::kBFloat16);
  DOCTEST_CHECK((l->lora_B->weight.scalar_type() == torch::kBFloat16));
  m->to(torch::kFloat32);
  model::set_lora_dtype(*m, torch::kFloat32);

  auto q = make(c, 8);
  model::apply_lora(*q, lc);
  randomize_lora(q, 9);
  q->quantize_int8();
  const auto qi = q->forward(ids);
  DOCTEST_CHECK(maxdiff(qi, ref) < 0.05 * ref.abs().max().item<double>());
  auto e = expect_error([&] { model::merge_lora(*q); });
  DOCTEST_CHECK((e.code() == cli::Exit::runtime));
  // Merge first, then quantise: close to the unmerged int8 result.
  auto mq = make(c, 8);
  model::apply_lora(*mq, lc);
  randomize_lora(mq, 9);
  model::merge_lora(*mq);
  mq->quantize_int8();
  DOCTEST_CHECK(maxdiff(mq->forward(ids), ref) < 0.05 * ref.abs().max().item<double>());
}

TEST_CASE("lora: adapter save/load round trip, .default. names, mismatches exit 3 naming the file") {
  auto c = tiny();
  const auto dir = tmpdir("adapter");
  const auto base_dir = dir / "Tiny-Phi3";
  {
    auto b = make(c, 10);
    model::save_phi3(b, base_dir.string());
  }
  auto m = model::load_phi3(base_dir.string());
  DOCTEST_CHECK(m->name_or_path == base_dir.string());
  model::LoraConfig lc;
  lc.r = 4;
  lc.lora_alpha = 8;
  model::apply_lora(*m, lc);
  randomize_lora(m, 11);
  torch::NoGradGuard ng;
  auto ids = torch::randint(3, c.vocab_size, {2, 10}, torch::kLong);
  const auto ref = m->forward(ids);
  const auto ad = dir / "adapter";
  model::save_lora_adapter(*m, lc, ad.string());
  {
    io::SafeTensors st((ad / "adapter_model.safetensors").string());
    DOCTEST_CHECK(st.size() == 16);
    DOCTEST_CHECK(st.contains("base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight"));
    DOCTEST_CHECK(st.contains("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"));
    DOCTEST_CHECK(st.metadata().at("format") == "pt");
    auto cfg = model::LoraConfig::from_file(ad.string());
    DOCTEST_CHECK(cfg.base_model_name_or_path == base_dir.string());
  }
  auto m2 = model::load_phi3(base_dir.string());
  auto lc2 = model::load_lora_adapter(*m2, ad.string());
  DOCTEST_CHECK(lc2.r == 4);
  DOCTEST_CHECK(maxdiff(m2->forward(ids), ref) == 0.0);
  // Loading again replaces the adapter.
  (void)model::load_lora_adapter(*m2, (ad / "adapter_model.safetensors").string());
  DOCTEST_CHECK(maxdiff(m2->forward(ids), ref) == 0.0);

  // The published ".default." form.
  {
    io::SafeTensorsWriter w;
    model::add_lora_state(w, *m, model::LoraKeyForm::published);
    fs::create_directories(dir / "published");
    w.write((dir / "published" / "adapter_model.safetensors").string());
    fs::copy_file(ad / "adapter_config.json", dir / "published" / "adapter_config.json");
    io::SafeTensors st((dir / "published" / "adapter_model.safetensors").string());
    DOCTEST_CHECK(st.contains("base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.default.weight"));
    auto m3 = model::load_phi3(base_dir.string());
    (void)model::load_lora_adapter(*m3, (dir / "published").string());
    DOCTEST_CHECK(maxdiff(m3->forward(ids), ref) == 0.0);
  }

  // Another base model (hidden 32): mis-shaped keys, exit 3 naming the adapter file.
  {
    const auto other = dir / "Tiny-Phi3";  // same name, other shapes: only the shapes catch it
    auto o = make(tiny(32), 12);
    auto e = expect_error([&] { (void)model::load_lora_adapter(*o, ad.string()); });
    DOCTEST_CHECK((e.code() == cli::Exit::incompatible));
    DOCTEST_CHECK(e.file() == (ad / "adapter_model.safetensors").string());
    DOCTEST_CHECK_MESSAGE(std::string(e.what()).find("mis-shaped") != std::string::npos, e.what());
    DOCTEST_CHECK(!model::has_lora(*o));  // nothing half-attached
    (void)other;
  }
  // Another base name in adapter_config.json.
  {
    auto j = json::parse(std::ifstream(ad / "adapter_config.json"));
    j["base_model_name_or_path"] = "microsoft/Phi-4-mini-instruct";
    fs::create_directories(dir / "renamed");
    std::ofstream(dir / "renamed" / "adapter_config.json") << j.dump();
    fs::copy_file(ad / "adapter_model.safetensors", dir / "renamed" / "adapter_model.safetensors");
    auto m4 = model::load_phi3(base_dir.string());
    auto e = expect_error([&] { (void)model::load_lora_adapter(*m4, (dir / "renamed").string()); });
    DOCTEST_CHECK((e.code() == cli::Exit::incompatible));
    DOCTEST_CHECK(e.file() == (dir / "renamed" / "adapter_config.json").string());
    DOCTEST_CHECK_MESSAGE(std::string(e.what()).find("Phi-4-mini-instruct") != std::string::npos, e.what());
    model::LoraLoadOptions lo;
    lo.check_base_name = false;
    (void)model::load_lora_adapter(*m4, (dir / "renamed").string(), lo);
    DOCTEST_CHECK(maxdiff(m4->forward(ids), ref) == 0.0);
  }
  // Fewer targets in the config than in the file: unexpected keys.
  {
    auto j = json::parse(std::ifstream(ad / "adapter_config.json"));
    j["target_modules"] = {"qkv_proj"};
    fs::create_directories(dir / "fewer");
    std::ofstream(dir / "fewer" / "adapter_config.json") << j.dump();
    fs::copy_file(ad / "adapter_model.safetensors", dir / "fewer" / "adapter_model.safetensors");
    auto m5 = model::load_phi3(base_dir.string());
    auto e = expect_error([&] { (void)model::load_lora_adapter(*m5, (dir / "fewer").string()); });
    DOCTEST_CHECK((e.code() == cli::Exit::incompatible));
    DOCTEST_CHECK_MESSAGE(std::string(e.what()).find("unexpected") != std::string::npos, e.what());
  }
  // A pickle adapter: the conversion hint.
  {
    fs::create_directories(dir / "pickle");
    std::ofstream(dir / "pickle" / "adapter_model.bin") << "x";
    std::ofstream(dir / "pickle" / "adapter_config.json") << kPeftConfig;
    auto e = expect_error([&] { (void)model::load_lora_adapter(*m, (dir / "pickle").string()); });
    DOCTEST_CHECK((e.code() == cli::Exit::incompatible));
    DOCTEST_CHECK(e.hint().find("convert_hsenet_vlm.py") != std::string::npos);
  }
  // A merged model cannot be saved as an adapter.
  model::merge_lora(*m);
  auto e = expect_error([&] { model::save_lora_adapter(*m, lc, (dir / "x").string()); });
  DOCTEST_CHECK((e.code() == cli::Exit::runtime));
  fs::remove_all(dir);
}

// ---------------------------------------------------------------- parity driver
namespace {
torch::Tensor ids_tensor(const json& j) {
  std::vector<std::int64_t> flat;
  for (const auto& r : j)
    for (const auto& v : r) flat.push_back(v.get<std::int64_t>());
  return torch::tensor(flat, torch::kLong).view({static_cast<std::int64_t>(j.size()), -1});
}
}  // namespace

TEST_CASE("driver: lora") {
  const char* jobs_path = std::getenv("HSE_LORA_JOBS");
  const char* outp = std::getenv("HSE_LORA_OUT");
  if (!jobs_path || !outp) return;
  torch::set_num_threads(1);
  try {
    const json spec = json::parse(std::ifstream(jobs_path));
    io::SafeTensorsWriter w;
    auto put = [&](const std::string& name, const torch::Tensor& t) { fixtures::add_f32(w, name, t); };
    for (const auto& job : spec.at("jobs")) {
      const std::string name = job.at("name").get<std::string>();
      auto m = model::load_phi3(job.at("model").get<std::string>());
      if (job.contains("init_seed")) {
        auto cfg = model::LoraConfig::from_json(job.at("config"), "job config");
        torch::manual_seed(job["init_seed"].get<std::uint64_t>());
        for (const auto& mod : model::apply_lora(*m, cfg)) {
          for (auto& [n, l] : model::lora_layers(*m))
            if (n == mod) put(name + ".init." + mod + ".lora_A", l->lora_A->weight);
        }
        continue;
      }
      torch::NoGradGuard ng;
      const auto cfg = model::load_lora_adapter(*m, job.at("adapter").get<std::string>());
      const auto ids = ids_tensor(job.at("ids"));
      put(name + ".unmerged", m->forward(ids));
      if (job.contains("save")) model::save_lora_adapter(*m, cfg, job["save"].get<std::string>());
      model::merge_lora(*m);
      put(name + ".merged", m->forward(ids));
      model::unmerge_lora(*m);
      put(name + ".unmerged_again", m->forward(ids));
    }
    w.write(outp);
  } catch (const cli::Error& e) {
    std::cerr << e.line() << std::endl;
    std::_Exit(static_cast<int>(e.code()));
  }
}
