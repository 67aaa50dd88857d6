#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <set>

#include <CLI/CLI.hpp>

#include "hse/cli/flags.h"
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "hse/model/device.h"
#include "hse/app/generate.h"
#include "hse/eval/vqa.h"
#include "hse/vlm/inputs.h"
#include "hse/io/atomic.h"
#include "hse/decode/decode.h"
#include "hse/model/vlm.h"
#include "hse/text/bpe.h"

namespace fs = std::filesystem;

namespace hse::generate {

void declare(CLI::App& app, Options& o) {
  cli::add_common(app, o.common,
                  cli::kDevice | cli::kThreads | cli::kSeed | cli::kShard | cli::kVerbosity | cli::kProgress);
  cli::flags::model(app, o.model, "hse VLM adapter directory (hse-finetune output: hse_vlm.json + adapter.safetensors)");
  app.add_option("--adapter", o.adapter, "the same as --model (with --llm)");
  cli::flags::llm(app, o.llm, "Phi-3 LLM directory (default: the adapter's, relative paths from the adapter directory)");
  cli::flags::clip(app, o.clip, "stage-2 CLIP directory (both 3-D ViTs) for --volumes");
  cli::flags::volumes(app, o.volumes, "volumes (HDF5 kind volumes)");
  cli::flags::slice_features(app, o.slice_features, "2-D slice features (HDF5 kind slice_features)");
  image::add_ct_input_options(app, o.ct);
  image::add_batch_options(app, o.batch_options);
  app.add_option("--slice-encoder", o.slice_encoder,
                 "CT inputs: the 2-D slice encoder directory (default: the one the adapter recorded)");
  app.add_option("--slice-encoder-config", o.slice_encoder_config,
                 "CT inputs: the slice encoder's vit2d config JSON (default: the adapter's copy)");
  app.add_option("--tokens1", o.tokens1, "cached stage-1 ViT token features (hse-embed --tokens) instead of --clip/--volumes");
  app.add_option("--tokens2", o.tokens2, "cached stage-2 (2E3) token features (hse-embed --tokens)");
  cli::flags::task(app, o.task, "mrg (report generation) or vqa (location questions)");
  cli::flags::questions(app, o.questions,
                 "vqa: CSV (VolumeName, question or abnormality, answer or anatomy as reference; implies --task "
                 "vqa); - or absent with --task vqa: stdin");
  app.add_option("--question", o.question, "vqa: ask this question about every volume (implies --task vqa)");
  app.add_option("--abnormality", o.abnormality,
                 "vqa: ask where this abnormality is in every volume, with the first location template (implies "
                 "--task vqa)");
  cli::flags::reports(app, o.reports, "mrg: reports CSV whose --report-column becomes the reference");
  vlm::add_report_column_option(app, o.report_column);
  cli::flags::prompts(app, o.prompts,
                 "prompt templates: vqa, location templates with {abnormality} (default "
                 "share/hse/prompts/location.txt); mrg, report prompts (default: HSENet's one evaluation prompt)");
  app.add_option("--prompt-choice", o.prompt_choice,
                 "which template each item gets: random (seeded by --seed and the item's position, as HSENet draws "
                 "one per item) or first")
      ->default_val("random")
      ->check(CLI::IsMember({"random", "first"}))
      ->type_name("random|first");
  cli::flags::tokenizer(app, o.tokenizer, "tokenizer.json (default: the adapter's, else the LLM's)");
  cli::flags::tokenizer_mode(app, o.tokenizer_mode,
                 "fast or slow (transformers' slow GPT-2 classes, HSENet's use_fast=False); default: as the adapter "
                 "was trained (hse_vlm.json tokenizer_mode)");
  app.add_option("--max-new-tokens", o.max_new_tokens, "tokens to generate (default 512 mrg, 74 vqa)");
  app.add_option("--num-beams", o.num_beams, "beam search width (1: greedy)")->default_val(1);
  app.add_option("--length-penalty", o.length_penalty,
                 "beam search: hypotheses scored sum(logprobs) / length^this (HF length_penalty; < 0 favours "
                 "shorter reports)")
      ->default_val(1.0);
  app.add_option("--early-stopping", o.early_stopping,
                 "beam search stop rule (HF early_stopping): false (stop when no beam can improve), true (when "
                 "num-beams hypotheses are finished), never")
      ->default_val("false")
      ->check(CLI::IsMember({"false", "true", "never"}));
  app.add_option("--guidance-scale", o.guidance_scale,
                 "classifier-free guidance against the image-free prompt (HF guidance_scale): > 1 weights what "
                 "the image adds to each token's log-probability by this factor; 1 disables; greedy/sampling only")
      ->default_val(1.0);
  app.add_flag("--do-sample", o.do_sample, "sample instead of greedy decoding");
  app.add_option("--temperature", o.temperature, "sampling temperature")->default_val(1.0);
  app.add_option("--top-p", o.top_p, "sampling nucleus")->default_val(1.0);
  app.add_option("--top-k", o.top_k, "sampling top-k (0: off)")->default_val(50);
  app.add_option("--repetition-penalty", o.repetition_penalty, "repetition penalty (1: off)")->default_val(1.0);
  cli::flags::batch_size(app, o.batch, "items generated together", true)->default_val(1);
  app.add_option("--precision", o.precision, "LLM compute precision: fp32, bf16 or fp16")->default_val("fp32");
  // The older name of --precision, kept for scripts (hidden): --dtype names the stored type elsewhere.
  app.add_option_function<std::string>(
         "--dtype",
         [&o](const std::string& v) {
           cli::warn("--dtype is the older name of --precision (--dtype is the stored type in the other tools)");
           o.precision = v;
         },
         "")
      ->group("");
  app.add_flag("--int8", o.int8, "int8 weight-only LLM (LoRA merged first)");
}

namespace {

struct Item {
  std::string id, prompt, reference;
  bool has_reference = false;
  std::size_t volume = 0;
};

std::string strip(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

}  // namespace

int run(const Options& o, cli::Io& io) {
  torch::set_num_threads(cli::resolve_threads(o.common.threads));
  const auto dev = model::torch_device(o.common.device);
  const auto dtype = vlm::parse_precision(o.precision);
  if (o.batch < 1 || o.num_beams < 1) cli::fail_usage("--batch-size and --num-beams must be positive");
  std::string adapter = !o.model.empty() ? o.model : o.adapter;
  if (adapter.empty()) cli::fail_usage("give --model ADAPTER_DIR (or --llm DIR --adapter DIR)");
  const bool one_question = !o.question.empty() || !o.abnormality.empty();
  const bool vqa = o.task == "vqa" || one_question || !o.questions.empty();
  if (!o.question.empty() && !o.abnormality.empty()) cli::fail_usage("give --question or --abnormality, not both");
  if (one_question && !o.questions.empty()) cli::fail_usage("--question/--abnormality replace --questions");

  // Model.
  model::VlmLoadOptions lo;
  lo.dtype = dtype;
  lo.device = dev;
  lo.int8 = o.int8;
  lo.merge_lora = o.int8;
  lo.llm = o.llm;
  auto vlm = model::load_vlm(adapter, lo);
  const std::string llm_dir = vlm->config.llm;  // as load_vlm resolved it

  // Tokenizer.
  std::string tok_path = o.tokenizer;
  if (tok_path.empty()) {
    if (fs::is_directory(adapter) && fs::exists(fs::path(adapter) / "tokenizer.json"))
      tok_path = (fs::path(adapter) / "tokenizer.json").string();
    else
      tok_path = (fs::path(llm_dir) / "tokenizer.json").string();
  }
  if (!fs::exists(tok_path)) cli::fail_input(tok_path, "no such tokenizer (give --tokenizer tokenizer.json)");
  const std::string tok_mode = o.tokenizer_mode.empty() ? vlm->config.tokenizer_mode : o.tokenizer_mode;
  if (!o.tokenizer_mode.empty() && o.tokenizer_mode != vlm->config.tokenizer_mode)
    cli::warn("--tokenizer-mode {}: the adapter was trained with the {} mode", o.tokenizer_mode,
              vlm->config.tokenizer_mode);
  const auto tok = text::BpeTokenizer::from_file(tok_path, text::parse_bpe_mode(tok_mode));
  cli::verbose("tokenizer {} ({} mode)", tok_path, tok_mode);
  if (tok.vocab_size() > vlm->llm->config.vocab_size)
    cli::fail_input(tok_path, "tokenizer has {} tokens, the LLM's vocabulary {}", tok.vocab_size(),
                    vlm->llm->config.vocab_size);

  // Vision: HDF5 inputs, cached tokens, or CT files made into volumes (and slice features)
  // in-process with the recipes the adapter recorded at training time.
  vlm::VisionOptions vo{o.clip, o.volumes, o.slice_features, o.tokens1, o.tokens2};
  const bool from_ct = !o.ct.inputs.empty() || !o.ct.root.empty();
  const std::string& inputs_record = vlm->config.inputs;  // hse_vlm.json's, as load_vlm read it
  const std::string adapter_dir = fs::is_directory(adapter) ? adapter : fs::path(adapter).parent_path().string();
  if (vo.clip.empty() && vo.tokens1.empty() && !inputs_record.empty()) {
    const auto rec = nlohmann::json::parse(inputs_record);
    if (rec.contains("clip") && rec["clip"].is_string())
      vo.clip = vlm::resolve_recorded(adapter_dir, rec["clip"].get<std::string>());
  }
  const bool stdin_list = std::find(o.ct.inputs.begin(), o.ct.inputs.end(), "-") != o.ct.inputs.end();
  if (stdin_list && vqa && o.question.empty() && o.abnormality.empty() && (o.questions.empty() || o.questions == "-"))
    cli::fail_usage("the CT list and the questions cannot both come from stdin: give --questions FILE or --question");
  std::vector<std::pair<std::string, std::string>> failed;  // input, reason (--keep-going)
  std::set<std::string> failed_ids, all_ids;                 // volumes that failed; every input volume
  TempDir tmp("hse-generate");
  if (from_ct) {
    if (!o.volumes.empty() || !o.tokens1.empty())
      cli::fail_usage("CT inputs replace --volumes/--tokens1: give one or the other");
    // The list is read once (stdin too), named once over all shards, then sharded.
    image::CtInputOptions ct = named_ct_inputs(o.ct, io.in);
    all_ids.insert(ct.ids.begin(), ct.ids.end());
    ct.inputs = o.common.shard.take(ct.inputs);
    ct.ids = o.common.shard.take(ct.ids);
    if (ct.inputs.empty()) cli::fail_usage("shard {}/{} has no inputs", o.common.shard.index, o.common.shard.count);
    tmp.make();
    CtPrepare cp;
    cp.adapter_dir = adapter_dir;
    cp.slice_encoder = o.slice_encoder;
    cp.slice_encoder_config = o.slice_encoder_config;
    cp.keep_going = o.batch_options.keep_going;
    cp.dir = tmp.path;
    cp.device = o.common.device;
    cp.threads = o.common.threads;
    const auto prepared = prepare_ct_inputs(inputs_record, ct, cp);
    for (const auto& [path, why] : prepared.failed) {
      failed.emplace_back(path, why);
      const auto at = std::find(ct.inputs.begin(), ct.inputs.end(), path);
      if (at != ct.inputs.end()) failed_ids.insert(ct.ids[static_cast<std::size_t>(at - ct.inputs.begin())]);
    }
    vo.volumes = {prepared.volumes};
    vo.slices = prepared.slice_features.empty() ? std::vector<std::string>{} : std::vector<std::string>{prepared.slice_features};
  }
  vlm::VisionSource vision(vo, dev);
  if (!from_ct) all_ids.insert(vision.ids().begin(), vision.ids().end());

  // Items. CT inputs are sharded by file above; HDF5 inputs by item below.
  std::vector<Item> items;
  std::vector<std::string> templates;
  // The template of item `n` (its position in the input): the first, or one drawn with --seed.
  auto pick = [&](const std::vector<std::string>& list, std::size_t n) -> const std::string& {
    if (o.prompt_choice == "first" || list.size() == 1) return list.front();
    std::mt19937_64 rng(o.common.seed * 1000003ull + n);
    return list[std::uniform_int_distribution<std::size_t>(0, list.size() - 1)(rng)];
  };
  auto template_for = [&](const std::string& abnormality, std::size_t n) {
    if (templates.empty())
      templates = vlm::read_prompts(o.prompts.empty() ? vlm::share_file("prompts/location.txt") : o.prompts, true);
    return vlm::fill(pick(templates, n), abnormality);
  };
  std::vector<std::string> mrg_prompts{vlm::kMrgEvalPrompt};
  if (!vqa && !o.prompts.empty()) mrg_prompts = vlm::read_prompts(o.prompts, false);
  eval::VqaIds vqa_ids;  // the ids hse-eval vqa gives the same CSV's rows
  if (!vqa || one_question) {
    std::map<std::string, std::string> refs;
    if (!o.reports.empty() && !vqa) refs = vlm::read_reports(o.reports, o.report_column);
    for (std::size_t i = 0; i < vision.ids().size(); ++i) {
      Item it{vision.ids()[i], pick(mrg_prompts, i), {}, false, i};
      if (vqa) {
        it.id = vqa_ids.next(it.id, o.abnormality);
        it.prompt = !o.question.empty() ? o.question : template_for(o.abnormality, i);
      } else if (auto r = refs.find(it.id); r != refs.end()) {
        it.reference = r->second;
        it.has_reference = true;
      }
      items.push_back(std::move(it));
    }
  } else {
    const std::string qpath = o.questions.empty() || o.questions == "-" ? "/dev/stdin" : o.questions;
    const auto rows = vlm::read_vqa(qpath, false);
    for (std::size_t row = 0; row < rows.size(); ++row) {
      const auto& r = rows[row];
      Item it;
      it.id = vqa_ids.next(r.id, r.abnormality);
      it.prompt = !r.question.empty() ? r.question : template_for(r.abnormality, row);
      it.reference = r.answer;
      it.has_reference = !r.answer.empty();
      const auto v = vision.index_of(r.id);
      if (!v) {
        if (failed_ids.count(r.id)) continue;  // its CT file failed (--keep-going): listed there
        if (from_ct && all_ids.count(r.id)) continue;  // another shard's volume
        cli::fail_input(qpath, "volume '{}' is not in {}", r.id, from_ct ? std::string("the CT inputs") : vision.source());
      }
      it.volume = *v;
      items.push_back(std::move(it));
    }
  }
  if (!from_ct) items = o.common.shard.take(items);
  if (items.empty()) cli::fail_usage("nothing to generate (no items{})", o.common.shard.count > 1 ? " in this shard" : "");

  // Prompts (token ids) and their length check against the LLM's context.
  const auto toks = vlm->tokens();
  const std::int64_t n_img = vlm->image_tokens();
  const std::int64_t ctx = vlm->llm->config.max_position_embeddings;
  std::vector<std::vector<std::int64_t>> prompt_ids;
  std::vector<Item> kept;
  for (auto& it : items) {
    auto ids = model::vlm_prompt_ids(toks, n_img, tok.encode(it.prompt, true));
    if (static_cast<std::int64_t>(ids.size()) > ctx) {
      const std::string why = fmt::format("prompt of {} tokens is longer than the LLM's context ({})", ids.size(), ctx);
      if (!o.batch_options.keep_going) cli::fail_input(it.id, "{}", why);
      cli::log_line(-1, fmt::format("failed: {}: {}", it.id, why));
      failed.emplace_back(it.id, why);
      continue;
    }
    prompt_ids.push_back(std::move(ids));
    kept.push_back(std::move(it));
  }
  items = std::move(kept);

  decode::GenerateOptions g;
  g.max_new_tokens = o.max_new_tokens > 0 ? o.max_new_tokens : (vqa ? 74 : 512);
  g.do_sample = o.do_sample;
  g.temperature = o.temperature;
  g.top_p = o.top_p;
  g.top_k = o.top_k;
  g.seed = o.common.seed;
  g.num_beams = o.num_beams;
  g.length_penalty = o.length_penalty;
  g.early_stopping = o.early_stopping == "true"    ? decode::EarlyStopping::on
                     : o.early_stopping == "never" ? decode::EarlyStopping::never
                                                   : decode::EarlyStopping::heuristic;
  g.guidance_scale = o.guidance_scale;
  g.repetition_penalty = o.repetition_penalty;
  g.eos_token_ids = std::vector<std::int64_t>{toks.eos};
  g.pad_token_id = toks.pad;

  torch::NoGradGuard ng;
  const double setup_s = cli::elapsed_s();  // models loaded: the per-item time below excludes it
  cli::Progress progress("generate", items.size(), o.common.progress);
  for (std::size_t s = 0; s < items.size(); s += static_cast<std::size_t>(o.batch)) {
    const std::size_t e = std::min(items.size(), s + static_cast<std::size_t>(o.batch));
    std::vector<std::size_t> vols;
    std::vector<std::vector<std::int64_t>> prompts;
    for (std::size_t k = s; k < e; ++k) {
      vols.push_back(items[k].volume);
      prompts.push_back(prompt_ids[k]);
    }
    const auto [t1, t2] = vision.features(vols);
    const auto out = decode::generate(*vlm, prompts, t1, t2, g);
    for (std::size_t k = s; k < e; ++k) {
      nlohmann::json j;
      j["id"] = items[k].id;
      j["prompt"] = items[k].prompt;
      j["prediction"] = strip(tok.decode(out[k - s], true));
      if (items[k].has_reference) j["reference"] = items[k].reference;
      io.out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
      io.out.flush();
      if (!io.out) return 0;  // closed pipe
    }
    progress.tick(e - s);
  }
  progress.finish();
  if (!o.batch_options.failures.empty()) {
    io::AtomicFile f(o.batch_options.failures);
    for (const auto& [what, why] : failed) f.stream() << what << '\t' << why << '\n';
    f.commit();
  }
  cli::summary("wrote {} {}{} ({:.3f} s per item after {:.1f} s of set-up)", items.size(),
               vqa ? (items.size() == 1 ? "answer" : "answers") : (items.size() == 1 ? "report" : "reports"),
               failed.empty() ? std::string() : fmt::format(" ({} failed)", failed.size()),
               (cli::elapsed_s() - setup_s) / static_cast<double>(std::max<std::size_t>(1, items.size())), setup_s);
  return failed.empty() ? 0 : static_cast<int>(cli::Exit::runtime);
}

}  // namespace hse::generate
