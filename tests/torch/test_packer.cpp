// hse::model::SpatialPacker (packer.h): config, key names, window gathering, the attention core
// against its loop reference, the pooling baselines, dropout, loading.
// The "driver: packer" case is the C++ side of tests/parity/test_packer.py:
//   HSE_PACKER_JOBS     {"jobs": [{"name", "config": {PackerConfig JSON}, "weights": file, "prefix",
//                                  "input": tensor name in HSE_PACKER_TENSORS}]}
//   HSE_PACKER_TENSORS  input tensors (safetensors)
//   HSE_PACKER_OUT      output safetensors: "<name>.out" F32 [B, Q, out_dim]
//   A cli::Error prints "<file>: <message>" on stderr and exits with its code.
#include <torch/torch.h>
#include <unistd.h>

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
#include "hse/model/packer.h"
#include "fixtures.h"

using namespace hse;
namespace fs = std::filesystem;
using nlohmann::json;
using fixtures::expect_error;
using fixtures::rel;

namespace {

fs::path tmpdir(const std::string& n) { return fixtures::tmpdir("hse_packer_", n); }

model::PackerConfig small(model::PackerKind kind = model::PackerKind::v2p) {
  model::PackerConfig c;
  c.kind = kind;
  c.in_dim = 32;
  c.out_dim = 48;
  c.grid = {8, 16, 16};
  c.window = {1, 4, 4};
  return c;
}

}  // namespace

TEST_CASE("packer: config, token counts, JSON and refusals") {
  model::PackerConfig c;
  DOCTEST_CHECK(c.num_patches() == 2048);
  DOCTEST_CHECK(c.num_tokens() == 128);
  DOCTEST_CHECK(c.window_size() == 16);
  DOCTEST_CHECK(c.hidden() == 3072);
  auto t = c;
  t.window = {2, 4, 4};
  DOCTEST_CHECK(t.num_tokens() == 64);
  t.window = {1, 2, 2};
  DOCTEST_CHECK(t.num_tokens() == 512);
  t.window = {1, 8, 8};
  DOCTEST_CHECK(t.num_tokens() == 32);
  t.window = {1, 4, 4};
  t.stride = {1, 2, 2};
  DOCTEST_CHECK(t.num_tokens() == 8 * 7 * 7);
  t.kind = model::PackerKind::sequence_pool;
  t.stride = {0, 0, 0};
  DOCTEST_CHECK(t.num_tokens() == 128);

  auto j = c.to_json();
  DOCTEST_CHECK(j["kind"] == "v2p");
  DOCTEST_CHECK(j["stride"] == json::array({1, 4, 4}));
  auto back = model::PackerConfig::from_json(j, "x");
  DOCTEST_CHECK(back.to_json() == j);
  auto s = model::PackerConfig::from_json(json::parse(R"({"kind": "spatial_pool", "window": 2, "in_dim": 8,
    "out_dim": 16, "grid": [2, 4, 4]})"), "s");
  DOCTEST_CHECK((s.kind == model::PackerKind::spatial_pool));
  DOCTEST_CHECK(s.num_tokens() == 1 * 2 * 2);

  auto e = expect_error([] { (void)model::PackerConfig::from_json(json::parse(R"({"kind": "mlp"})"), "p.json"); });
  DOCTEST_CHECK((e.code() == cli::Exit::incompatible));
  DOCTEST_CHECK(e.file() == "p.json");
  e = expect_error([] { (void)model::PackerConfig::from_json(json::parse(R"({"window": [1, 3, 3]})"), "p.json"); });
  DOCTEST_CHECK_MESSAGE(std::string(e.what()).find("do not tile") != std::string::npos, e.what());
  e = expect_error([] { (void)model::PackerConfig::from_json(json::parse(R"({"window": [1, 32, 4]})"), "p.json"); });
  DOCTEST_CHECK_MESSAGE(std::string(e.what()).find("larger than the grid") != std::string::npos, e.what());
  // qformer and anatomy: their own fields, JSON round trip, refusals.
  auto q = model::PackerConfig::from_json(json::parse(R"({"kind": "qformer", "in_dim": 96, "num_queries": 32,
                                                          "qformer_layers": 3, "qformer_cross_every": 2})"), "q");
  DOCTEST_CHECK(q.num_tokens() == 32);
  DOCTEST_CHECK(q.heads() == 1);  // 96 / 64
  DOCTEST_CHECK(q.intermediate() == 384);
  auto q2 = model::PackerConfig::from_json(q.to_json(), "q2");
  DOCTEST_CHECK(q2.to_json() == q.to_json());
  DOCTEST_CHECK(model::PackerConfig::from_json(json::parse(R"({"kind": "qformer"})"), "q").num_tokens() == 128);
  e = expect_error([] {
    (void)model::PackerConfig::from_json(json::parse(R"({"kind": "qformer", "in_dim": 96, "qformer_heads": 5})"), "q");
  });
  DOCTEST_CHECK_MESSAGE(std::string(e.what()).find("heads") != std::string::npos, e.what());
  auto an = model::PackerConfig::from_json(json::parse(R"({"kind": "anatomy", "halo": [1, 2, 2]})"), "a");
  DOCTEST_CHECK(an.num_tokens() == 128);
  DOCTEST_CHECK(model::PackerConfig::from_json(an.to_json(), "a").halo == an.halo);
  e = expect_error([] { (void)model::PackerConfig::from_json(json::parse(R"({"kind": "anatomy", "halo": [0, -1, 1]})"), "a"); });
  DOCTEST_CHECK((e.code() == cli::Exit::incompatible));
}

TEST_CASE("packer: qformer keys and shapes; anatomy candidates, competition and halo 0") {
  auto c = small(model::PackerKind::qformer);
  c.qformer_layers = 2;
  c.qformer_cross_every = 2;
  model::SpatialPacker qf(c);
  std::set<std::string> keys;
  for (const auto& kv : qf->named_parameters(true)) keys.insert(kv.key());
  DOCTEST_CHECK(keys.count("query_tokens"));
  DOCTEST_CHECK(keys.count("qformer.layernorm.weight"));
  DOCTEST_CHECK(keys.count("qformer.encoder.layer.0.attention.attention.query.weight"));
  DOCTEST_CHECK(keys.count("qformer.encoder.layer.0.crossattention.output.LayerNorm.bias"));
  DOCTEST_CHECK(!keys.count("qformer.encoder.layer.1.crossattention.attention.key.weight"));  // every 2nd layer
  DOCTEST_CHECK(keys.count("qformer.encoder.layer.1.intermediate_query.dense.weight"));
  DOCTEST_CHECK(keys.count("qformer.encoder.layer.1.output_query.dense.weight"));
  qf->eval();
  torch::NoGradGuard ng;
  const auto x = torch::randn({2, 2048, 32});
  DOCTEST_CHECK(qf->forward(x).sizes() == torch::IntArrayRef({2, 128, 48}));

  auto a = small(model::PackerKind::anatomy);
  model::SpatialPacker ap(a);
  const auto cand = ap->candidates();
  DOCTEST_CHECK(cand.sizes() == torch::IntArrayRef({128, 36}));
  // query 0 (corner): its own 4x4 window plus halo; out-of-grid positions are padding (N)
  auto c0 = cand[0];
  DOCTEST_CHECK((c0 == 2048).sum().item<std::int64_t>() == 36 - 25);
  DOCTEST_CHECK((c0 == 0).sum().item<std::int64_t>() == 1);
  // every token is a candidate of 1 (interior), 2 (edge band) or 4 (corner band) queries
  auto counts = torch::bincount(cand.reshape({-1}), {}, 2049).slice(0, 0, 2048);
  DOCTEST_CHECK(counts.min().item<std::int64_t>() >= 1);
  DOCTEST_CHECK(counts.max().item<std::int64_t>() <= 4);
  // the competition weights of one token sum to 1 over its queries (checked through v = one-hot)
  auto q = torch::randn({1, 128, 32}), k = torch::randn({1, 2048, 32});
  // with identical values the weighted mean returns that value exactly
  auto o = model::competitive_window_attention(q, k, torch::ones({1, 2048, 32}) * 2.5, cand);
  DOCTEST_CHECK(rel(o, torch::full({1, 128, 32}, 2.5)) < 1e-6);
  // halo 0: every token has exactly one query; o is the mean of the window's values
  a.halo = {0, 0, 0};
  model::SpatialPacker a0(a);
  const auto v = torch::randn({1, 2048, 32});
  auto o0 = model::competitive_window_attention(q, k, v, a0->candidates());
  auto mean = a0->windows(v).mean(2);
  DOCTEST_CHECK(rel(o0, mean) < 1e-5);
  // a v2p checkpoint's keys load into the anatomy packer
  std::set<std::string> ak;
  for (const auto& kv : ap->named_parameters(true)) ak.insert(kv.key());
  std::set<std::string> vk;
  model::SpatialPacker vp(small());
  for (const auto& kv : vp->named_parameters(true)) vk.insert(kv.key());
  DOCTEST_CHECK(ak == vk);
  DOCTEST_CHECK(ap->forward(x).sizes() == torch::IntArrayRef({2, 128, 48}));
}

TEST_CASE("packer: published key names, shapes and the 14.17 M parameters") {
  model::SpatialPacker p{model::PackerConfig()};
  std::set<std::string> keys;
  std::int64_t n = 0;
  for (const auto& kv : p->named_parameters(true)) {
    keys.insert(kv.key());
    n += kv.value().numel();
  }
  const std::set<std::string> want{
      "resolution_attention.Wq.weight", "resolution_attention.Wq.bias", "resolution_attention.Wk.weight",
      "resolution_attention.Wk.bias", "resolution_attention.Wv.weight", "resolution_attention.Wv.bias",
      "resolution_attention.output_linear.weight", "resolution_attention.output_linear.bias",
      "resolution_attention.norm.weight", "resolution_attention.norm.bias", "proj_mpls.0.weight", "proj_mpls.0.bias",
      "proj_mpls.2.weight", "proj_mpls.2.bias"};
  DOCTEST_CHECK(keys == want);
  DOCTEST_CHECK(n == 14166528);
  auto params = p->named_parameters(true);
  DOCTEST_CHECK(params["proj_mpls.0.weight"].sizes() == torch::IntArrayRef({3072, 768}));
  DOCTEST_CHECK(params["proj_mpls.2.weight"].sizes() == torch::IntArrayRef({3072, 3072}));
  model::SpatialPacker sp{small(model::PackerKind::spatial_pool)};
  DOCTEST_CHECK(sp->named_parameters(true).size() == 4);
}

TEST_CASE("packer: windows, pooling order and the attention core vs its loop reference") {
  auto c = small();
  c.grid = {2, 4, 8};
  c.window = {1, 2, 4};
  model::SpatialPacker p(c);
  // x[b, n, :] = n: the windows hold the token indices of their blocks.
  auto x = torch::arange(64, torch::kFloat32).view({1, 64, 1}).expand({2, 64, 32}).contiguous();
  auto w = p->windows(x);
  DOCTEST_REQUIRE(w.sizes() == torch::IntArrayRef({2, 2 * 2 * 2, 8, 32}));
  // Query (d=0, h=1, w=1): rows 2..3, cols 4..7 -> tokens 2*8+4.. etc.
  std::set<int> got;
  for (int k = 0; k < 8; ++k) got.insert(static_cast<int>(w[0][3][k][0].item<float>()));
  DOCTEST_CHECK(got == std::set<int>{20, 21, 22, 23, 28, 29, 30, 31});
  // Query (d=1, h=0, w=0): tokens 32 + {0..3, 8..11}.
  auto lr = p->pooled(x);
  DOCTEST_CHECK(lr.sizes() == torch::IntArrayRef({2, 8, 32}));
  DOCTEST_CHECK(lr[1][4][5].item<float>() == doctest::Approx((32 + 33 + 34 + 35 + 40 + 41 + 42 + 43) / 8.0));
  DOCTEST_CHECK(lr[0][3][0].item<float>() == doctest::Approx(w[0][3].select(1, 0).mean().item<float>()));

  torch::manual_seed(3);
  auto q = torch::randn({2, 5, 16}), k = torch::randn({2, 5, 7, 16}), v = torch::randn({2, 5, 7, 16});
  auto fast = model::packer_attention(q, k, v);
  auto ref = model::packer_attention_reference(q, k, v);
  DOCTEST_CHECK(rel(fast, ref) < 1e-5);
  // Attention weights sum to one: constant values come back unchanged.
  auto ones = torch::ones({2, 5, 7, 16});
  DOCTEST_CHECK(rel(model::packer_attention(q, k, ones * 3.0), torch::full({2, 5, 16}, 3.0)) < 1e-6);
}

TEST_CASE("packer: v2p forward by hand; spatial and sequence pooling; dropout; shape errors") {
  torch::manual_seed(4);
  model::SpatialPacker p(small());
  p->eval();
  torch::NoGradGuard ng;
  auto x = torch::randn({2, 2048, 32});
  auto y = p->forward(x);
  DOCTEST_REQUIRE(y.sizes() == torch::IntArrayRef({2, 128, 48}));
  // By hand through the modules with the gathered windows.
  auto& ra = *p->resolution_attention;
  auto q = ra.Wq(p->pooled(x));
  auto win = p->windows(x);
  auto k = ra.Wk(win), v = ra.Wv(win);
  auto z = ra.norm(q + ra.output_linear(model::packer_attention_reference(q, k, v)));
  DOCTEST_CHECK(rel(y, p->proj_mpls->forward(z)) < 1e-5);
  DOCTEST_CHECK(rel(ra.forward(p->pooled(x), win), z) < 1e-5);

  model::SpatialPacker sp(small(model::PackerKind::spatial_pool));
  auto ys = sp->forward(x);
  DOCTEST_CHECK(ys.sizes() == torch::IntArrayRef({2, 128, 48}));
  DOCTEST_CHECK(rel(ys, sp->proj_mpls->forward(sp->pooled(x))) < 1e-6);
  model::SpatialPacker qp(small(model::PackerKind::sequence_pool));
  auto yq = qp->forward(x);
  DOCTEST_CHECK(yq.sizes() == torch::IntArrayRef({2, 128, 48}));
  auto seq = x.view({2, 128, 16, 32}).mean(2);
  DOCTEST_CHECK(rel(yq, qp->proj_mpls->forward(seq)) < 1e-5);

  // Dropout only in training.
  p->train();
  auto a = p->forward(x), b = p->forward(x);
  DOCTEST_CHECK((a - b).abs().max().item<double>() > 1e-4);
  p->eval();
  DOCTEST_CHECK((p->forward(x) - y).abs().max().item<double>() == 0.0);

  auto e = expect_error([&] { (void)p->forward(torch::randn({1, 2049, 32})); });
  DOCTEST_CHECK((e.code() == cli::Exit::incompatible));
  DOCTEST_CHECK_MESSAGE(std::string(e.what()).find("expected [B,2048,32]") != std::string::npos, e.what());
  e = expect_error([&] { (void)p->forward(torch::randn({1, 2048, 31})); });
  DOCTEST_CHECK((e.code() == cli::Exit::incompatible));
}

TEST_CASE("packer: gradients, save and load under a prefix, strict key reporting") {
  torch::manual_seed(5);
  model::SpatialPacker p(small());
  auto x = torch::randn({1, 2048, 32});
  p->forward(x).pow(2).mean().backward();
  for (const auto& kv : p->named_parameters(true)) DOCTEST_CHECK_MESSAGE(kv.value().grad().defined(), kv.key());

  const auto dir = tmpdir("io");
  const std::string prefix = "base_model.model.model.mm_projector.";
  io::SafeTensorsWriter w;
  model::add_state(w, *p, prefix);
  w.write((dir / "p.safetensors").string());
  model::SpatialPacker p2(small());
  io::SafeTensorsSet ckpt((dir / "p.safetensors").string());
  auto r = model::load_packer(*p2, ckpt, prefix);
  DOCTEST_CHECK(r.loaded == 14);
  torch::NoGradGuard ng;
  p->eval();
  p2->eval();
  DOCTEST_CHECK((p->forward(x) - p2->forward(x)).abs().max().item<double>() == 0.0);
  // A spatial_pool packer does not take the attention keys.
  model::SpatialPacker sp(small(model::PackerKind::spatial_pool));
  auto e = expect_error([&] { (void)model::load_packer(*sp, ckpt, prefix); });
  DOCTEST_CHECK((e.code() == cli::Exit::incompatible));
  DOCTEST_CHECK(e.file() == (dir / "p.safetensors").string());
  DOCTEST_CHECK_MESSAGE(std::string(e.what()).find("unexpected") != std::string::npos, e.what());
  // Another width: mis-shaped.
  auto wide = small();
  wide.in_dim = 16;
  model::SpatialPacker pw(wide);
  e = expect_error([&] { (void)model::load_packer(*pw, ckpt, prefix); });
  DOCTEST_CHECK_MESSAGE(std::string(e.what()).find("mis-shaped") != std::string::npos, e.what());
  fs::remove_all(dir);
}

TEST_CASE("driver: packer") {
  const char* jobs_path = std::getenv("HSE_PACKER_JOBS");
  const char* outp = std::getenv("HSE_PACKER_OUT");
  const char* tin = std::getenv("HSE_PACKER_TENSORS");
  if (!jobs_path || !outp || !tin) return;
  torch::set_num_threads(1);
  try {
    const json spec = json::parse(std::ifstream(jobs_path));
    io::SafeTensorsSet inputs(tin);
    io::SafeTensorsWriter w;
    torch::NoGradGuard ng;
    for (const auto& job : spec.at("jobs")) {
      const std::string name = job.at("name").get<std::string>();
      model::SpatialPacker p(model::PackerConfig::from_json(job.at("config"), name));
      io::SafeTensorsSet ckpt(job.at("weights").get<std::string>());
      (void)model::load_packer(*p, ckpt, job.value("prefix", std::string()));
      p->eval();
      auto y = p->forward(model::tensor_from(inputs, job.at("input").get<std::string>())).contiguous();
      w.add(name + ".out", io::Dtype::F32, std::vector<std::int64_t>(y.sizes().begin(), y.sizes().end()),
            y.data_ptr<float>());
    }
    w.write(outp);
  } catch (const cli::Error& e) {
    std::cerr << e.line() << std::endl;
    std::_Exit(static_cast<int>(e.code()));
  }
}
