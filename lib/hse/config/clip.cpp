#include "hse/config/clip.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/io/atomic.h"
#include "hse/config/json.h"

namespace fs = std::filesystem;

namespace hse::model {

LogitScaleForm parse_logit_scale_form(const std::string& s) {
  if (s == "raw") return LogitScaleForm::raw;
  if (s == "exp") return LogitScaleForm::exp;
  cli::fail_usage("--logit-scale: '{}' is not one of raw, exp", s);
}

ClipConfig ClipConfig::from_json(const nlohmann::json& j, const std::string& source) {
  cfg::check_depth("clip", j, source);
  ClipConfig c;
  try {
    const std::string mt = j.value("model_type", std::string("m3d_clip_stage1"));
    c.stage = mt == "m3d_clip_stage2" ? 2 : 1;
    if (j.contains("hse")) {
      const auto& h = j.at("hse");
      c.vision = Vit3dConfig::from_json(h.at("vision"), source);
      c.text = BertConfig::from_json(h.at("text"), source);
      if (const auto* f = cfg::field(h, {"logit_scale_form"})) {
        if (!f->is_string() || (*f != "raw" && *f != "exp"))
          cfg::bad_field("clip", source, "logit_scale_form", *f, "\"raw\" or \"exp\"");
        c.logit_scale_form = parse_logit_scale_form(f->get<std::string>());
      }
      c.logit_scale_init = h.value("logit_scale_init", c.logit_scale_init);
    } else {
      c.vision = Vit3dConfig::from_json(j, source);  // the published fields
      if (const auto* v = cfg::field(j, {"vocab_size"})) {
        if (!v->is_number_integer() || v->get<std::int64_t>() <= 0)
          cfg::bad_field("clip", source, "vocab_size", *v, "a positive integer");
        c.text.vocab_size = v->get<std::int64_t>();
      }
    }
  } catch (const nlohmann::json::exception& e) {
    cli::fail_input(source, "malformed CLIP config: {}", e.what());
  }
  return c;
}

ClipConfig ClipConfig::from_file(const std::string& path) {
  const std::string file = fs::is_directory(path) ? (fs::path(path) / "config.json").string() : path;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(io::read_file(file));
  } catch (const nlohmann::json::exception& e) {
    cli::fail_input(file, "malformed JSON: {}", e.what());
  }
  return from_json(j, file);
}

ClipConfig ClipConfig::from_parts(const Vit3dConfig& vision, const BertConfig& text, int stage) {
  ClipConfig c;
  c.vision = vision;
  c.text = text;
  c.stage = stage;
  return c;
}

nlohmann::json ClipConfig::to_json() const {
  nlohmann::json j = vision.to_json();  // the published top-level fields
  j["model_type"] = stage == 2 ? "m3d_clip_stage2" : "m3d_clip_stage1";
  j["vocab_size"] = text.vocab_size;
  j["max_text_len"] = 128;
  j["hse"] = {{"vision", vision.to_json()},
              {"text", text.to_json()},
              {"logit_scale_form", logit_scale_form == LogitScaleForm::raw ? "raw" : "exp"},
              {"logit_scale_init", logit_scale_init}};
  return j;
}

}  // namespace hse::model
