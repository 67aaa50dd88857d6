#include "hse/vlm/inputs.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

#include <CLI/CLI.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/model/config_check.h"
#include "hse/embed/slice_encoder.h"
#include "hse/io/csv.h"
#include "hse/io/h5.h"
#include "hse/io/record.h"
#include "hse/preprocess/recipe.h"
#include "hse/slice/recipe.h"
#include "hse/train/clip_data.h"
#include "hse/train/host.h"

namespace fs = std::filesystem;

namespace hse::vlm {

std::string share_file(const std::string& rel) { return cli::share_file(rel); }

std::vector<std::string> read_prompts(const std::string& path, bool need_abnormality) {
  std::ifstream f(path);
  if (!f) cli::fail_input(path, "cannot read prompt templates");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(f, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    if (need_abnormality && line.find("{abnormality}") == std::string::npos)
      cli::fail_input(path, "template without {{abnormality}}: '{}'", line);
    out.push_back(line);
  }
  if (out.empty()) cli::fail_input(path, "no prompt templates");
  return out;
}

std::string fill(const std::string& tmpl, const std::string& abnormality) {
  std::string s = tmpl;
  const std::string key = "{abnormality}";
  for (auto p = s.find(key); p != std::string::npos; p = s.find(key, p + abnormality.size()))
    s.replace(p, key.size(), abnormality);
  return s;
}

std::map<std::string, std::string> read_reports(const std::string& path, const std::string& column) {
  const io::Table t = io::read_csv(path);
  const auto idc = t.find_col_ci({"VolumeName"});
  const auto tc = t.find_col_ci({column});
  if (!idc) cli::fail_input(path, "no VolumeName column");
  if (!tc) cli::fail_input(path, "no {} column", column);
  if (t.rows.empty()) cli::fail_input(path, "no report rows (a header only)");
  std::map<std::string, std::string> out;
  for (const auto& r : t.rows) {
    std::string s = r[*tc];
    if (s == "Not given.") s.clear();
    out[r[*idc]] = s;
  }
  return out;
}

std::string record_inputs(const std::string& clip, const std::vector<std::string>& volumes,
                          const std::vector<std::string>& slice_features) {
  // The files' attributes as they are; a recipe this hse cannot replay is warned about now and
  // refused (exit 3) only when hse-generate is asked to replay it on CT files.
  auto check = [](const std::string& file, const std::function<void()>& parse) {
    try {
      parse();
    } catch (const cli::Error& e) {
      cli::warn("{}: the model being trained cannot rebuild these inputs from CT files (hse-generate and "
                "hse-classify will need --volumes and --slice-features instead): {}", file, e.what());
    }
  };
  nlohmann::json j;
  if (!clip.empty()) j["clip"] = fs::absolute(clip).lexically_normal().string();
  j["volumes"] = io::attrs_json(h5::Reader(volumes, "volumes").attrs());
  check(volumes.front(), [&] { preprocess::Recipe::from_json(j["volumes"], volumes.front()); });
  if (!slice_features.empty()) {
    const h5::Reader sf(slice_features, "slice_features");
    j["slices"] = io::attrs_json(sf.attrs(), slice::Recipe::kFeaturesAttrPrefix);
    j["slice_encoder"] = io::attrs_json(sf.attrs(), embed::SliceEncoderRecord::kAttrPrefix);
    check(slice_features.front(), [&] {
      slice::Recipe::from_json(j["slices"], slice_features.front());
      embed::SliceEncoderRecord::from_json(j["slice_encoder"], slice_features.front());
    });
  }
  return j.dump();
}

std::string relocate_inputs(const std::string& inputs_json, const std::string& write_dir, const std::string& final_dir) {
  if (inputs_json.empty()) return inputs_json;
  auto rec = nlohmann::json::parse(inputs_json);
  auto rel = [&](nlohmann::json& v) {
    if (v.is_string() && !v.get<std::string>().empty()) v = relative_to(v.get<std::string>(), final_dir);
  };
  if (rec.contains("clip")) rel(rec["clip"]);
  if (rec.contains("slice_encoder") && rec["slice_encoder"].is_object()) {
    auto& e = rec["slice_encoder"];
    if (e.contains("model")) rel(e["model"]);
    if (e.contains("vit2d_config") && e["vit2d_config"].is_string() && !e["vit2d_config"].get<std::string>().empty()) {
      const std::string src = e["vit2d_config"].get<std::string>();
      if (!fs::exists(src)) cli::fail_input(src, "the slice encoder's config is gone; cannot copy it into the adapter");
      fs::copy_file(src, fs::path(write_dir) / "slice_encoder_config.json", fs::copy_options::overwrite_existing);
      e["vit2d_config"] = "slice_encoder_config.json";
    }
  }
  return rec.dump();
}

std::string relative_to(const std::string& path, const std::string& dir) {
  return fs::absolute(path).lexically_normal().lexically_relative(fs::absolute(dir).lexically_normal()).generic_string();
}

std::string resolve_recorded(const std::string& adapter_dir, const std::string& recorded) {
  if (recorded.empty()) return recorded;
  const fs::path p(recorded);
  if (p.is_relative()) return (fs::path(adapter_dir) / p).lexically_normal().string();
  if (fs::exists(p)) return recorded;
  const std::string key = "/share/hse/";
  if (const auto at = recorded.rfind(key); at != std::string::npos) {
    const std::string found = share_file(recorded.substr(at + key.size()));
    cli::warn("{}: recorded path {} is gone; using {}", adapter_dir, recorded, found);
    return found;
  }
  return recorded;
}

void add_report_column_option(CLI::App& app, std::string& column) {
  app.add_option("--report-column", column, "mrg: the reports CSV column trained on and used as the reference (Findings_EN as HSENet; the demo uses Impressions_EN)")
      ->default_val("Findings_EN");
}

std::vector<VqaRow> read_vqa(const std::string& path, bool need_answer) {
  const io::Table t = io::read_csv(path);
  const auto idc = t.find_col_ci({"VolumeName"});
  const auto qc = t.find_col_ci({"question"});
  const auto ac = t.find_col_ci({"abnormality"});
  const auto ansc = t.find_col_ci({"answer", "anatomy"});
  if (!idc) cli::fail_input(path, "no VolumeName column");
  if (!qc && !ac) cli::fail_input(path, "no question or abnormality column");
  if (need_answer && !ansc) cli::fail_input(path, "no answer or anatomy column");
  std::vector<VqaRow> out;
  for (const auto& r : t.rows) {
    VqaRow v;
    v.id = r[*idc];
    if (ac) v.abnormality = r[*ac];
    if (qc) v.question = r[*qc];
    if (ansc) v.answer = r[*ansc];
    out.push_back(std::move(v));
  }
  if (out.empty()) cli::fail_input(path, "no rows");
  return out;
}

torch::Dtype parse_precision(const std::string& d) {
  if (d == "fp32" || d == "float32") return torch::kFloat32;
  if (d == "bf16" || d == "bfloat16") return torch::kBFloat16;
  if (d == "fp16" || d == "float16") return torch::kFloat16;
  cli::fail_usage("--precision must be fp32, bf16 or fp16 (got '{}')", d);
}

VisionSource::VisionSource(const VisionOptions& o, const torch::Device& device) : device_(device) {
  const bool cached = !o.tokens1.empty() || !o.tokens2.empty();
  if (cached) {
    if (o.tokens1.empty() || o.tokens2.empty()) cli::fail_usage("give both --tokens1 and --tokens2");
    tok1_ = std::make_unique<h5::Reader>(std::vector<std::string>{o.tokens1}, "embeddings");
    tok2_ = std::make_unique<h5::Reader>(std::vector<std::string>{o.tokens2}, "embeddings");
    for (auto* r : {tok1_.get(), tok2_.get()})
      if (r->item_shape("embeddings").size() != 2)
        cli::fail_input(r == tok1_.get() ? o.tokens1 : o.tokens2,
                        "not token features [N,T,H] (write them with hse-embed --tokens)");
    std::map<std::string, std::size_t> i2;
    for (std::size_t i = 0; i < tok2_->size(); ++i) i2[tok2_->ids()[i]] = i;
    for (std::size_t i = 0; i < tok1_->size(); ++i) {
      auto it = i2.find(tok1_->ids()[i]);
      if (it == i2.end()) cli::fail_input(o.tokens2, "no token features for '{}'", tok1_->ids()[i]);
      tok2_index_.push_back(it->second);
    }
    ids_ = tok1_->ids();
    source_ = o.tokens1;
  } else {
    if (o.clip.empty()) cli::fail_usage("give --clip with --volumes (or cached --tokens1/--tokens2)");
    if (o.volumes.empty()) cli::fail_usage("give --volumes (or cached --tokens1/--tokens2)");
    clip_ = model::load_clip(o.clip);
    if (clip_->config.stage != 2 || !clip_->stage1())
      cli::fail_input(o.clip, "a stage-{} CLIP; the VLM needs a stage-2 CLIP (both 3-D ViTs)", clip_->config.stage);
    if (o.slices.empty()) cli::fail_usage("{} is a 2E3 (stage-2) model: give --slice-features", o.clip);
    if (clip_->config.vision.patch_guide != "slices")
      cli::fail_input(o.clip, "scores its patches by the report ({} guides); the VLM needs a slice-guided 2E3 (the "
                      "guide would be the text it is asked for)", clip_->config.vision.patch_guide);
    clip_->to(device_);
    clip_->eval();
    for (auto& p : clip_->parameters()) p.set_requires_grad(false);
    vols_ = std::make_unique<h5::Reader>(o.volumes, "volumes");
    slices_ = std::make_unique<h5::Reader>(o.slices, "slice_features");
    model::check_patch_guide(slices_->attr_string(model::kGuideAttr), "slices", o.slices.front(), o.clip);
    std::map<std::string, std::size_t> si;
    for (std::size_t i = 0; i < slices_->size(); ++i) si[slices_->ids()[i]] = i;
    for (const auto& id : vols_->ids()) {
      auto it = si.find(id);
      if (it == si.end()) cli::fail_input(o.slices.front(), "no slice features for '{}'", id);
      slice_index_.push_back(it->second);
    }
    ids_ = vols_->ids();
    source_ = o.volumes.front();
  }
  for (std::size_t i = 0; i < ids_.size(); ++i) index_.emplace(ids_[i], i);
}

std::optional<std::size_t> VisionSource::index_of(const std::string& id) const {
  auto it = index_.find(id);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

namespace {
// The rows `idx` of dataset `name` into host memory for `dev`.
torch::Tensor read_rows(const h5::Reader& r, const std::string& name, const std::vector<std::size_t>& idx,
                        const torch::Device& dev) {
  return train::read_items(r, name, 0, idx.size(), dev, [&](std::size_t k) { return idx[k]; });
}
}  // namespace

VisionSource::HostInputs VisionSource::read(const std::vector<std::size_t>& items, bool augment,
                                            std::uint64_t seed) const {
  torch::NoGradGuard ng;
  if (tok1_) {
    std::vector<std::size_t> i2;
    for (auto i : items) i2.push_back(tok2_index_[i]);
    return {read_rows(*tok1_, "embeddings", items, device_), read_rows(*tok2_, "embeddings", i2, device_)};
  }
  auto v = read_rows(*vols_, "volumes", items, device_);
  if (augment)
    for (std::size_t k = 0; k < items.size(); ++k) {
      const auto kk = static_cast<std::int64_t>(k);
      v[kk].copy_(train::augment_volume(v[kk], seed * 1000003ull + items[k]));
    }
  std::vector<std::size_t> si;
  for (auto i : items) si.push_back(slice_index_[i]);
  return {v, read_rows(*slices_, "slice_features", si, device_)};
}

std::pair<torch::Tensor, torch::Tensor> VisionSource::encode(const HostInputs& in) const {
  torch::NoGradGuard ng;
  const auto a = train::to_device(in.first, device_), b = train::to_device(in.second, device_);
  if (tok1_) return {a, b};
  return {clip_->stage1()->image_tokens(a), clip_->image_tokens(a, b)};
}

std::pair<torch::Tensor, torch::Tensor> VisionSource::features(const std::vector<std::size_t>& items, bool augment,
                                                               std::uint64_t seed) const {
  return encode(read(items, augment, seed));
}

}  // namespace hse::vlm
