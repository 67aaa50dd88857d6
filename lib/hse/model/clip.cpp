#include "hse/model/clip.h"

#include <filesystem>
#include <fstream>

#include "hse/cli/cli.h"
#include "hse/io/atomic.h"
#include "hse/model/checkpoint.h"
#include "hse/model/config_check.h"

namespace fs = std::filesystem;

namespace hse::model {

ClipImpl::ClipImpl(const ClipConfig& c) : config(c) {
  if (c.stage == 2) {
    vision_encoder = std::make_shared<E2E3Impl>(c.vision);
  } else {
    vision_encoder = std::make_shared<Vit3dImpl>(c.vision);
  }
  register_module("vision_encoder", vision_encoder);
  language_encoder = register_module("language_encoder", Bert(c.text, true));
  const auto H = c.vision.hidden, T = c.text.hidden_size;
  mm_vision_proj = register_module("mm_vision_proj", torch::nn::Linear(H, H));
  mm_language_proj = register_module("mm_language_proj", torch::nn::Linear(T, H));
  logit_scale = register_parameter("logit_scale", torch::tensor(c.logit_scale_init));
  if (c.stage == 2) {
    ClipConfig s1 = c;
    s1.stage = 1;
    stage1_ = std::make_shared<ClipImpl>(s1);
    register_module("stage1_pretrained_CLIP", stage1_);
    for (auto& p : stage1_->parameters()) p.set_requires_grad(false);
  }
}

namespace {
torch::Tensor l2(const torch::Tensor& x) {
  return torch::nn::functional::normalize(x, torch::nn::functional::NormalizeFuncOptions().dim(-1));
}
}  // namespace

torch::Tensor ClipImpl::image_tokens(const torch::Tensor& volumes, const torch::Tensor& slices) {
  VisionOutput o;
  if (config.stage == 2) {
    if (!slices.defined()) cli::fail_usage("the 2E3 encoder needs slice features");
    o = std::static_pointer_cast<E2E3Impl>(vision_encoder)->forward(volumes, slices, false);
  } else {
    o = vision_encoder->forward(volumes, false);
  }
  return o.last.narrow(1, 1, o.last.size(1) - 1);
}

torch::Tensor ClipImpl::encode_image(const torch::Tensor& volumes, const torch::Tensor& slices, torch::Tensor* scores) {
  VisionOutput o;
  if (config.stage == 2) {
    if (!slices.defined()) cli::fail_usage("the 2E3 encoder needs slice features");
    o = std::static_pointer_cast<E2E3Impl>(vision_encoder)->forward(volumes, slices, false);
    if (scores) *scores = o.scores;
  } else {
    o = vision_encoder->forward(volumes, false);
  }
  return l2(mm_vision_proj(o.last.select(1, 0)));
}

torch::Tensor ClipImpl::encode_text(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  const auto o = language_encoder->forward(input_ids, attention_mask);
  return l2(mm_language_proj(o.last_hidden_state.select(1, 0)));
}

std::vector<std::pair<std::string, torch::Tensor>> ClipImpl::trainable() {
  std::vector<std::pair<std::string, torch::Tensor>> v;
  for (const auto& p : named_parameters(true))
    if (p.key().rfind("stage1_pretrained_CLIP.", 0) != 0 && p.value().requires_grad()) v.emplace_back(p.key(), p.value());
  return v;
}

Clip load_clip(const std::string& dir, bool allow_partial) {
  const ClipConfig c = ClipConfig::from_file(dir);
  const std::string weights = fs::is_directory(dir) ? dir : fs::path(dir).parent_path().string();
  io::SafeTensorsSet ckpt(weights);
  {
    const auto& v = c.vision;
    const auto& t = c.text;
    const long double H = static_cast<long double>(v.hidden), T = static_cast<long double>(t.hidden_size);
    const long double vis = static_cast<long double>(v.layers) * (4 * H * H + 2 * H * v.mlp_dim) +
                            static_cast<long double>(v.num_patches() + v.patch_dim()) * H;
    const long double txt = (static_cast<long double>(t.vocab_size) + t.max_position_embeddings) * T +
                            static_cast<long double>(t.num_hidden_layers) * (4 * T * T + 2 * T * t.intermediate_size);
    check_config_against(ckpt, "",
                         {{"mm_vision_proj.weight", {v.hidden, v.hidden}, "vision hidden_size"},
                          {"mm_language_proj.weight", {v.hidden, t.hidden_size}, "vision and text hidden_size"},
                          {"language_encoder.embeddings.word_embeddings.weight", {t.vocab_size, t.hidden_size},
                           "text vocab_size x hidden_size"},
                          {"language_encoder.embeddings.position_embeddings.weight",
                           {t.max_position_embeddings, t.hidden_size}, "text max_position_embeddings x hidden_size"}},
                         (fs::path(weights) / "config.json").string(), (vis + txt) * (c.stage == 2 ? 2 : 1));
  }
  Clip m(c);
  load_state(*m, ckpt, "", allow_partial, {"language_encoder.embeddings.position_ids",
                                           "stage1_pretrained_CLIP.language_encoder.embeddings.position_ids"});
  m->eval();
  return m;
}

LoadReport init_clip_from(Clip& model, const std::string& ckpt_dir) {
  io::SafeTensorsSet ckpt(ckpt_dir);
  // Only the stage-2 model's own weights (not its frozen stage 1), as HSENet's strict=False load.
  LoadReport total;
  for (const auto& item : model->named_parameters(true)) {
    const std::string& name = item.key();
    torch::Tensor t = item.value();
    if (name.rfind("stage1_pretrained_CLIP.", 0) == 0) continue;
    if (!ckpt.contains(name)) {
      total.missing.push_back(name);
      continue;
    }
    const auto& shape = ckpt.info(name).shape;
    if (std::vector<std::int64_t>(t.sizes().begin(), t.sizes().end()) != shape) {
      total.mis_shaped.push_back(name);
      continue;
    }
    torch::NoGradGuard ng;
    t.copy_(tensor_from(ckpt, name));
    ++total.loaded;
  }
  return total;
}

void save_clip(const Clip& model, const std::string& dir, const std::string& vocab) {
  fs::create_directories(dir);
  io::SafeTensorsWriter w;
  add_state(w, *model, "");
  w.set_metadata("format", "pt");
  w.write((fs::path(dir) / "model.safetensors").string());
  io::AtomicFile cfg((fs::path(dir) / "config.json").string());
  cfg.stream() << model->config.to_json().dump(2) << '\n';
  cfg.commit();
  if (!vocab.empty()) {
    io::AtomicFile v((fs::path(dir) / "vocab.txt").string(), true);
    v.stream() << io::read_file(vocab);
    v.commit();
  }
}

}  // namespace hse::model
