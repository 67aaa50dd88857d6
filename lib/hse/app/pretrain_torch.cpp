#include <cctype>
#include <cmath>
#include <cstring>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>

#include <CLI/CLI.hpp>

#include "hse/cli/flags.h"
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "hse/eval/retrieval.h"
#include "hse/io/h5.h"
#include "hse/model/checkpoint.h"
#include "hse/model/clip.h"
#include "hse/app/pretrain.h"
#include "hse/model/config_check.h"
#include "hse/train/clip_data.h"
#include "hse/train/host.h"
#include "hse/train/loop.h"
#include "hse/train/optim.h"
#include "hse/io/atomic.h"
#include "hse/vlm/inputs.h"

namespace fs = std::filesystem;

namespace hse::pretrain {

void declare(CLI::App& app, Options& o) {
  cli::add_common(app, o.common, cli::kOutputRequired | cli::kDevice | cli::kThreads | cli::kSeed | cli::kVerbosity |
                                     cli::kProgress,
                  "output checkpoint directory (config.json, model.safetensors, vocab.txt; checkpoint-N/ inside)");
  app.add_option("--stage", o.stage, "1: 3-D ViT + BERT; 2: the 2E3 encoder with L_SA against a frozen stage 1")
      ->default_val(1)
      ->check(CLI::IsMember({1, 2}));
  cli::flags::volumes(app, o.volumes, "training volumes (HDF5 kind volumes; shards in order)")->required();
  cli::flags::reports(app, o.reports, "CT-RATE reports CSV (VolumeName + text columns)")->required();
  cli::flags::text_columns(app, o.text_columns);
  cli::flags::slice_features(app, o.slice_features, "stage 2: slice features (HDF5 kind slice_features)");
  app.add_option("--vision-config", o.vision_config, "3-D ViT config JSON (share/hse/configs/vit3d-*.json)");
  app.add_option("--text-model", o.text_model,
                 "BERT: an HF model directory (its weights initialise the text tower) or a config.json (random init)");
  app.add_option("--vocab", o.vocab, "WordPiece vocab.txt (default: the --text-model directory's)");
  app.add_option("--init", o.init, "CLIP checkpoint to initialise from (matching keys; stage 2: M3D-CLIP as published)");
  app.add_option("--stage1", o.stage1, "stage 2: the frozen stage-1 CLIP checkpoint (required)");
  app.add_option("--patch-guide", o.patch_guide,
                 "stage 2: what the 2E3 patch scoring attends to (the paper's Table 1b): slices (the 2-D slice "
                 "features, HSENet), text-cls (the report's CLS feature) or full-text (the report's token features); "
                 "--slice-features then holds those guides, as hse-embed --reports --guide writes them")
      ->default_val("slices")
      ->check(CLI::IsMember({"slices", "text-cls", "full-text"}));
  cli::flags::max_length(app, o.max_length, "text tokens (HSENet: 512)")->default_val(512);
  app.add_option("--sa-weight-schedule", o.sa_schedule,
                 "L_SA weight: linear (published code: w0 (1 - t/steps), then 0) or const (paper)")
      ->default_val("linear")
      ->check(CLI::IsMember({"linear", "const"}));
  app.add_option("--sa-weight", o.sa_weight, "L_SA weight w0")->default_val(0.1);
  app.add_option("--sa-steps", o.sa_steps, "steps over which the linear L_SA weight falls to 0")->default_val(5000);
  app.add_option("--logit-scale", o.logit_scale, "logit_scale form: raw (published multiplier) or exp (CLIP)")
      ->default_val("raw")
      ->check(CLI::IsMember({"raw", "exp"}));
  train::add_loop_options(
      app, o.loop,
      {"epochs", "volumes per process per step", "peak learning rate",
       "AdamW weight decay (not on biases and norms)", "disable HSENet's training augmentations",
       "step epoch loss clip_loss sa_loss sa_weight lr grad_norm logit_scale step_s samples_per_s data_wait_s"});
  app.add_flag("--gradient-checkpointing", o.gradient_checkpointing,
               "recompute each ViT block and BERT layer in backward instead of keeping its activations (less "
               "memory, one more forward per step)");
  cli::flags::truncation(app, o.truncation,
                 "reports longer than --max-length: sentences (HSENet's truncate_text: the first sentence and random "
                 "others within the token budget, seeded) or cut (the first tokens)")
      ->default_val("sentences");
  app.add_option("--val-volumes", o.val_volumes, "validation volumes for periodic R@K");
  app.add_option("--val-reports", o.val_reports, "validation reports CSV");
  app.add_option("--val-slice-features", o.val_slice_features, "stage 2: validation slice features");
  app.add_option("--eval-steps", o.eval_steps, "validate every N steps (0: only at the end when --val-volumes)")
      ->default_val(0);
  app.add_option("--eval-items", o.eval_items, "validation items used (HSENet: the first 512)")->default_val(512);
  app.add_flag("--allow-partial", o.allow_partial, "load checkpoints whose keys do not all match");
}

namespace {

std::string vocab_for(const Options& o) {
  if (!o.vocab.empty()) return cli::vocab_file(o.vocab);
  if (!o.text_model.empty() && fs::is_directory(o.text_model)) return (fs::path(o.text_model) / "vocab.txt").string();
  if (!o.init.empty()) return (fs::path(o.init) / "vocab.txt").string();
  cli::fail_usage("give --vocab (or a --text-model directory holding vocab.txt)");
}

// R@K of report-to-volume and volume-to-report on a validation subset.
std::vector<std::pair<std::string, double>> validate(model::Clip& m, const train::ClipData& val, int items, int batch,
                                                     const torch::Device& dev) {
  torch::NoGradGuard ng;
  m->eval();
  const std::size_t n = std::min<std::size_t>(val.size(), static_cast<std::size_t>(items));
  std::vector<torch::Tensor> I, T;
  for (std::size_t s = 0; s < n; s += static_cast<std::size_t>(batch)) {
    std::vector<std::size_t> idx;
    for (std::size_t k = s; k < std::min(n, s + static_cast<std::size_t>(batch)); ++k) idx.push_back(k);
    auto b = val.batch(idx, false, 0, 0);
    I.push_back(m->encode_image(b.volumes.to(dev), b.slices.defined() ? b.slices.to(dev) : b.slices).cpu());
    T.push_back(m->encode_text(b.input_ids.to(dev), b.attention_mask.to(dev)).cpu());
  }
  const auto img = torch::cat(I), txt = torch::cat(T);
  const auto sim = torch::matmul(txt, img.t());  // [reports, volumes]
  std::vector<std::pair<std::string, double>> out;
  for (int dir = 0; dir < 2; ++dir) {
    const auto s = dir == 0 ? sim : sim.t();
    const auto order = std::get<1>(s.sort(1, true));
    std::vector<std::vector<std::string>> ranked(n);
    std::vector<std::string> pos(n);
    for (std::size_t q = 0; q < n; ++q) {
      pos[q] = val.ids()[q];
      for (std::int64_t k = 0; k < order.size(1); ++k)
        ranked[q].push_back(val.ids()[static_cast<std::size_t>(order[static_cast<std::int64_t>(q)][k].item<std::int64_t>())]);
    }
    for (int K : {1, 5, 10})
      out.emplace_back(fmt::format("{}_recall@{}", dir == 0 ? "r2v" : "v2r", K), eval::recall_at_k(ranked, pos, K));
  }
  m->train();
  return out;
}

// " r2v_recall@5 0.433 (chance 0.043) ...": recall@K next to its chance K/N over N items.
std::string validation_line(const std::vector<std::pair<std::string, double>>& metrics, std::size_t n) {
  std::string line = fmt::format(" ({} pairs)", n);
  for (const auto& [k, v] : metrics) {
    const int K = std::stoi(k.substr(k.find('@') + 1));
    line += fmt::format(" {} {:.3f} (chance {:.3f})", k, v, std::min(1.0, static_cast<double>(K) / static_cast<double>(n)));
  }
  return line;
}

}  // namespace

int run(const Options& o, cli::Io&) {
  if (o.stage == 2 && (o.stage1.empty() || o.slice_features.empty()))
    cli::fail_usage("--stage 2 needs --stage1 (the frozen stage-1 CLIP) and --slice-features");
  train::check_loop_options(o.loop);
  if (o.stage != 2 && o.patch_guide != "slices") cli::fail_usage("--patch-guide goes with --stage 2");
  // Stage 2: the guide features (slice or text) must be what --patch-guide says; text guides set
  // the scoring's key width (slice_dim) to theirs.
  std::int64_t guide_dim = 0;
  if (o.stage == 2) {
    for (const auto* files : {&o.slice_features, &o.val_slice_features}) {
      if (files->empty()) continue;
      const h5::Reader g(*files, "slice_features");
      model::check_patch_guide(g.attr_string(model::kGuideAttr), o.patch_guide, files->front(),
                               "--patch-guide " + o.patch_guide);
      const auto shape = g.item_shape("slice_features");
      if (shape.size() != 2) cli::fail_input(files->front(), "slice_features items are not [S,F]");
      if (guide_dim && static_cast<std::int64_t>(shape[1]) != guide_dim)
        cli::fail_input(files->front(), "guide features of width {}, the training ones {}", shape[1], guide_dim);
      guide_dim = static_cast<std::int64_t>(shape[1]);
    }
  }
  const auto session = train::start_session(o.common, o.loop);
  const torch::Device dev = session.device;
  auto& dist = *session.dist;

  // Model.
  model::ClipConfig cfg;
  if (!o.init.empty() && o.vision_config.empty()) {
    cfg = model::ClipConfig::from_file(o.init);
  } else {
    if (o.vision_config.empty()) cli::fail_usage("give --vision-config (or --init)");
    cfg.vision = model::Vit3dConfig::from_file(cli::config_file(o.vision_config));
    if (o.text_model.empty()) cli::fail_usage("give --text-model (an HF BERT directory or config.json)");
    cfg.text = model::BertConfig::from_file(fs::is_directory(o.text_model)
                                                ? (fs::path(o.text_model) / "config.json").string()
                                                : cli::config_file(o.text_model));
  }
  cfg.stage = o.stage;
  if (o.stage == 2) {
    cfg.vision.patch_guide = o.patch_guide;
    if (o.patch_guide != "slices") cfg.vision.slice_dim = guide_dim;
  }
  cfg.logit_scale_form = model::parse_logit_scale_form(o.logit_scale);
  model::Clip m(cfg);
  if (!o.text_model.empty() && fs::is_directory(o.text_model) && o.init.empty()) {
    auto bert = model::load_bert(o.text_model, "", o.allow_partial);
    torch::NoGradGuard ng;
    auto dst = m->language_encoder->named_parameters(true);
    for (const auto& p : bert->named_parameters(true))
      if (auto* t = dst.find(p.key())) t->copy_(p.value());
    cli::info("text tower initialised from {}", o.text_model);
  }
  if (!o.init.empty()) {
    const auto r = model::init_clip_from(m, o.init);
    cli::info("initialised from {}: {} tensors loaded, {}", o.init, r.loaded, r.summary());
  }
  if (o.stage == 2) {
    io::SafeTensorsSet s1((fs::path(o.stage1) / "model.safetensors").string());
    model::load_state(*m->stage1(), s1, "", o.allow_partial, {"language_encoder.embeddings.position_ids"});
    m->stage1()->eval();
    cli::info("frozen stage 1 loaded from {}", o.stage1);
  }
  m->to(dev);
  // Train mode; the frozen stage 1 keeps its dropout active (HF Trainer's model.train(), as HSENet)
  // unless --frozen-dropout off.
  auto train_modes = [&] {
    m->train();
    if (m->stage1()) m->stage1()->train(o.loop.recipe.frozen_train_mode());
  };
  train_modes();

  // Data.
  const std::string vocab = vocab_for(o);
  auto tok = std::make_shared<text::WordPieceTokenizer>(text::WordPieceTokenizer::from_file(vocab));
  model::check_vocab_fits(static_cast<std::int64_t>(tok->vocab_size()), cfg.text.vocab_size, vocab,
                          o.text_model.empty() ? std::string("the text model") : o.text_model);
  train::ClipDataOptions dopt;
  dopt.volumes = o.volumes;
  dopt.reports = o.reports;
  dopt.text_columns = o.text_columns;
  dopt.slice_features = o.slice_features;
  dopt.max_length = o.max_length;
  dopt.sentence_truncation = o.truncation == "sentences";
  const train::ClipData data(dopt, tok);
  std::unique_ptr<train::ClipData> val;
  if (!o.val_volumes.empty()) {
    auto vopt = dopt;
    vopt.volumes = o.val_volumes;
    vopt.reports = o.val_reports.empty() ? o.reports : o.val_reports;
    vopt.slice_features = o.val_slice_features;
    vopt.sentence_truncation = false;
    val = std::make_unique<train::ClipData>(vopt, tok);
  }
  auto validation = [&] {
    auto line = validation_line(validate(m, *val, o.eval_items, o.loop.batch_size, dev),
                                std::min<std::size_t>(val->size(), static_cast<std::size_t>(o.eval_items)));
    train_modes();
    return line;
  };
  if (o.gradient_checkpointing) {
    m->vision_encoder->gradient_checkpointing = true;
    m->language_encoder->gradient_checkpointing = true;
  }
  const std::string resume_from = train::prepare_output(o.common.output, o.loop.resume, dist);

  // The loop's task: InfoNCE over the gathered features (+ w(t) L_SA against the frozen stage 1).
  train::LoopTask task;
  task.name = "pretrain";
  task.banner = fmt::format("stage {}", o.stage);
  task.items_noun = "pairs";
  task.data_file = o.volumes.front();
  task.items = data.size();
  task.trainable = m->trainable();
  for (const auto& [name, p] : task.trainable)
    if (train::no_weight_decay(name)) task.no_decay.push_back(name);
  const auto sa_sched = model::parse_sa_schedule(o.sa_schedule);
  double w_sa = 0;
  task.begin_step = [&](long step) {
    w_sa = o.stage == 2 ? model::sa_weight(step, sa_sched, o.sa_weight, o.sa_steps) : 0.0;
  };
  task.loss_parts = {"clip_loss", "sa_loss"};
  task.schedule_columns = {"sa_weight"};
  task.schedule_values = [&] { return std::vector<double>{w_sa}; };
  task.state_columns = {"logit_scale"};
  task.state_values = [&] { return std::vector<double>{m->logit_scale.item<double>()}; };
  task.load = [&](const std::vector<std::size_t>& items, long, long epoch) {
    return std::any(data.batch(items, !o.loop.no_augment, o.common.seed, epoch, dev));
  };
  task.forward = [&](std::any& batch, long, long, std::vector<double>& parts) {
    const auto& b = std::any_cast<const train::ClipBatch&>(batch);
    // Asynchronous copies from the workers' pinned buffers on CUDA.
    const auto vols = train::to_device(b.volumes, dev), sl = train::to_device(b.slices, dev);
    const auto ids = train::to_device(b.input_ids, dev), mask = train::to_device(b.attention_mask, dev);
    // Features in float32 for the gather and the logits (autocast's policy for the loss).
    const auto img = dist.all_gather(m->encode_image(vols, sl).to(torch::kFloat32));
    const auto txt = dist.all_gather(m->encode_text(ids, mask).to(torch::kFloat32));
    const auto logits = model::clip_logits(img, txt, m->logit_scale, cfg.logit_scale_form);
    const auto cl = model::clip_loss(logits);
    torch::Tensor loss = cl;
    if (o.stage == 2) {
      torch::Tensor i1, t1;
      {
        torch::NoGradGuard ng;
        i1 = dist.all_gather(m->stage1()->encode_image(vols).to(torch::kFloat32));
        t1 = dist.all_gather(m->stage1()->encode_text(ids, mask).to(torch::kFloat32));
      }
      // The frozen stage-1 logits use the stage-2 logit_scale (published code).
      const auto l1 = model::clip_logits(i1, t1, m->logit_scale, cfg.logit_scale_form);
      const auto sa = model::sa_loss(l1, logits);
      parts[1] = sa.item<double>();
      loss = cl + w_sa * sa;
    }
    parts[0] = cl.item<double>();
    return loss;
  };
  // How the training inputs were made (vlm::kInputsRecord): hse-classify replays it on CT files.
  // The volumes' recipe and, for a slice-guided 2E3 model, the slices' recipe and 2-D encoder.
  const std::string inputs_record = vlm::record_inputs(
      {}, o.volumes, o.stage == 2 && o.patch_guide == "slices" ? o.slice_features : std::vector<std::string>{});
  task.write = [&](const std::string& dir, const std::string& final_dir, bool) {
    model::save_clip(m, dir, vocab);
    io::AtomicFile f((fs::path(dir) / vlm::kInputsRecord).string());
    f.stream() << nlohmann::json::parse(vlm::relocate_inputs(inputs_record, dir, final_dir)).dump(2) << '\n';
    f.commit();
  };
  task.restore = [&](const std::string& dir) {
    io::SafeTensorsSet w((fs::path(dir) / "model.safetensors").string());
    model::load_state(*m, w, "", false, {"language_encoder.embeddings.position_ids"});
  };
  task.after_step = [&](long step) {
    if (val && o.eval_steps > 0 && step % o.eval_steps == 0 && dist.is_main())
      cli::info("step {} validation:{}", step, validation());
  };
  task.finished = [&] {
    if (val && dist.is_main()) cli::info("final validation:{}", validation());
  };
  const auto r = train::run_loop(o.loop, task, dist, dev, o.common.output, resume_from, o.common.seed, o.common.progress);
  if (!r.stopped && dist.is_main()) cli::summary("wrote {} (stage {}, {} steps)", o.common.output, o.stage, r.steps);
  return 0;
}

}  // namespace hse::pretrain
