// Inputs shared by hse-finetune and hse-generate: the frozen vision towers (a stage-2 CLIP with
// both 3-D ViTs, or cached token features from hse-embed --tokens), the report and RadGenome VQA
// CSVs, the prompt template files (share/hse/prompts), compute precision.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "hse/image/ct_input.h"
#include "hse/io/h5.h"
#include "hse/model/clip.h"

namespace CLI {
class App;
}

namespace hse::vlm {

// The MRG evaluation prompt (hsenet-spec §4).
inline const char* kMrgEvalPrompt = "Can you summarize with findings the images presented?";

// A file under share/hse (e.g. "prompts/caption.txt"): $HSE_SHARE/<rel>, else <exe>/../share/hse/<rel>,
// else <exe>/../../share/hse/<rel> (a build tree). Throws cli::Error exit 3 when none exists.
std::string share_file(const std::string& rel);
// Non-empty lines of a template file (exit 3 when there are none; location templates must hold
// "{abnormality}").
std::vector<std::string> read_prompts(const std::string& path, bool need_abnormality);
// Replaces every "{abnormality}" with `abnormality`.
std::string fill(const std::string& tmpl, const std::string& abnormality);

// VolumeName -> text of `column` (default Findings_EN; "Not given." and empty rows are kept as "").
std::map<std::string, std::string> read_reports(const std::string& path, const std::string& column = "Findings_EN");
// --report-column (hse-finetune and hse-generate): the reports CSV column trained on / used as the
// reference, default Findings_EN (HSENet); the demo uses Impressions_EN.
void add_report_column_option(CLI::App& app, std::string& column);

// RadGenome-style rows: VolumeName (any case), then "question" or "abnormality", and "answer" or
// "anatomy" (optional in generation: the reference). Column names are matched case-insensitively.
struct VqaRow {
  std::string id, abnormality, question, answer;
};
std::vector<VqaRow> read_vqa(const std::string& path, bool need_answer);

// --precision: fp32 | bf16 | fp16 (exit 2 otherwise).
torch::Dtype parse_precision(const std::string& precision);

// A CLIP checkpoint's inputs record (hse-pretrain writes it beside config.json; hse-classify
// replays it on CT files): record_inputs() with no towers' directory, relocated as an adapter's.
constexpr const char* kInputsRecord = "hse_inputs.json";

// The "inputs" record of an adapter (VlmConfig::inputs) from the training files: the towers'
// directory, the volumes' recipe attributes and, from the slice features, the slices' recipe and
// the 2-D encoder (hse-embed --slices writes them). JSON object text; no "clip" when `clip` is
// empty (a CLIP checkpoint's own record).
std::string record_inputs(const std::string& clip, const std::vector<std::string>& volumes,
                          const std::vector<std::string>& slice_features);

// The inputs record as written into an adapter directory that will live at `final_dir`: the
// towers' and the slice encoder's paths relative to it, and the slice encoder's config (small)
// copied into `write_dir` (the directory being written, renamed to `final_dir` afterwards) as
// slice_encoder_config.json. So a model folder can move, and an installed hse needs no source tree.
std::string relocate_inputs(const std::string& inputs_json, const std::string& write_dir, const std::string& final_dir);
// `path` relative to the directory `dir` (both made absolute first), as adapters record paths.
std::string relative_to(const std::string& path, const std::string& dir);

// A path from an adapter's record: relative paths are relative to the adapter directory;
// absolute paths are kept, except that a missing share/hse file (an older record, a moved
// clone) is looked up in this hse's share/hse.
std::string resolve_recorded(const std::string& adapter_dir, const std::string& recorded);


struct VisionOptions {
  std::string clip;                          // stage-2 CLIP dir (both towers)
  std::vector<std::string> volumes, slices;  // HDF5 volumes / slice_features
  std::string tokens1, tokens2;              // hse-embed --tokens outputs (stage-1 / stage-2 towers)
};

// Patch-token features of the two towers per volume: t1 (stage-1 3-D ViT), t2 (2E3), [B,N,C] float32.
class VisionSource {
 public:
  VisionSource(const VisionOptions& o, const torch::Device& device);
  const std::vector<std::string>& ids() const { return ids_; }
  std::optional<std::size_t> index_of(const std::string& id) const;
  // Features of the volumes `items` on the device; `augment`: HSENet's 3-D augmentation of the
  // volume (towers only), seeded per item with `seed`.
  std::pair<torch::Tensor, torch::Tensor> features(const std::vector<std::size_t>& items, bool augment = false,
                                                   std::uint64_t seed = 0) const;
  // features() in two halves, so that the trainers' data workers do the reading: read() gathers
  // the items' volumes (augmented) and slice features, or their cached token features, into host
  // memory for the device (pinned on CUDA); it only reads files and may run on any thread.
  // encode() runs the frozen towers on them, on the training thread.
  struct HostInputs {
    torch::Tensor first, second;  // volumes and slice features, or tokens1 and tokens2
  };
  HostInputs read(const std::vector<std::size_t>& items, bool augment = false, std::uint64_t seed = 0) const;
  std::pair<torch::Tensor, torch::Tensor> encode(const HostInputs& in) const;
  // The towers' config (only with --clip).
  const model::ClipConfig* clip_config() const { return clip_ ? &clip_->config : nullptr; }
  std::string source() const { return source_; }
  // The frozen towers in train mode (dropout active, as HF Trainer leaves them while the VLM
  // trains) or in eval mode (the default). No effect with cached token features.
  void set_tower_dropout(bool on) const {
    if (clip_) clip_->train(on);
  }

 private:
  torch::Device device_;
  mutable model::Clip clip_{nullptr};
  std::unique_ptr<h5::Reader> vols_, slices_, tok1_, tok2_;
  std::vector<std::size_t> slice_index_, tok2_index_;
  std::vector<std::string> ids_;
  std::map<std::string, std::size_t> index_;
  std::string source_;
};

}  // namespace hse::vlm
