#include <cctype>
#include <cstring>
#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>

#include <CLI/CLI.hpp>

#include "hse/cli/flags.h"
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "hse/app/finetune.h"

#include "hse/cli/compat.h"
#include "hse/vlm/inputs.h"
#include "hse/io/atomic.h"
#include "hse/io/safetensors.h"
#include "hse/model/checkpoint.h"
#include "hse/model/config_check.h"
#include "hse/model/lora.h"
#include "hse/model/vlm.h"
#include "hse/text/bpe.h"
#include "hse/text/wordpiece.h"
#include "hse/train/host.h"
#include "hse/train/loop.h"

namespace fs = std::filesystem;

namespace hse::finetune {

void declare(CLI::App& app, Options& o) {
  cli::add_common(app, o.common,
                  cli::kOutputRequired | cli::kDevice | cli::kThreads | cli::kSeed | cli::kVerbosity | cli::kProgress,
                  "output adapter directory (hse_vlm.json, adapter.safetensors, tokenizer.json[, llm/]; checkpoint-N/ inside)");
  cli::flags::task(app, o.task, "mrg (reports) or vqa (RadGenome location questions)");
  cli::flags::volumes(app, o.volumes, "training volumes (HDF5 kind volumes)")->required();
  cli::flags::slice_features(app, o.slice_features, "2-D slice features (HDF5 kind slice_features)")->required();
  cli::flags::clip(app, o.clip, "stage-2 CLIP directory (both 3-D ViTs, frozen)")->required();
  cli::flags::reports(app, o.reports, "mrg: reports CSV (VolumeName and --report-column)");
  vlm::add_report_column_option(app, o.report_column);
  cli::flags::questions(app, o.questions, "vqa: RadGenome location CSV (VolumeName, Abnormality, Anatomy)");
  cli::flags::prompts(app, o.prompts,
                 "prompt templates (default share/hse/prompts/caption.txt for mrg, location.txt for vqa)");
  cli::flags::llm(app, o.llm, "Phi-3 LLM directory (HF layout) to fine-tune");
  app.add_option("--init-llm", o.init_llm, "a Phi-3 config.json: start a tiny LLM from random init instead of --llm");
  cli::flags::tokenizer(app, o.tokenizer, "tokenizer.json (default: the --llm directory's)");
  cli::flags::tokenizer_mode(app, o.tokenizer_mode,
                             "fast (tokenizer.json as the tokenizers library reads it; default) or slow "
                             "(transformers' slow GPT-2 classes, as HSENet loads Phi-4-mini with use_fast=False); "
                             "recorded in the adapter");
  cli::add_compat_option(app, o.compat,
                         "--tokenizer-mode slow, and hsenet_qformer's self-attention across the batch axis (see the "
                         "man page's table)");
  app.add_option("--train-tokenizer", o.train_tokenizer,
                 "with --init-llm: train a byte-level BPE of N tokens on the training texts");
  app.add_option("--train-llm", o.train_llm, "lora (packers + LoRA, HSENet) or full (packers + the whole LLM, no LoRA)")
      ->default_val("lora")
      ->check(CLI::IsMember({"lora", "full"}));
  app.add_option("--packer", o.packer,
                 "packer kind: v2p (HSENet's V2P-CA), spatial_pool, sequence_pool, qformer (BLIP-2's Q-Former), "
                 "hsenet_qformer (the Q-Former of HSENet's code, Table 2b) or anatomy (hse's content-adaptive partition)")
      ->default_val("v2p")
      ->check(CLI::IsMember({"v2p", "spatial_pool", "sequence_pool", "qformer", "hsenet_qformer", "anatomy"}));
  cli::add_list(app, "--packer-window", o.packer_window, 3, "packer window in patch tokens (default 1,4,4: 128 tokens)",
                "D,H,W");
  cli::add_list(app, "--packer-stride", o.packer_stride, 3, "packer stride (default: the window; smaller overlaps)",
                "D,H,W");
  cli::add_list(app, "--packer-halo", o.packer_halo, 3, "anatomy packer: tokens added to each window side (default 0,1,1)",
                "D,H,W");
  app.add_option("--packer-queries", o.packer_queries,
                 "qformer: number of learned queries (default: the window count; hsenet_qformer: 32)");
  app.add_option("--qformer-layers", o.qformer_layers, "qformer: layers")->default_val(2);
  app.add_option("--encoders", o.encoders,
                 "vision towers feeding the LLM: both (HSENet), 3d (stage-1 ViT only) or 2e3 (2E3 only), Table 3")
      ->default_val("both")
      ->check(CLI::IsMember({"both", "3d", "2e3"}));
  app.add_option("--lora-r", o.lora_r, "LoRA rank")->default_val(16);
  app.add_option("--lora-alpha", o.lora_alpha, "LoRA alpha")->default_val(32.0);
  app.add_option("--lora-dropout", o.lora_dropout, "LoRA dropout")->default_val(0.05);
  cli::flags::max_length(app, o.max_length, "sequence length incl. image tokens (default 800 mrg, 330 vqa)");
  app.add_flag("--raw-reports", o.raw_reports,
               "mrg: train on the reports as they are (by default \" ' ( ) are removed first, as HSENet's code does)");
  app.add_option("--packer-dropout", o.packer_dropout, "dropout in the packers (training only; HSENet 0.1)")
      ->default_val(0.1);
  train::add_loop_options(app, o.loop,
                          {"epochs (default 6 mrg, 4 vqa)", "items per step (default 2 mrg, 5 vqa)",
                           "peak learning rate (default 1e-4 mrg, 5e-5 vqa)", "AdamW weight decay",
                           "disable HSENet's 3-D volume augmentations",
                           "step epoch loss lr grad_norm step_s samples_per_s data_wait_s"});
}

namespace {

struct Example {
  std::size_t volume;
  std::string abnormality, answer;
};

void init_llm_weights(model::Phi3ForCausalLMImpl& llm) {
  torch::NoGradGuard ng;
  for (auto& p : llm.named_parameters(true)) {
    auto t = p.value();
    if (t.dim() == 1)
      t.fill_(1.0);  // RMSNorm weights (Phi-3 has no biases)
    else
      t.normal_(0.0, 0.02);  // HF initializer_range
  }
}

}  // namespace

int run(const Options& oin, cli::Io&) {
  Options o = oin;
  const bool vqa = o.task == "vqa";
  if (o.loop.epochs < 0) o.loop.epochs = vqa ? 4 : 6;
  if (o.loop.batch_size < 0) o.loop.batch_size = vqa ? 5 : 2;
  if (o.loop.lr < 0) o.loop.lr = vqa ? 5e-5 : 1e-4;
  if (o.max_length < 0) o.max_length = vqa ? 330 : 800;
  train::check_loop_options(o.loop);
  if (o.llm.empty() == o.init_llm.empty()) cli::fail_usage("give exactly one of --llm DIR and --init-llm CONFIG.json");
  if (!o.llm.empty() && !fs::is_directory(o.llm))
    cli::fail_input(o.llm, fs::exists(o.llm) ? "--llm is not a directory (an HF model directory: config.json, "
                                               "model.safetensors, tokenizer.json)"
                                             : "no such LLM directory");
  if (o.train_tokenizer > 0 && o.init_llm.empty())
    cli::fail_usage("--train-tokenizer needs --init-llm (a pretrained LLM keeps its tokenizer)");
  if (!o.init_llm.empty() && o.train_tokenizer <= 0 && o.tokenizer.empty())
    cli::fail_usage("--init-llm needs --train-tokenizer N or --tokenizer");
  if (vqa ? o.questions.empty() : o.reports.empty())
    cli::fail_usage(vqa ? "--task vqa needs --questions (RadGenome location CSV)" : "--task mrg needs --reports");
  const auto session = train::start_session(o.common, o.loop);
  const torch::Device dev = session.device;
  auto* dist = session.dist.get();
  const fs::path out(o.common.output);
  // An output folder this run creates is removed again when the run fails before training starts
  // (a bad LLM, tokenizer or packer setting): no half-made adapter is left behind.
  struct RemoveOnThrow {
    fs::path dir;
    bool armed;
    ~RemoveOnThrow() {
      if (armed && std::uncaught_exceptions() > 0) {
        std::error_code ec;
        fs::remove_all(dir, ec);
      }
    }
  } cleanup{out, !fs::exists(out) && dist->is_main()};
  const std::string ck_prev = train::prepare_output(o.common.output, o.loop.resume, *dist);

  // Vision towers and data.
  vlm::VisionSource vision({o.clip, o.volumes, o.slice_features, {}, {}}, dev);
  const auto templates = vlm::read_prompts(
      !o.prompts.empty() ? o.prompts : vlm::share_file(vqa ? "prompts/location.txt" : "prompts/caption.txt"), vqa);
  std::vector<Example> data;
  std::size_t skipped = 0, cleaned = 0;
  if (vqa) {
    for (const auto& r : vlm::read_vqa(o.questions, true)) {
      const auto v = vision.index_of(r.id);
      if (!v) cli::fail_input(o.questions, "volume '{}' is not in {}", r.id, o.volumes.front());
      if (r.abnormality.empty() && r.question.empty()) continue;
      if (r.answer.empty()) {  // HSENet's data loader skips rows without an answer
        ++skipped;
        continue;
      }
      data.push_back({*v, r.abnormality.empty() ? r.question : r.abnormality, r.answer});
    }
    if (skipped) cli::warn("{}: skipped {} rows without an answer, as HSENet does", o.questions, skipped);
  } else {
    const auto reps = vlm::read_reports(o.reports, o.report_column);
    for (std::size_t i = 0; i < vision.ids().size(); ++i) {
      auto it = reps.find(vision.ids()[i]);
      if (it == reps.end()) cli::fail_input(o.volumes.front(), "volume '{}' has no report in {}", vision.ids()[i], o.reports);
      if (it->second.empty()) continue;
      // HSENet's report generation trains on the report with " ' ( ) removed.
      const std::string text = o.raw_reports ? it->second : text::hsenet_clean(it->second);
      cleaned += text != it->second;
      data.push_back({i, {}, text});
    }
    cli::verbose("{}: removed \" ' ( ) from {} of {} reports (--raw-reports keeps them)", o.reports, cleaned,
                 data.size());
  }
  if (data.empty()) cli::fail_input(vqa ? o.questions : o.reports, "no training items");

  // Tokenizer.
  if (o.tokenizer_mode.empty()) o.tokenizer_mode = o.compat == "hsenet" ? "slow" : "fast";
  const text::BpeMode tok_mode = text::parse_bpe_mode(o.tokenizer_mode);
  {
    std::error_code ec;
    fs::create_directories(out, ec);
    if (ec) cli::fail(cli::Exit::runtime, o.common.output, "cannot write output: {}", ec.message());
  }
  const std::string tok_out = (out / "tokenizer.json").string();
  std::unique_ptr<text::BpeTokenizer> tok;
  int added = 0;
  if (!ck_prev.empty() && fs::exists(tok_out)) {
    tok = std::make_unique<text::BpeTokenizer>(text::BpeTokenizer::from_file(tok_out));
  } else if (o.train_tokenizer > 0) {
    std::vector<std::string> texts;
    for (const auto& e : data) texts.push_back(" " + e.answer);
    for (const auto& t : templates)
      for (const auto& e : data) {
        texts.push_back(vlm::fill(t, e.abnormality));
        if (!vqa) break;
      }
    texts.emplace_back(vlm::kMrgEvalPrompt);
    tok = std::make_unique<text::BpeTokenizer>(
        text::BpeTokenizer::train(texts, o.train_tokenizer, "", {"<|endoftext|>", "<im_patch>"}));
    if (dist->is_main()) {  // every rank trains the same tokenizer (deterministic); one writes it
      tok->save(tok_out);
      cli::info("trained a BPE tokenizer of {} tokens: {}", tok->vocab_size(), tok_out);
    }
  } else {
    const std::string p = !o.tokenizer.empty() ? o.tokenizer : (fs::path(o.llm) / "tokenizer.json").string();
    if (!fs::exists(p)) cli::fail_input(p, "no such tokenizer (give --tokenizer tokenizer.json)");
    tok = std::make_unique<text::BpeTokenizer>(text::BpeTokenizer::from_file(p));
    if (!tok->token_to_id("<im_patch>")) added = tok->add_special_tokens({"<im_patch>", "<bx_start>", "<bx_end>", "[SEG]"});
    if (dist->is_main()) tok->save(tok_out);
  }
  // tokenizer.json keeps the file's own pipeline; the slow mode is applied when reading it
  // (here and in hse-generate, from the adapter's tokenizer_mode).
  if (tok_mode != text::BpeMode::fast) tok = std::make_unique<text::BpeTokenizer>(tok->with_mode(tok_mode));
  const auto eot = tok->token_to_id("<|endoftext|>");
  const auto imp = tok->token_to_id("<im_patch>");
  if (!eot || !imp) cli::fail_input(tok_out, "the tokenizer lacks <|endoftext|> or <im_patch>");

  // LLM.
  const bool save_llm = !o.init_llm.empty() || o.train_llm == "full";
  model::Phi3ForCausalLM llm{nullptr};
  if (!o.init_llm.empty()) {
    auto c = model::Phi3Config::from_file(cli::config_file(o.init_llm));
    c.vocab_size = tok->vocab_size();
    c.bos_token_id = *eot;
    c.eos_token_ids = {*eot};
    c.pad_token_id = *eot;
    c.validate(o.init_llm);
    llm = model::Phi3ForCausalLM(c);
    init_llm_weights(*llm);
    llm->name_or_path = "llm";
  } else {
    llm = model::load_phi3(o.llm);
    llm->name_or_path = fs::absolute(o.llm).lexically_normal().string();
    if (added == 0) model::check_vocab_fits(tok->vocab_size(), llm->config.vocab_size, tok_out, o.llm);
  }
  model::VlmConfig cfg;
  const auto* cc = vision.clip_config();
  const auto grid = cc->vision.grid();
  model::PackerConfig pk = model::PackerConfig::from_json({{"kind", o.packer}}, "--packer");
  pk.dropout = o.packer_dropout;
  pk.in_dim = cc->vision.hidden;
  pk.out_dim = llm->config.hidden_size;
  if (!o.packer_window.empty()) {
    for (int a = 0; a < 3; ++a) pk.window[a] = o.packer_window[a];
  } else {
    for (int a = 0; a < 3; ++a)
      if (grid[a] % pk.window[a] != 0) pk.window[a] = 1;  // small demo grids
  }
  for (int a = 0; a < 3 && !o.packer_stride.empty(); ++a) pk.stride[a] = o.packer_stride[a];
  for (int a = 0; a < 3 && !o.packer_halo.empty(); ++a) pk.halo[a] = o.packer_halo[a];
  pk.num_queries = o.packer_queries;
  if (o.compat == "hsenet") pk.query_self_attention = "batch";  // HSENet's Q-Former attends across the batch axis
  pk.qformer_layers = o.qformer_layers;
  pk.grid = grid;
  try {
    pk.validate("--packer-window/--packer-stride/--packer-halo");
  } catch (const cli::Error& e) {
    cli::fail_usage("{}", e.what());
  }
  cfg.packer = pk;
  cfg.packer2 = pk;
  cfg.dual_encoder = o.encoders == "both";
  if (!cfg.dual_encoder) cfg.tower = o.encoders;
  cfg.packer.in_dim = (cfg.dual_encoder || cfg.tower == "3d" ? vision.features({0}).first
                                                              : vision.features({0}).second).size(2);
  cfg.use_lora = o.train_llm == "lora";
  cfg.lora.r = o.lora_r;
  cfg.lora.lora_alpha = o.lora_alpha;
  cfg.lora.lora_dropout = o.lora_dropout;
  cfg.lora.base_model_name_or_path = llm->name_or_path;
  cfg.llm = llm->name_or_path;
  cfg.inputs = vlm::record_inputs(o.clip, o.volumes, o.slice_features);
  cfg.tokenizer_mode = o.tokenizer_mode;
  cfg.compat = o.compat;
  if (added > 0) {
    cfg.vocab_size = tok->vocab_size();
    cfg.num_new_tokens = added;
  }
  cfg.tokens.bos = cfg.tokens.eos = cfg.tokens.pad = *eot;
  cfg.tokens.im_patch = *imp;
  model::HsenetVlm vlm(cfg, llm);
  vlm->to(dev);
  std::vector<std::pair<std::string, torch::Tensor>> trainable = vlm->named_trainable_parameters();
  if (o.train_llm == "full")
    for (auto& p : vlm->llm->named_parameters(true)) {
      p.value().set_requires_grad(true);
      trainable.emplace_back("llm." + p.key(), p.value());
    }
  const auto toks = vlm->tokens();
  const std::int64_t n_img = vlm->image_tokens();
  if (1 + n_img >= o.max_length)
    cli::fail_usage("--max-length {} leaves no room after {} image tokens", o.max_length, n_img);
  if (o.max_length > vlm->llm->config.max_position_embeddings)
    cli::warn("--max-length {} exceeds the LLM's max_position_embeddings {}", o.max_length,
              vlm->llm->config.max_position_embeddings);

  // The loop's task: the causal-LM loss of the answer tokens after the packed image tokens.
  train::LoopTask task;
  task.name = "finetune";
  task.banner = o.task;
  task.banner_details = fmt::format(", {} image tokens, {} trainable tensors", n_img, trainable.size());
  task.data_file = o.volumes.front();
  task.items = data.size();
  task.trainable = trainable;
  // The data side, on the data workers: the volumes and slice features read (and augmented) into
  // host memory, prompts and answers tokenized into training examples. The forward pass runs the
  // frozen towers on them.
  struct Loaded {
    vlm::VisionSource::HostInputs inputs;
    model::VlmBatch batch;
  };
  task.load = [&](const std::vector<std::size_t>& items, long step, long epoch) {
    Loaded l;
    std::vector<model::VlmExample> ex;
    std::vector<std::size_t> volumes;
    for (std::size_t item : items) {
      const auto& e = data[item];
      std::mt19937_64 rng(o.common.seed * 1000003ull + static_cast<std::uint64_t>(epoch) * 7919ull + item);
      const auto& t = templates[rng() % templates.size()];
      const auto q = tok->encode(vqa ? vlm::fill(t, e.abnormality) : t);
      const auto ans = tok->encode(" " + e.answer);
      ex.push_back(model::vlm_train_example(toks, n_img, q, ans, o.max_length));
      volumes.push_back(e.volume);
    }
    l.inputs = vision.read(volumes, !o.loop.no_augment, o.common.seed * 7919ull + static_cast<std::uint64_t>(step));
    l.batch = model::vlm_collate(ex);
    return std::any(std::move(l));
  };
  task.forward = [&](std::any& loaded, long, long, std::vector<double>&) {
    const auto& l = std::any_cast<const Loaded&>(loaded);
    const auto [t1, t2] = vision.encode(l.inputs);
    const auto& b = l.batch;
    return vlm->loss(train::to_device(b.input_ids, dev), train::to_device(b.attention_mask, dev),
                     train::to_device(b.labels, dev), t1, t2)
        .to(torch::kFloat32);
  };
  // `dir` is written now and lives at `final_dir` (a checkpoint is renamed there): every path
  // the adapter records is relative to `final_dir`, so the folder can move with what it names.
  const std::string inputs_abs = vlm->config.inputs;
  task.write = [&](const std::string& dir, const std::string& final_dir, bool checkpoint) {
    fs::create_directories(dir);
    vlm->config.llm = save_llm ? "llm" : vlm::relative_to(llm->name_or_path, final_dir);
    vlm->config.inputs = vlm::relocate_inputs(inputs_abs, dir, final_dir);
    model::save_vlm_adapter(*vlm, dir);
    if (save_llm) model::save_phi3(vlm->llm, (fs::path(dir) / "llm").string());
    // The final output's tokenizer.json is already there.
    if (checkpoint) fs::copy_file(tok_out, fs::path(dir) / "tokenizer.json", fs::copy_options::overwrite_existing);
  };
  task.restore = [&](const std::string& dir) {
    if (save_llm) {
      io::SafeTensorsSet w((fs::path(dir) / "llm" / "model.safetensors").string());
      model::load_state(*vlm->llm, w, "", cfg.use_lora);
    }
    io::SafeTensorsSet a((fs::path(dir) / model::kVlmWeightsFile).string());
    model::load_vlm_state(*vlm, a);
  };
  task.started = [&] {
    cleanup.armed = false;  // from here on the folder holds checkpoints worth keeping
    vlm->train();
    vision.set_tower_dropout(o.loop.recipe.frozen_train_mode());
  };
  const auto r = train::run_loop(o.loop, task, *dist, dev, o.common.output, ck_prev, o.common.seed, o.common.progress);
  if (!r.stopped && dist->is_main()) cli::summary("wrote {} ({}, {} steps)", o.common.output, o.task, r.steps);
  return 0;
}

}  // namespace hse::finetune
