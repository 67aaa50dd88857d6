// HSENet's CLIP models (hsenet-spec §1, §2, §8) with the published key names:
//   vision_encoder.*   3-D ViT (stage 1) or the 2E3 encoder (stage 2)
//   language_encoder.* BERT
//   mm_vision_proj.*, mm_language_proj.*  Linear heads, applied to every token, L2-normalised
//   logit_scale        a raw multiplier (published) or exp()'d (CLIP's form, an option)
//   stage1_pretrained_CLIP.*  (stage 2 only) the frozen stage-1 CLIP
// A checkpoint is a directory: config.json (model_type m3d_clip_stage1|m3d_clip_stage2,
// the published fields, and "hse": the full configs), model.safetensors, vocab.txt.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "hse/config/clip.h"
#include "hse/model/bert.h"
#include "hse/model/e2e3.h"
#include "hse/model/losses.h"
#include "hse/model/vit3d.h"

namespace hse::model {

struct ClipFeatures {
  torch::Tensor image, text;  // [B, D], L2-normalised (projected CLS)
  torch::Tensor scores;       // stage 2: patch scores [B, N]
};

class ClipImpl : public torch::nn::Module {
 public:
  explicit ClipImpl(const ClipConfig& c);
  // Projected, normalised CLS of the volume (stage 2 needs slices [B,S,F]).
  torch::Tensor encode_image(const torch::Tensor& volumes, const torch::Tensor& slices = {},
                             torch::Tensor* scores = nullptr);
  // All tokens of the last layer (after the final norm), CLS dropped: [B, N, H] (for the packers).
  torch::Tensor image_tokens(const torch::Tensor& volumes, const torch::Tensor& slices = {});
  torch::Tensor encode_text(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);
  torch::Tensor scale() const { return effective_scale(logit_scale, config.logit_scale_form); }
  // Stage 2: the frozen stage-1 model (nullptr in stage 1).
  std::shared_ptr<ClipImpl> stage1() const { return stage1_; }
  // Trainable parameters by name (stage 2: without the frozen stage 1).
  std::vector<std::pair<std::string, torch::Tensor>> trainable();

  ClipConfig config;
  std::shared_ptr<Vit3dImpl> vision_encoder;  // an E2E3Impl in stage 2
  Bert language_encoder{nullptr};
  torch::nn::Linear mm_vision_proj{nullptr}, mm_language_proj{nullptr};
  torch::Tensor logit_scale;

 private:
  std::shared_ptr<ClipImpl> stage1_;
};
TORCH_MODULE(Clip);

// Loads a CLIP checkpoint directory (or .safetensors beside a config.json). Every
// missing/unexpected/mis-shaped key is an error (exit 3) unless allow_partial.
Clip load_clip(const std::string& dir, bool allow_partial = false);
// Copies the weights present in `ckpt` into `model` (strict=False, as HSENet's stage-2
// initialisation from M3D-CLIP); returns the report.
LoadReport init_clip_from(Clip& model, const std::string& ckpt_dir);
// Writes config.json, model.safetensors (float32) and vocab.txt (copied from `vocab`, if given).
void save_clip(const Clip& model, const std::string& dir, const std::string& vocab = {});

}  // namespace hse::model
