#include <algorithm>
#include <cstring>
#include <functional>
#include <filesystem>
#include <map>
#include <memory>

#include <CLI/CLI.hpp>

#include "hse/cli/flags.h"
#include "hse/embed/slice_encoder.h"
#include "hse/slice/recipe.h"
#include <torch/torch.h>

#include "hse/model/device.h"
#include "hse/app/embed.h"
#include "hse/app/volume_batches.h"

#include "hse/cli/compat.h"
#include "hse/model/config_check.h"
#include "hse/image/png.h"
#include "hse/io/atomic.h"
#include "hse/io/csv.h"
#include "hse/io/h5.h"
#include "hse/model/clip.h"
#include "hse/model/vit2d.h"
#include "hse/text/wordpiece.h"
#include "hse/train/host.h"
#include "hse/train/prefetch.h"

namespace fs = std::filesystem;

namespace hse::embed {

void declare(CLI::App& app, Options& o) {
  cli::add_common(app, o.common, cli::kOutputRequired | cli::kDevice | cli::kThreads | cli::kVerbosity | cli::kProgress,
                  "output HDF5 file (kind embeddings, or slice_features with --slices)");
  cli::flags::model(app, o.model, "CLIP checkpoint directory (with --slices: the 2-D encoder's safetensors)");
  cli::flags::volumes(app, o.volumes, "volumes to embed (HDF5 kind volumes)");
  cli::flags::slice_features(app, o.slice_features, "2E3 (stage-2) models: the volumes' slice features");
  cli::flags::reports(app, o.reports, "embed the reports of this CSV (VolumeName + text columns) instead");
  cli::flags::text_columns(app, o.text_columns);
  app.add_option("--slices", o.slices, "embed 2-D slices (HDF5 kind slices) with the 2-D encoder (BiomedCLIP trunk)");
  app.add_option("--vit2d-config", o.vit2d_config, "with --slices: the 2-D encoder's config (vit2d JSON)");
  app.add_option("--random-init", o.random_init,
                 "with --slices and no --model: a randomly initialised 2-D encoder seeded with this value (demos and "
                 "tests without BiomedCLIP weights; needs --vit2d-config)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--prefix", o.prefix, "with --slices: key prefix of the trunk in the checkpoint")->default_val("visual.trunk.");
  app.add_option("--guide", o.guide,
                 "with --reports: write the text tower's guide features for a 2E3 trained with hse-pretrain "
                 "--patch-guide (HDF5 kind slice_features, one item per report, keyed by VolumeName): text-cls (the "
                 "last layer's CLS, [N,1,H]) or full-text (every position up to --max-length, padding included, "
                 "[N,L,H], as the paper's 512x768 T_full)")
      ->check(CLI::IsMember({"text-cls", "full-text"}));
  app.add_flag("--tokens", o.tokens, "write all last-layer tokens (CLS dropped, [N,T,H]) for the packers");
  app.add_flag("--patch-scores", o.patch_scores, "2E3 models: also write the patch scores ([N,T])");
  app.add_option("--patch-png", o.patch_png,
                 "2E3 models: also write DIR/<volume>.png per volume, the patch scores over the middle axial slice of "
                 "each slab of patches (implies --patch-scores)");
  cli::flags::batch_size(app, o.batch, "items per forward pass", true)->default_val(4);
  cli::flags::data_workers(app, o.data_workers,
                           "threads that read the next batches of volumes, slice features or slices while the "
                           "current one is encoded");
  cli::flags::max_length(app, o.max_length, "text tokens")->default_val(512);
  cli::flags::truncation(app, o.truncation,
                 "reports longer than --max-length: cut (the first tokens; default) or sentences (HSENet's "
                 "truncate_text: the first sentence and random others, one random stream seeded 42 over the reports "
                 "in order, as its retrieval scripts)")
      ->default_val("cut");
  cli::add_compat_option(app, o.compat, "--truncation sentences, as HSENet's retrieval scripts encode reports");
  cli::flags::storage_dtype(app, o.dtype);
  cli::flags::compression(app, o.compression);
}

namespace {
std::vector<std::uint64_t> shape_of(const torch::Tensor& t) {
  std::vector<std::uint64_t> s;
  for (std::int64_t i = 1; i < t.dim(); ++i) s.push_back(static_cast<std::uint64_t>(t.size(i)));
  return s;
}

void append_rows(h5::Writer& w, const std::string& name, const torch::Tensor& rows, bool& declared, h5::DType dt) {
  const auto c = rows.to(torch::kCPU, torch::kFloat32).contiguous();
  if (!declared) {
    w.add_dataset(name, dt, shape_of(c));
    declared = true;
  }
  for (std::int64_t i = 0; i < c.size(0); ++i) w.append(name, c[i].data_ptr<float>());
}
// The file name of a volume id: directories and the .nii[.gz]/.nrrd/.mha/... suffix dropped.
std::string png_name(const std::string& id) {
  std::string n = fs::path(id).filename().string();
  for (const char* ext : {".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".dcm"})
    if (n.size() > std::strlen(ext) && n.compare(n.size() - std::strlen(ext), std::string::npos, ext) == 0) {
      n.resize(n.size() - std::strlen(ext));
      break;
    }
  return n + ".png";
}

// One montage PNG per volume of the batch (items first..first+B-1 of `ids`).
void write_score_pngs(const std::string& dir, const model::Vit3dConfig& vc, const torch::Tensor& volumes,
                      const torch::Tensor& scores, const std::vector<std::string>& ids, std::size_t first) {
  const auto g = vc.grid();
  const auto vol = volumes.to(torch::kCPU, torch::kFloat32).contiguous();
  const auto sc = scores.to(torch::kCPU, torch::kFloat32).contiguous();
  for (std::int64_t k = 0; k < vol.size(0); ++k) {
    const auto item = vol[k][0].contiguous();  // [D, X, Y]
    const auto s = sc[k].contiguous();         // [gd * gx * gy]
    int width = 0;
    const auto px = image::patch_score_montage(item.data_ptr<float>(), static_cast<int>(item.size(0)),
                                               static_cast<int>(item.size(1)), static_cast<int>(item.size(2)),
                                               s.data_ptr<float>(), static_cast<int>(g[0]), static_cast<int>(g[1]),
                                               static_cast<int>(g[2]), width);
    image::write_png((fs::path(dir) / png_name(ids[first + static_cast<std::size_t>(k)])).string(), width,
                     static_cast<int>(item.size(2)), 3, px.data());
  }
}
}  // namespace

int run(const Options& o, cli::Io&) {
  torch::set_num_threads(cli::resolve_threads(o.common.threads));
  const torch::Device dev = model::torch_device(o.common.device);
  const h5::DType dt = h5::parse_dtype(o.dtype);
  const int modes = !o.volumes.empty() + !o.reports.empty() + !o.slices.empty();
  if (modes != 1) cli::fail_usage("give exactly one of --volumes, --reports, --slices");
  if (o.batch < 1) cli::fail_usage("--batch-size must be positive");
  if (!o.patch_png.empty() && (o.volumes.empty() || o.tokens))
    cli::fail_usage("--patch-png goes with --volumes (and not --tokens)");
  const bool want_scores = o.patch_scores || !o.patch_png.empty();
  if (!o.guide.empty() && o.reports.empty()) cli::fail_usage("--guide goes with --reports");
  torch::NoGradGuard ng;

  const bool random_trunk = o.random_init >= 0;
  if (random_trunk && (o.slices.empty() || !o.model.empty()))
    cli::fail_usage("--random-init goes with --slices and replaces --model");
  if (random_trunk && o.vit2d_config.empty()) cli::fail_usage("--random-init needs --vit2d-config");
  if (o.model.empty() && !random_trunk) cli::fail_usage("--model is required");

  if (!o.slices.empty()) {
    const std::string cfg = !o.vit2d_config.empty() ? cli::config_file(o.vit2d_config)
                           : fs::is_directory(o.model) ? (fs::path(o.model) / "config.json").string()
                                                       : (fs::path(o.model).parent_path() / "config.json").string();
    if (random_trunk) torch::manual_seed(static_cast<std::uint64_t>(o.random_init));
    model::Vit2d m(model::Vit2dConfig::from_file(cfg));
    if (!random_trunk) {
      const std::string weights = fs::is_directory(o.model) ? (fs::path(o.model) / "model.safetensors").string() : o.model;
      model::load_vit2d(m, io::SafeTensorsSet(weights), o.prefix);
    }
    m->to(dev);
    h5::Reader r(o.slices, "slices");
    h5::Writer w(o.common.output, "slice_features");
    w.set_codec(h5::parse_codec(o.compression));
    bool declared = false;
    cli::Progress progress("embed slices", r.size(), o.common.progress);
    // One volume's slices ([1,S,3,H,W]) per item, read ahead on the data workers.
    const int workers = train::data_workers(o.data_workers);
    train::Prefetcher<std::size_t, torch::Tensor> data(
        train::Spans{r.size(), 1}, [&](const std::size_t& i) { return train::read_items(r, "slices", i, 1, dev); }, workers,
        2 * std::max(1, workers));
    for (std::size_t i = 0; i < r.size(); ++i) {
      const auto t = *data.next();
      append_rows(w, "slice_features", model::encode_slices(m, train::to_device(t, dev), o.batch), declared, dt);
      w.add_id(r.ids()[i]);
      progress.tick();
    }
    w.set_attr("model", random_trunk ? "random-init:" + std::to_string(o.random_init) : o.model);
    // What made these features, so that a model trained on them can redo it from CT files
    // (hse-finetune records it; hse-generate CT... replays it): the slices' recipe and the encoder.
    for (const auto& [k, v] : r.attrs())
      if (k.rfind("hse_", 0) != 0) w.set_attr(slice::Recipe::kFeaturesAttrPrefix + k, v);
    embed::SliceEncoderRecord enc;
    enc.model = random_trunk ? std::string() : fs::absolute(o.model).lexically_normal().string();
    enc.random_init = o.random_init;
    enc.vit2d_config = fs::absolute(cfg).lexically_normal().string();
    enc.prefix = o.prefix;
    enc.write(w);
    w.add_provenance(r.provenance());
    w.add_provenance({h5::provenance_record("hse-embed", cli::current_args())});
    w.commit();
    cli::summary("wrote slice features of {} volumes to {}", r.size(), o.common.output);
    return 0;
  }

  model::Clip clip = model::load_clip(o.model);
  clip->to(dev);
  clip->eval();
  h5::Writer w(o.common.output, o.guide.empty() ? "embeddings" : "slice_features");
  w.set_codec(h5::parse_codec(o.compression));
  bool declared = false, declared_scores = false;
  if (!o.reports.empty()) {
    const auto tok = text::WordPieceTokenizer::from_file((fs::path(o.model) / "vocab.txt").string());
    model::check_vocab_fits(static_cast<std::int64_t>(tok.vocab_size()), clip->config.text.vocab_size,
                            (fs::path(o.model) / "vocab.txt").string(), o.model);
    const bool sentences = o.truncation == "sentences" || o.compat == cli::kCompatHsenet;
    text::PyRandom rng(42);  // HSENet's retrieval scripts: seed_everything(42), then truncate_text per report
    const io::Table t = io::read_csv(o.reports);
    const std::size_t idc = t.col("VolumeName");
    std::vector<std::size_t> cols;
    for (const auto& c : o.text_columns) cols.push_back(t.col(c));
    cli::Progress progress("embed reports", t.rows.size(), o.common.progress);
    for (std::size_t s = 0; s < t.rows.size(); s += static_cast<std::size_t>(o.batch)) {
      const std::size_t e = std::min(t.rows.size(), s + static_cast<std::size_t>(o.batch));
      auto ids = torch::empty({static_cast<std::int64_t>(e - s), o.max_length}, torch::kLong), mask = torch::empty_like(ids);
      for (std::size_t k = s; k < e; ++k) {
        std::string text;
        for (auto c : cols) {
          if (t.rows[k][c].empty() || t.rows[k][c] == "Not given.") continue;
          if (!text.empty()) text += ' ';
          text += t.rows[k][c];
        }
        text = text::hsenet_clean(text);
        if (sentences) text = text::hsenet_truncate(text, tok, o.max_length, rng);
        train::set_encoding_row(ids, mask, static_cast<std::int64_t>(k - s), tok.encode(text, o.max_length, true, true));
        w.add_id(t.rows[k][idc]);
      }
      if (o.guide.empty()) {
        append_rows(w, "embeddings", clip->encode_text(ids.to(dev), mask.to(dev)), declared, dt);
      } else {
        // The text tower's last layer, unprojected (the paper's T_full and CLS, hidden-sized).
        const auto h = clip->language_encoder->forward(ids.to(dev), mask.to(dev)).last_hidden_state;
        append_rows(w, "slice_features", o.guide == "text-cls" ? h.narrow(1, 0, 1) : h, declared, dt);
      }
      progress.tick(e - s);
    }
    if (!o.guide.empty()) w.set_attr(model::kGuideAttr, o.guide);
    w.set_attr("modality", std::string("text"));
    w.set_attr("truncation", sentences ? std::string("sentences") : std::string("cut"));
    w.set_attr("compat", o.compat);
  } else {
    if (clip->config.stage == 2 && o.slice_features.empty())
      cli::fail_usage("{} is a 2E3 (stage-2) model: give --slice-features", o.model);
    if (!o.patch_png.empty()) {
      if (clip->config.stage != 2) cli::fail_usage("--patch-png: {} is not a 2E3 (stage-2) model", o.model);
      fs::create_directories(o.patch_png);
      io::check_writable((fs::path(o.patch_png) / "x.png").string());
    }
    // The data workers read the next batches of volumes (and their slice features) into host
    // memory while this thread encodes the current one; output rows go out in input order.
    app::VolumeBatches data(o.volumes, clip->config.stage == 2 ? o.slice_features : std::vector<std::string>{},
                            static_cast<std::size_t>(o.batch), o.data_workers, dev);
    if (clip->config.stage == 2) data.check_guide(clip->config.vision.patch_guide, o.model);
    const h5::Reader& r = data.reader();
    cli::Progress progress("embed volumes", r.size(), o.common.progress);
    while (auto b = data.next()) {
      const std::size_t s = b->first, e = s + static_cast<std::size_t>(b->volumes.size(0));
      for (std::size_t k = s; k < e; ++k) w.add_id(r.ids()[k]);
      const auto v = train::to_device(b->volumes, dev), sl = train::to_device(b->slices, dev);
      if (o.tokens) {
        append_rows(w, "embeddings", clip->image_tokens(v, sl), declared, dt);
      } else {
        torch::Tensor scores;
        append_rows(w, "embeddings", clip->encode_image(v, sl, want_scores ? &scores : nullptr), declared, dt);
        if (want_scores && scores.defined()) append_rows(w, "patch_scores", scores, declared_scores, h5::DType::f32);
        if (!o.patch_png.empty() && scores.defined())
          write_score_pngs(o.patch_png, clip->config.vision, b->volumes, scores, r.ids(), s);
      }
      progress.tick(e - s);
    }
    w.set_attr("modality", std::string(o.tokens ? "image_tokens" : "image"));
    w.add_provenance(r.provenance());
  }
  w.set_attr("model", o.model);
  w.set_attr("stage", static_cast<std::int64_t>(clip->config.stage));
  w.add_provenance({h5::provenance_record("hse-embed", cli::current_args())});
  const std::size_t n = w.ids_size();
  w.commit();
  cli::summary("wrote {} {} {} to {}", n,
               !o.guide.empty() ? o.guide : !o.reports.empty() ? "report" : o.tokens ? "token" : "volume",
               o.guide.empty() ? "embeddings" : "guide features",
               o.common.output);
  return 0;
}

}  // namespace hse::embed
