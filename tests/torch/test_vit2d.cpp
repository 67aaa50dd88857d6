// Vit2d (BiomedCLIP's timm ViT trunk): configs, shapes for the tiny and the
// real size, the patch layout, encode_slices, checkpoint round trips with timm's
// key names under "visual.trunk.", and the "driver: vit2d" case that
// tests/parity/test_vit2d.py runs against timm.
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/io/safetensors.h"
#include "hse/model/checkpoint.h"
#include "hse/model/vit2d.h"

using namespace hse;
using model::Vit2dConfig;

namespace {

std::string tmp(const std::string& n) {
  return (std::filesystem::temp_directory_path() / (n + std::to_string(::getpid()) + ".safetensors")).string();
}

std::string source_dir() {
  const char* s = std::getenv("HSE_SOURCE_DIR");
  return s ? s : ".";
}

Vit2dConfig tiny() {
  Vit2dConfig c;
  c.img_size = {32, 32};
  c.patch_size = {16, 16};
  c.embed_dim = 64;
  c.depth = 2;
  c.num_heads = 4;
  return c;
}

std::vector<std::int64_t> shape(const torch::Tensor& t) { return {t.sizes().begin(), t.sizes().end()}; }

float rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item<float>();
}

std::set<std::string> param_names(const torch::nn::Module& m) {
  std::set<std::string> s;
  for (const auto& p : m.named_parameters(true)) s.insert(p.key());
  return s;
}

}  // namespace

TEST_CASE("vit2d config: defaults, shipped files, open_clip config, bad values") {
  const Vit2dConfig d;
  DOCTEST_CHECK(d.num_patches() == 196);
  DOCTEST_CHECK(d.num_tokens() == 197);
  DOCTEST_CHECK(d.mlp_hidden() == 3072);
  DOCTEST_CHECK(d.head_dim() == 64);
  DOCTEST_CHECK(d.layer_norm_eps == 1e-6);

  const auto dir = std::filesystem::path(source_dir()) / "share/hse/configs";
  if (std::filesystem::exists(dir / "vit2d-biomedclip.json")) {
    const auto b = Vit2dConfig::from_file((dir / "vit2d-biomedclip.json").string());
    DOCTEST_CHECK(b.to_json() == d.to_json());
    const auto t = Vit2dConfig::from_file((dir / "vit2d-tiny.json").string());
    DOCTEST_CHECK(t.to_json() == tiny().to_json());
    DOCTEST_CHECK(t.num_tokens() == 5);
  }

  // BiomedCLIP's open_clip_config.json (model_cfg.embed_dim is the CLIP width, not the trunk's).
  const auto oc = nlohmann::json::parse(R"({
    "model_cfg": {"embed_dim": 512,
      "vision_cfg": {"timm_model_name": "vit_base_patch16_224", "timm_model_pretrained": false,
                     "timm_pool": "", "timm_proj": "linear", "image_size": 224},
      "text_cfg": {"hf_model_name": "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract", "context_length": 256}},
    "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]}})");
  DOCTEST_CHECK(Vit2dConfig::from_json(oc, "open_clip_config.json").to_json() == d.to_json());
  // Round trip; [H,W] sizes and a non-integer mlp_ratio (int() truncates, as timm).
  auto r = tiny();
  r.img_size = {48, 64};
  r.mlp_ratio = 2.5;
  r.embed_dim = 36;
  r.num_heads = 6;
  DOCTEST_CHECK(Vit2dConfig::from_json(r.to_json()).to_json() == r.to_json());
  DOCTEST_CHECK(r.mlp_hidden() == 90);
  DOCTEST_CHECK(r.num_patches() == 12);

  auto bad = [&](const char* text, const char* needle) {
    try {
      Vit2dConfig::from_json(nlohmann::json::parse(text), "bad.json");
      DOCTEST_FAIL("no error for " << text);
    } catch (const cli::Error& e) {
      DOCTEST_CHECK(e.code() == cli::Exit::incompatible);
      DOCTEST_CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
      DOCTEST_CHECK(e.file() == "bad.json");
    }
  };
  bad(R"({"embed_dim": 100, "num_heads": 12})", "not divisible");
  bad(R"({"img_size": 200})", "not a multiple");
  bad(R"({"global_pool": "avg"})", "global_pool");
  bad(R"({"class_token": false})", "class token");
  bad(R"({"pre_norm": true})", "pre_norm");
  bad(R"({"depth": "12"})", "'depth' must be an integer");
  bad(R"({"patch_size": [16, 16, 16]})", "patch_size");
  bad(R"({"qkv_bias": 1})", "qkv_bias");
  bad(R"({"vision_cfg": {"timm_model_name": "vit_large_patch16_224"}})", "timm_model_name");
  bad(R"({"vision_cfg": {"timm_pool": "avg"}})", "timm_pool");
  bad(R"([1,2])", "not a JSON object");
}

TEST_CASE("vit2d patch layout: token 1 + gy*gx_n + gx, conv over [C,p,p]") {
  // A patch embedding that reads pixel (0,0) of channel 1 of each patch.
  auto c = tiny();
  c.img_size = {32, 48};
  model::Vit2dPatchEmbed pe(c);
  {
    torch::NoGradGuard ng;
    pe->proj->weight.zero_();
    pe->proj->bias.zero_();
    pe->proj->weight.index_put_({0, 1, 0, 0}, 1.0);
  }
  auto x = torch::arange(3 * 32 * 48, torch::kFloat32).reshape({1, 3, 32, 48});
  auto p = pe->forward(x);
  DOCTEST_REQUIRE(shape(p) == std::vector<std::int64_t>{1, 6, 64});
  for (int gy = 0; gy < 2; ++gy)
    for (int gx = 0; gx < 3; ++gx)
      DOCTEST_CHECK(p[0][gy * 3 + gx][0].item<float>() == float(1 * 32 * 48 + gy * 16 * 48 + gx * 16));
}

TEST_CASE("vit2d tiny: shapes, CLS feature, batch independence, init, bad input") {
  torch::manual_seed(1);
  const auto c = tiny();
  model::Vit2d m(c);
  m->eval();
  DOCTEST_CHECK(m->named_parameters(true).size() == 4 + 12 * 2 + 2);
  DOCTEST_CHECK(m->named_buffers(true).size() == 0);
  auto x = torch::rand({3, 3, 32, 32});
  torch::NoGradGuard ng;
  auto tok = m->forward_features(x);
  DOCTEST_CHECK(shape(tok) == std::vector<std::int64_t>{3, 5, 64});
  auto cls = m->forward(x);
  DOCTEST_CHECK(shape(cls) == std::vector<std::int64_t>{3, 64});
  DOCTEST_CHECK(torch::equal(cls, tok.select(1, 0)));
  // After the final LayerNorm (weight 1, bias 0 at init): zero mean per token.
  DOCTEST_CHECK(cls.mean(-1).abs().max().item<float>() < 1e-4f);
  DOCTEST_CHECK(rel_diff(m->forward(x.slice(0, 1, 2)), cls.slice(0, 1, 2)) < 1e-5);
  // Double inputs are converted to the parameters' dtype.
  DOCTEST_CHECK(rel_diff(m->forward(x.to(torch::kFloat64)), cls) == 0.f);
  // timm's init: cls ~ N(0, 1e-6), pos_embed ~ trunc N(0, .02), Linear biases zero.
  DOCTEST_CHECK(m->cls_token.abs().max().item<float>() < 1e-4f);
  const float sd = m->pos_embed.std().item<float>();
  DOCTEST_CHECK(sd > 0.01f);
  DOCTEST_CHECK(sd < 0.03f);
  auto* b0 = m->blocks[0]->as<model::Vit2dBlockImpl>();
  DOCTEST_CHECK(b0->attn->qkv->bias.abs().max().item<float>() == 0.f);
  DOCTEST_CHECK(shape(b0->mlp->fc1->weight) == std::vector<std::int64_t>{256, 64});
  // Wrong sizes are input errors.
  DOCTEST_CHECK_THROWS_AS(m->forward(torch::rand({1, 3, 32, 16})), cli::Error);
  DOCTEST_CHECK_THROWS_AS(m->forward(torch::rand({1, 1, 32, 32})), cli::Error);
  DOCTEST_CHECK_THROWS_AS(m->forward(torch::rand({3, 32, 32})), cli::Error);
}

TEST_CASE("encode_slices: [N,S,3,H,W] -> [N,S,D], any batch, eval, no grad, mode restored") {
  torch::manual_seed(2);
  const auto c = tiny();
  model::Vit2d m(c);
  m->train();
  auto s = torch::rand({2, 5, 3, 32, 32});
  auto f1 = model::encode_slices(m, s, 1);
  auto f3 = model::encode_slices(m, s, 3);
  auto f64 = model::encode_slices(m, s, 64);
  DOCTEST_CHECK(m->is_training());
  DOCTEST_CHECK(shape(f3) == std::vector<std::int64_t>{2, 5, 64});
  DOCTEST_CHECK((f3.scalar_type() == torch::kFloat32));
  DOCTEST_CHECK(!f3.requires_grad());
  DOCTEST_CHECK(rel_diff(f1, f64) < 1e-5);
  DOCTEST_CHECK(rel_diff(f3, f64) < 1e-5);
  torch::NoGradGuard ng;
  m->eval();
  DOCTEST_CHECK(rel_diff(f3[1][4], m->forward(s[1].slice(0, 4, 5))[0]) < 1e-5);
  // Errors: batch < 1 (usage), wrong shapes (input).
  try {
    model::encode_slices(m, s, 0);
    DOCTEST_FAIL("no error");
  } catch (const cli::Error& e) {
    DOCTEST_CHECK(e.code() == cli::Exit::usage);
  }
  DOCTEST_CHECK_THROWS_AS(model::encode_slices(m, s[0], 4), cli::Error);
  DOCTEST_CHECK_THROWS_AS(model::encode_slices(m, torch::rand({1, 2, 3, 32, 48}), 4), cli::Error);
}

TEST_CASE("vit2d biomedclip size: 150 tensors with timm's names, [1,3,224,224] -> [1,768]") {
  torch::manual_seed(0);
  const Vit2dConfig c;
  model::Vit2d m(c);
  m->eval();
  const auto params = m->named_parameters(true);
  DOCTEST_CHECK(params.size() == 150);
  std::int64_t n = 0;
  for (const auto& p : params) n += p.value().numel();
  DOCTEST_CHECK(n == 85'798'656);  // timm vit_base_patch16_224, num_classes=0
  const auto names = param_names(*m);
  for (const char* k :
       {"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "blocks.0.norm1.weight",
        "blocks.0.norm1.bias", "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias", "blocks.0.attn.proj.weight",
        "blocks.0.attn.proj.bias", "blocks.0.norm2.weight", "blocks.0.norm2.bias", "blocks.11.mlp.fc1.weight",
        "blocks.11.mlp.fc1.bias", "blocks.11.mlp.fc2.weight", "blocks.11.mlp.fc2.bias", "norm.weight", "norm.bias"})
    DOCTEST_CHECK_MESSAGE(names.count(k) == 1, k);
  DOCTEST_CHECK(shape(m->pos_embed) == std::vector<std::int64_t>{1, 197, 768});
  DOCTEST_CHECK(shape(m->patch_embed->proj->weight) == std::vector<std::int64_t>{768, 3, 16, 16});
  DOCTEST_CHECK(m->norm->options.eps() == 1e-6);

  torch::NoGradGuard ng;
  auto x = torch::rand({1, 3, 224, 224});
  auto tok = m->forward_features(x);
  DOCTEST_CHECK(shape(tok) == std::vector<std::int64_t>{1, 197, 768});
  auto f = m->forward(x);
  DOCTEST_CHECK(shape(f) == std::vector<std::int64_t>{1, 768});
  DOCTEST_CHECK(torch::isfinite(f).all().item<bool>());
  DOCTEST_CHECK(torch::equal(f, tok.select(1, 0)));
}

TEST_CASE("vit2d checkpoint round trip under visual.trunk.; timm head ignored; missing key named") {
  const auto c = tiny();
  torch::manual_seed(3);
  model::Vit2d a(c);
  io::SafeTensorsWriter w;
  model::add_state(w, *a, model::kBiomedClipTrunkPrefix);
  // The rest of an open_clip CLIP, outside the trunk.
  w.add_float("visual.head.proj.weight", io::Dtype::F32, {32, 64}, torch::zeros({32, 64}).data_ptr<float>());
  w.add_float("logit_scale", io::Dtype::F32, {}, std::vector<float>{4.6052f}.data());
  const auto path = tmp("vit2d_rt");
  w.write(path);
  io::SafeTensorsSet set(path);
  DOCTEST_CHECK(set.contains("visual.trunk.patch_embed.proj.weight"));
  DOCTEST_CHECK(set.contains("visual.trunk.blocks.1.mlp.fc2.bias"));
  torch::manual_seed(4);
  model::Vit2d b(c);
  const auto r = model::load_vit2d(b, set);
  DOCTEST_CHECK(r.clean());
  DOCTEST_CHECK(r.loaded == 4 + 12 * 2 + 2);
  a->eval();
  b->eval();
  torch::NoGradGuard ng;
  auto x = torch::rand({2, 3, 32, 32});
  DOCTEST_CHECK(torch::equal(a->forward(x), b->forward(x)));
  // Under "visual." the trunk keys do not match: all missing, the CLIP's keys unexpected.
  DOCTEST_CHECK_THROWS_AS(model::load_vit2d(b, set, "visual."), cli::Error);
  std::filesystem::remove(path);

  // A plain timm checkpoint (no prefix) with a classifier head: the head is ignored.
  io::SafeTensorsWriter w2;
  for (const auto& p : a->named_parameters(true)) {
    if (p.key() == "blocks.1.attn.qkv.bias") continue;
    const auto t = p.value().detach().contiguous();
    w2.add_float(p.key(), io::Dtype::F32, shape(t), t.data_ptr<float>());
  }
  w2.add_float("head.weight", io::Dtype::F32, {10, 64}, torch::zeros({10, 64}).data_ptr<float>());
  w2.add_float("head.bias", io::Dtype::F32, {10}, torch::zeros({10}).data_ptr<float>());
  const auto path2 = tmp("vit2d_missing");
  w2.write(path2);
  io::SafeTensorsSet set2(path2);
  try {
    model::load_vit2d(b, set2, "");
    DOCTEST_FAIL("no error");
  } catch (const cli::Error& e) {
    DOCTEST_CHECK(e.code() == cli::Exit::incompatible);
    DOCTEST_CHECK(e.file() == path2);
    DOCTEST_CHECK_MESSAGE(std::string(e.what()).find("blocks.1.attn.qkv.bias") != std::string::npos, e.what());
    DOCTEST_CHECK_MESSAGE(std::string(e.what()).find("head.") == std::string::npos, e.what());
  }
  const auto r2 = model::load_vit2d(b, set2, "", true);
  DOCTEST_CHECK(r2.missing.size() == 1);
  DOCTEST_CHECK(r2.unexpected.empty());
  // A checkpoint of another width is mis-shaped.
  auto wide = c;
  wide.embed_dim = 128;
  model::Vit2d big(wide);
  DOCTEST_CHECK_THROWS_AS(model::load_vit2d(big, set2, ""), cli::Error);
  std::filesystem::remove(path2);
}

// Driven by tests/parity/test_vit2d.py: does nothing unless the HSE_V2D_* variables are set.
// "x" [B,C,H,W] -> "cls" [B,D] and "tokens" [B,N+1,D]; "x" [N,S,C,H,W] -> "cls" [N,S,D]
// through encode_slices (batch HSE_V2D_BATCH, default 4).
TEST_CASE("driver: vit2d") {
  const char* ckpt = std::getenv("HSE_V2D_CKPT");
  const char* cfg = std::getenv("HSE_V2D_CONFIG");
  const char* in = std::getenv("HSE_V2D_IN");
  const char* outp = std::getenv("HSE_V2D_OUT");
  if (!ckpt || !cfg || !in || !outp) return;
  const char* pre = std::getenv("HSE_V2D_PREFIX");
  const char* bat = std::getenv("HSE_V2D_BATCH");
  const std::string prefix = pre ? pre : model::kBiomedClipTrunkPrefix;
  const int batch = bat ? std::atoi(bat) : 4;

  const auto c = Vit2dConfig::from_file(cfg);
  io::SafeTensorsSet set(ckpt);
  io::SafeTensorsSet inputs(in);
  const auto x = model::tensor_from(inputs, "x");
  model::Vit2d m(c);
  model::load_vit2d(m, set, prefix);
  m->eval();
  torch::NoGradGuard ng;
  io::SafeTensorsWriter w;
  auto put = [&](const std::string& name, const torch::Tensor& t) {
    const auto cc = t.detach().to(torch::kFloat32).contiguous();
    w.add_float(name, io::Dtype::F32, shape(cc), cc.data_ptr<float>());
  };
  if (x.dim() == 5) {
    put("cls", model::encode_slices(m, x, batch));
  } else {
    const auto tok = m->forward_features(x);
    put("tokens", tok);
    put("cls", m->forward(x));
  }
  w.write(outp);
}
