// Vit3d and E2E3: configs, shapes at HSENet's real size, the patch layout,
// checkpoint round trips with the published key names, bad checkpoints, and the
// "driver: vit3d" case that tests/parity/test_vit3d.py runs against MONAI.
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
#include "hse/model/e2e3.h"
#include "hse/model/vit3d.h"

using namespace hse;
using model::Vit3dConfig;

namespace {

std::string tmp(const std::string& n) {
  return (std::filesystem::temp_directory_path() / (n + std::to_string(::getpid()) + ".safetensors")).string();
}

std::string source_dir() {
  const char* s = std::getenv("HSE_SOURCE_DIR");
  return s ? s : ".";
}

Vit3dConfig tiny() {
  Vit3dConfig c;
  c.img_size = {8, 32, 32};
  c.patch_size = {4, 16, 16};
  c.hidden = 64;
  c.mlp_dim = 128;
  c.layers = 2;
  c.heads = 4;
  c.slice_dim = 48;
  return c;
}

std::vector<std::int64_t> shape(const torch::Tensor& t) { return {t.sizes().begin(), t.sizes().end()}; }

float rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item<float>();
}

}  // namespace

TEST_CASE("vit3d config: defaults, shipped files, published config.json") {
  Vit3dConfig d;
  DOCTEST_CHECK(d.num_patches() == 2048);
  DOCTEST_CHECK(d.patch_dim() == 1024);
  DOCTEST_CHECK(d.head_dim() == 64);

  const auto dir = std::filesystem::path(source_dir()) / "share/hse/configs";
  if (std::filesystem::exists(dir / "vit3d-hsenet.json")) {
    const auto h = Vit3dConfig::from_file((dir / "vit3d-hsenet.json").string());
    DOCTEST_CHECK(h.to_json() == d.to_json());
    const auto t = Vit3dConfig::from_file((dir / "vit3d-tiny.json").string());
    DOCTEST_CHECK(t.num_patches() == 8);
    DOCTEST_CHECK(t.hidden == 64);
    DOCTEST_CHECK(t.layers == 2);
    DOCTEST_CHECK(t.heads == 4);
  }

  // The published CLIP config.json (hsenet-spec §8), with its extra fields.
  const auto pub = nlohmann::json::parse(R"({
    "model_type": "m3d_clip_stage2", "in_channels": 1, "img_size": [32, 256, 256],
    "patch_size": [4, 16, 16], "hidden_size": 768, "mlp_dim": 3072, "num_layers": 12,
    "num_heads": 12, "pos_embed": "perceptron", "dropout_rate": 0, "spatial_dims": 3,
    "max_text_len": 128, "vocab_size": 30522, "gather_loss": true, "local_loss": false,
    "language_model_name_or_path": "/abs/bert-base-uncased", "use_2D_Encoder": true})");
  const auto p = Vit3dConfig::from_json(pub, "config.json");
  DOCTEST_CHECK(p.to_json() == d.to_json());
  // A round trip through to_json.
  const auto t = tiny();
  DOCTEST_CHECK(Vit3dConfig::from_json(t.to_json()).to_json() == t.to_json());

  auto bad = [&](const char* text, const char* needle) {
    try {
      Vit3dConfig::from_json(nlohmann::json::parse(text), "bad.json");
      DOCTEST_FAIL("no error for " << text);
    } catch (const cli::Error& e) {
      DOCTEST_CHECK(e.code() == cli::Exit::incompatible);
      DOCTEST_CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
      DOCTEST_CHECK(e.file() == "bad.json");
    }
  };
  bad(R"({"hidden_size": 100, "num_heads": 12})", "not divisible");
  bad(R"({"img_size": [30, 256, 256]})", "not a multiple");
  bad(R"({"pos_embed": "conv"})", "perceptron");
  bad(R"({"spatial_dims": 2})", "spatial_dims");
  bad(R"({"num_layers": "12"})", "'num_layers' must be an integer");
  bad(R"({"patch_size": [4, 16]})", "patch_size");
  bad(R"([1,2])", "not a JSON object");
}

TEST_CASE("patch layout: token dz*gy*gx + y*gx + x, vector pz*py*px + ...") {
  // [1,1,8,32,32], patch (4,16,16): grid 2x2x2; the value at (z,y,x) is its flat index.
  auto x = torch::arange(8 * 32 * 32, torch::kFloat32).reshape({1, 1, 8, 32, 32});
  auto p = model::PatchEmbeddingImpl::patchify(x, {4, 16, 16});
  DOCTEST_REQUIRE(shape(p) == std::vector<std::int64_t>{1, 8, 1024});
  auto a = p.accessor<float, 3>();
  for (int dz = 0; dz < 2; ++dz)
    for (int gy = 0; gy < 2; ++gy)
      for (int gx = 0; gx < 2; ++gx)
        for (int pz : {0, 3})
          for (int py : {0, 7, 15})
            for (int px : {0, 5, 15}) {
              const int z = dz * 4 + pz, y = gy * 16 + py, xx = gx * 16 + px;
              DOCTEST_CHECK(a[0][dz * 4 + gy * 2 + gx][pz * 256 + py * 16 + px] == float(z * 1024 + y * 32 + xx));
            }
}

TEST_CASE("vit3d tiny: forward shapes, CLS without position, eval determinism") {
  torch::manual_seed(1);
  const auto c = tiny();
  model::Vit3d m(c);
  m->eval();
  auto x = torch::rand({2, 1, 8, 32, 32});
  torch::NoGradGuard ng;
  auto out = m->forward(x);
  DOCTEST_CHECK(shape(out.last) == std::vector<std::int64_t>{2, 9, 64});
  DOCTEST_REQUIRE(out.hidden_states.size() == 2);
  DOCTEST_CHECK(shape(out.hidden_states[1]) == std::vector<std::int64_t>{2, 9, 64});
  DOCTEST_CHECK(!out.scores.defined());
  DOCTEST_CHECK(torch::allclose(out.last, m->norm(out.hidden_states[1])));
  // Each batch item is independent of the others.
  auto one = m->forward(x.slice(0, 1, 2));
  DOCTEST_CHECK(rel_diff(one.last, out.last.slice(0, 1, 2)) < 1e-5);
  // Without hidden states.
  DOCTEST_CHECK(m->forward(x, false).hidden_states.empty());
  // MONAI's init: cls zeros, patch Linear bias zeros, position embeddings ~ N(0, 0.02).
  DOCTEST_CHECK(m->cls_token.abs().max().item<float>() == 0.f);
  DOCTEST_CHECK(m->patch_embedding->proj->bias.abs().max().item<float>() == 0.f);
  const float sd = m->patch_embedding->position_embeddings.std().item<float>();
  DOCTEST_CHECK(sd > 0.012f);
  DOCTEST_CHECK(sd < 0.028f);
  // The wrong input size is an input error.
  DOCTEST_CHECK_THROWS_AS(m->forward(torch::rand({1, 1, 8, 32, 16})), cli::Error);
  DOCTEST_CHECK_THROWS_AS(m->forward(torch::rand({1, 8, 32, 32})), cli::Error);
}

TEST_CASE("e2e3 tiny: scores in (0,1), weighted patches, training dropout") {
  torch::manual_seed(2);
  const auto c = tiny();
  model::E2E3 m(c);
  m->eval();
  auto x = torch::rand({2, 1, 8, 32, 32});
  auto s = torch::randn({2, 5, c.slice_dim});
  torch::NoGradGuard ng;
  auto out = m->forward(x, s);
  DOCTEST_CHECK(shape(out.last) == std::vector<std::int64_t>{2, 9, 64});
  DOCTEST_REQUIRE(shape(out.scores) == std::vector<std::int64_t>{2, 8});
  DOCTEST_CHECK(out.scores.min().item<float>() > 0.f);
  DOCTEST_CHECK(out.scores.max().item<float>() < 1.f);
  // Same as Vit3d's encode on the weighted patches.
  auto p = m->embed(x);
  auto ref = m->encode(p * out.scores.unsqueeze(-1));
  DOCTEST_CHECK(torch::equal(ref.last, out.last));
  // Dropout 0.1 acts in training only.
  m->train();
  auto tr = m->forward(x, s);
  DOCTEST_CHECK(!torch::allclose(tr.scores, out.scores));
  m->eval();
  DOCTEST_CHECK(torch::equal(m->forward(x, s).scores, out.scores));
  DOCTEST_CHECK_THROWS_AS(m->forward(x, torch::randn({2, 5, c.slice_dim + 1})), cli::Error);
  DOCTEST_CHECK_THROWS_AS(m->forward(x, torch::randn({1, 5, c.slice_dim})), cli::Error);
}

TEST_CASE("vit3d hsenet size: 138 tensors, [1,2049,768]; e2e3 150 tensors") {
  torch::manual_seed(0);
  const Vit3dConfig c;  // HSENet
  model::Vit3d m(c);
  m->eval();
  const auto params = m->named_parameters(true);
  DOCTEST_CHECK(params.size() == 138);
  DOCTEST_CHECK(m->named_buffers(true).size() == 0);
  std::int64_t n = 0;
  for (const auto& p : params) n += p.value().numel();
  // 768 + 2048*768 + 1024*768+768 + 12*(2*768*3072+3072+768 + 4*768 + 3*768*768 + 768*768+768) + 2*768
  DOCTEST_CHECK(n == 87'389'184);
  const std::set<std::string> names = [&] {
    std::set<std::string> s;
    for (const auto& p : params) s.insert(p.key());
    return s;
  }();
  for (const char* k : {"cls_token", "patch_embedding.position_embeddings", "patch_embedding.patch_embeddings.1.weight",
                        "patch_embedding.patch_embeddings.1.bias", "norm.weight", "norm.bias",
                        "blocks.11.mlp.linear1.weight", "blocks.11.mlp.linear2.bias", "blocks.0.norm1.weight",
                        "blocks.0.attn.out_proj.weight", "blocks.0.attn.out_proj.bias", "blocks.0.attn.qkv.weight",
                        "blocks.0.norm2.bias"})
    DOCTEST_CHECK_MESSAGE(names.count(k) == 1, k);
  DOCTEST_CHECK(names.count("blocks.0.attn.qkv.bias") == 0);
  DOCTEST_CHECK(shape(m->patch_embedding->proj->weight) == std::vector<std::int64_t>{768, 1024});
  DOCTEST_CHECK(shape(m->blocks[0]->as<model::TransformerBlockImpl>()->attn->qkv->weight) ==
                std::vector<std::int64_t>{2304, 768});

  torch::NoGradGuard ng;
  auto out = m->forward(torch::rand({1, 1, 32, 256, 256}));
  DOCTEST_CHECK(shape(out.last) == std::vector<std::int64_t>{1, 2049, 768});
  DOCTEST_CHECK(out.hidden_states.size() == 12);
  DOCTEST_CHECK(torch::isfinite(out.last).all().item<bool>());

  model::E2E3 e(c);
  DOCTEST_CHECK(e->named_parameters(true).size() == 150);
  DOCTEST_CHECK(shape(e->patch_score_proj->weight) == std::vector<std::int64_t>{1, 768});
}

TEST_CASE("checkpoint round trip with the published names; stage-2 layout") {
  const auto c = tiny();
  torch::manual_seed(3);
  model::Vit3d a(c);
  model::E2E3 e(c);
  // A stage-2-like checkpoint: the 2E3 under vision_encoder., the frozen ViT under stage1_pretrained_CLIP.
  io::SafeTensorsWriter w;
  model::add_state(w, *e, model::kE2E3Prefix);
  model::add_state(w, *a, model::kStage2FrozenVisionPrefix);
  w.add_float("logit_scale", io::Dtype::F32, {}, std::vector<float>{2.6593f}.data());
  const auto path = tmp("vit3d_rt");
  w.write(path);
  io::SafeTensorsSet set(path);
  DOCTEST_CHECK(set.contains("vision_encoder.patch_embedding.patch_embeddings.1.weight"));
  DOCTEST_CHECK(set.contains("vision_encoder.slice_guided_attention.Wq.weight"));
  DOCTEST_CHECK(set.contains("vision_encoder.slice_guided_attention.norm.bias"));
  DOCTEST_CHECK(set.contains("stage1_pretrained_CLIP.vision_encoder.blocks.1.attn.qkv.weight"));
  DOCTEST_CHECK(model::has_e2e3(set));
  DOCTEST_CHECK(!model::has_e2e3(set, model::kStage2FrozenVisionPrefix));

  torch::manual_seed(4);
  model::Vit3d a2(c);
  model::E2E3 e2(c);
  const auto r1 = model::load_vit3d(a2, set, model::kStage2FrozenVisionPrefix);
  DOCTEST_CHECK(r1.clean());
  DOCTEST_CHECK(r1.loaded == 4 + 2 * 11 + 2);
  const auto r2 = model::load_e2e3(e2, set);
  DOCTEST_CHECK(r2.clean());
  DOCTEST_CHECK(r2.loaded == r1.loaded + 12);
  a->eval();
  a2->eval();
  e->eval();
  e2->eval();
  torch::NoGradGuard ng;
  auto x = torch::rand({1, 1, 8, 32, 32});
  auto s = torch::randn({1, 32, c.slice_dim});
  DOCTEST_CHECK(torch::equal(a->forward(x).last, a2->forward(x).last));
  auto eo = e->forward(x, s), eo2 = e2->forward(x, s);
  DOCTEST_CHECK(torch::equal(eo.last, eo2.last));
  DOCTEST_CHECK(torch::equal(eo.scores, eo2.scores));
  // A plain ViT under vision_encoder. of a stage-2 checkpoint: the scoring keys are unexpected.
  try {
    model::load_vit3d(a2, set, "vision_encoder.");
    DOCTEST_FAIL("no error");
  } catch (const cli::Error& err) {
    DOCTEST_CHECK(err.code() == cli::Exit::incompatible);
    DOCTEST_CHECK(std::string(err.what()).find("unexpected") != std::string::npos);
  }
  std::filesystem::remove(path);
}

TEST_CASE("a checkpoint missing a block key fails with the key named (exit 3)") {
  const auto c = tiny();
  model::Vit3d a(c);
  io::SafeTensorsWriter w;
  for (const auto& p : a->named_parameters(true)) {
    if (p.key() == "blocks.1.attn.qkv.weight") continue;
    const auto t = p.value().detach().contiguous();
    w.add_float("vision_encoder." + p.key(), io::Dtype::F32, shape(t), t.data_ptr<float>());
  }
  const auto path = tmp("vit3d_missing");
  w.write(path);
  io::SafeTensorsSet set(path);
  model::Vit3d b(c);
  try {
    model::load_vit3d(b, set);
    DOCTEST_FAIL("no error");
  } catch (const cli::Error& e) {
    DOCTEST_CHECK(e.code() == cli::Exit::incompatible);
    DOCTEST_CHECK(e.file() == path);
    DOCTEST_CHECK_MESSAGE(std::string(e.what()).find("1 missing (vision_encoder.blocks.1.attn.qkv.weight)") !=
                              std::string::npos,
                          e.what());
  }
  const auto r = model::load_vit3d(b, set, "vision_encoder.", true);
  DOCTEST_CHECK(r.missing.size() == 1);
  // A mis-shaped one (a checkpoint of another width).
  auto wide = c;
  wide.hidden = 128;
  model::Vit3d big(wide);
  DOCTEST_CHECK_THROWS_AS(model::load_vit3d(big, set), cli::Error);
  std::filesystem::remove(path);
}

// Driven by tests/parity/test_vit3d.py: does nothing unless the HSE_VIT_* variables are set.
TEST_CASE("driver: vit3d") {
  const char* ckpt = std::getenv("HSE_VIT_CKPT");
  const char* cfg = std::getenv("HSE_VIT_CONFIG");
  const char* in = std::getenv("HSE_VIT_IN");
  const char* outp = std::getenv("HSE_VIT_OUT");
  if (!ckpt || !cfg || !in || !outp) return;
  const char* pre = std::getenv("HSE_VIT_PREFIX");
  const char* kind_env = std::getenv("HSE_VIT_KIND");
  const std::string prefix = pre ? pre : model::kStage1VisionPrefix;
  const std::string kind = kind_env ? kind_env : "vit3d";
  DOCTEST_REQUIRE_MESSAGE((kind == "vit3d" || kind == "e2e3"), "HSE_VIT_KIND must be vit3d or e2e3");

  const auto c = Vit3dConfig::from_file(cfg);
  io::SafeTensorsSet set(ckpt);
  io::SafeTensorsSet inputs(in);
  const auto x = model::tensor_from(inputs, "x");
  torch::NoGradGuard ng;
  model::VisionOutput out;
  if (kind == "vit3d") {
    model::Vit3d m(c);
    model::load_vit3d(m, set, prefix);
    m->eval();
    out = m->forward(x);
  } else {
    model::E2E3 m(c);
    model::load_e2e3(m, set, prefix);
    m->eval();
    out = m->forward(x, model::tensor_from(inputs, "slices"));
  }
  io::SafeTensorsWriter w;
  auto put = [&](const std::string& name, const torch::Tensor& t) {
    const auto cc = t.detach().to(torch::kFloat32).contiguous();
    w.add_float(name, io::Dtype::F32, shape(cc), cc.data_ptr<float>());
  };
  put("last", out.last);
  for (std::size_t i = 0; i < out.hidden_states.size(); ++i) put("hidden_" + std::to_string(i), out.hidden_states[i]);
  if (out.scores.defined()) put("scores", out.scores);
  w.write(outp);
}
