#include "hse/app/classify.h"

#include <filesystem>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <torch/torch.h>

#include "hse/app/generate.h"
#include "hse/app/volume_batches.h"
#include "hse/vlm/inputs.h"
#include "hse/cli/flags.h"
#include "hse/io/atomic.h"
#include "hse/model/clip.h"
#include "hse/model/config_check.h"
#include "hse/model/device.h"
#include "hse/text/wordpiece.h"
#include "hse/train/host.h"

namespace fs = std::filesystem;

namespace hse::classify {

void declare(CLI::App& app, Options& o) {
  cli::add_common(app, o.common, cli::kDevice | cli::kThreads | cli::kVerbosity | cli::kProgress);
  cli::flags::model(app, o.model, "CLIP checkpoint directory (hse-pretrain's output, stage 1 or 2)")->required();
  cli::flags::volumes(app, o.volumes, "volumes to classify (HDF5 kind volumes), or give CT files");
  cli::flags::slice_features(app, o.slice_features, "2E3 (stage-2) models: the volumes' slice features");
  image::add_ct_input_options(app, o.ct);
  cli::flags::prompts(app, o.prompts,
                      "prompt pairs: TSV label<TAB>positive<TAB>negative, one label per line (default: CT-CLIP's "
                      "'<label> is present.' / '<label> is not present.' for the 18 CT-RATE abnormalities, "
                      "share/hse/labels/ct-rate-abnormalities.txt)");
  cli::flags::batch_size(app, o.batch, "volumes per forward pass")->default_val(4);
  cli::flags::max_length(app, o.max_length, "prompt tokens (CT-CLIP pads to 512)")->default_val(512);
  cli::flags::data_workers(app, o.data_workers,
                           "threads that read the next batches of volumes while the current one is encoded");
}

std::vector<PromptPair> read_prompt_pairs(const std::string& path, bool tsv) {
  std::istringstream in(io::read_file(path));
  std::vector<PromptPair> out;
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    if (!tsv) {
      out.push_back({line, line + " is present.", line + " is not present."});  // CT-CLIP, scripts/zero_shot.py
      continue;
    }
    const auto a = line.find('\t'), b = a == std::string::npos ? a : line.find('\t', a + 1);
    if (b == std::string::npos || line.find('\t', b + 1) != std::string::npos || a == 0 || b == a + 1 ||
        b + 1 == line.size())
      cli::fail_input(path, "line {}: expected label<TAB>positive prompt<TAB>negative prompt", n);
    out.push_back({line.substr(0, a), line.substr(a + 1, b - a - 1), line.substr(b + 1)});
  }
  if (out.empty()) cli::fail_input(path, "no labels");
  return out;
}

int run(const Options& o, cli::Io& io) {
  torch::set_num_threads(cli::resolve_threads(o.common.threads));
  const torch::Device dev = model::torch_device(o.common.device);
  if (o.batch < 1) cli::fail_usage("--batch-size must be positive");
  if (o.max_length < 8) cli::fail_usage("--max-length must be at least 8");
  torch::NoGradGuard ng;
  const auto pairs = o.prompts.empty() ? read_prompt_pairs(cli::share_file("labels/ct-rate-abnormalities.txt"), false)
                                       : read_prompt_pairs(o.prompts, true);
  const bool from_ct = !o.ct.inputs.empty() || !o.ct.root.empty();
  if (from_ct == !o.volumes.empty())
    cli::fail_usage(from_ct ? "CT inputs replace --volumes: give one or the other"
                            : "give --volumes (HDF5) or CT files to classify");
  if (from_ct && !o.slice_features.empty())
    cli::fail_usage("--slice-features goes with --volumes; from CT files they are made with the model's record");
  model::Clip clip = model::load_clip(o.model);
  clip->to(dev);
  clip->eval();
  if (clip->config.stage == 2 && !from_ct && o.slice_features.empty())
    cli::fail_usage("{} is a 2E3 (stage-2) model: give --slice-features", o.model);
  if (clip->config.stage == 2 && clip->config.vision.patch_guide != "slices")
    cli::fail_input(o.model, "scores its patches by the report ({} guides): zero-shot detection would read the "
                    "labels' own source; use a slice-guided or stage-1 CLIP", clip->config.vision.patch_guide);

  // The prompts' features: [2L, D], positive and negative of each label in turn.
  const std::string vocab = (fs::path(o.model) / "vocab.txt").string();
  const auto tok = text::WordPieceTokenizer::from_file(vocab);
  model::check_vocab_fits(static_cast<std::int64_t>(tok.vocab_size()), clip->config.text.vocab_size, vocab, o.model);
  const auto L = static_cast<std::int64_t>(pairs.size());
  auto ids = torch::empty({2 * L, o.max_length}, torch::kLong), mask = torch::empty_like(ids);
  for (std::int64_t l = 0; l < L; ++l)
    for (int s = 0; s < 2; ++s) {
      const auto& p = pairs[static_cast<std::size_t>(l)];
      train::set_encoding_row(ids, mask, 2 * l + s, tok.encode(s == 0 ? p.positive : p.negative, o.max_length, true, true));
    }
  const auto text = clip->encode_text(ids.to(dev), mask.to(dev)).to(torch::kFloat32);  // [2L, D]
  const auto scale = clip->scale().to(torch::kFloat32);

  // CT files: volumes (and slice features) made in-process by hse-preprocess, hse-slice and
  // hse-embed --slices with the recipes hse-pretrain recorded in the checkpoint (hse_inputs.json).
  std::vector<std::string> volumes = o.volumes, slice_features = o.slice_features;
  generate::TempDir tmp("hse-classify");
  if (from_ct) {
    const std::string record = (fs::path(o.model) / vlm::kInputsRecord).string();
    const std::string hint = "retrain the CLIP with this hse (hse-pretrain records how its inputs were made), or give "
                             "--volumes (and --slice-features)";
    if (!fs::exists(record))
      throw cli::Error(cli::Exit::incompatible, record, "no such file: the CLIP does not record how its volumes were made",
                       hint);
    const image::CtInputOptions ct = generate::named_ct_inputs(o.ct, io.in);
    tmp.make();
    generate::CtPrepare cp;
    cp.adapter_dir = o.model;
    cp.record_file = vlm::kInputsRecord;
    cp.hint = hint;
    cp.dir = tmp.path;
    cp.device = o.common.device;
    cp.threads = o.common.threads;
    const auto prepared = generate::prepare_ct_inputs(io::read_file(record), ct, cp);
    volumes = {prepared.volumes};
    slice_features = prepared.slice_features.empty() ? std::vector<std::string>{}
                                                     : std::vector<std::string>{prepared.slice_features};
    if (clip->config.stage == 2 && slice_features.empty())
      throw cli::Error(cli::Exit::incompatible, record, "records no slice recipe or 2-D encoder for this 2E3 model",
                       hint);
  }
  app::VolumeBatches data(volumes, clip->config.stage == 2 ? slice_features : std::vector<std::string>{},
                          static_cast<std::size_t>(o.batch), o.data_workers, dev);
  if (clip->config.stage == 2) data.check_guide(clip->config.vision.patch_guide, o.model);
  const h5::Reader& r = data.reader();
  const double setup_s = cli::elapsed_s();  // model loaded, prompts encoded
  cli::Progress progress("classify", r.size(), o.common.progress);
  while (auto b = data.next()) {
    const auto img = clip->encode_image(train::to_device(b->volumes, dev), train::to_device(b->slices, dev))
                         .to(torch::kFloat32);  // [B, D]
    // CT-CLIP: cosine x exp(temperature) per prompt, softmax over the label's two prompts.
    const auto logits = (scale * torch::matmul(img, text.t())).view({img.size(0), L, 2});
    const auto prob = torch::softmax(logits, 2).select(2, 0).to(torch::kCPU, torch::kFloat64).contiguous();
    const double* p = prob.data_ptr<double>();
    for (std::int64_t k = 0; k < prob.size(0); ++k) {
      const std::string& id = r.ids()[b->first + static_cast<std::size_t>(k)];
      for (std::int64_t l = 0; l < L; ++l)
        io.out << id << '\t' << pairs[static_cast<std::size_t>(l)].label << '\t'
               << fmt::format("{:.6f}", p[k * L + l]) << '\n';
    }
    if (!io.out) return 0;  // closed pipe
    progress.tick(static_cast<std::size_t>(prob.size(0)));
  }
  cli::summary("classified {} volumes for {} labels ({:.3f} s per volume after {:.1f} s of set-up)", r.size(), L,
               (cli::elapsed_s() - setup_s) / static_cast<double>(std::max<std::size_t>(1, r.size())), setup_s);
  return 0;
}

}  // namespace hse::classify
