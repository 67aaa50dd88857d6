// HSENet's CLIP config (config.json of a CLIP checkpoint), without LibTorch: parsed in libhse
// (fuzzed by tests/fuzz/fuzz_config.cpp); the model is in hse/model/clip.h, the losses in
// hse/model/losses.h.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

#include "hse/config/bert.h"
#include "hse/config/vit3d.h"

namespace hse::model {

// How logit_scale multiplies the similarities: as published (raw multiplier, initial
// ln(1/0.07) ≈ 2.659, not clamped) or CLIP's exp() form.
enum class LogitScaleForm { raw, exp };
LogitScaleForm parse_logit_scale_form(const std::string& s);  // "raw" | "exp"

struct ClipConfig {
  int stage = 1;
  Vit3dConfig vision;
  BertConfig text;
  LogitScaleForm logit_scale_form = LogitScaleForm::raw;
  double logit_scale_init = 2.659260036932778;  // ln(1/0.07)

  // From a checkpoint's config.json: hse's own block when present, else the published fields
  // (text defaults: bert-base-uncased).
  static ClipConfig from_json(const nlohmann::json& j, const std::string& source);
  static ClipConfig from_file(const std::string& path_or_dir);
  // A training config: {"vision": <vit3d config file or object>, "text": <BERT dir/config.json or object>, ...}.
  static ClipConfig from_parts(const Vit3dConfig& vision, const BertConfig& text, int stage);
  nlohmann::json to_json() const;
};

}  // namespace hse::model
