// hse-generate: report generation (MRG) and location VQA with an HSENet VLM (hsenet-spec §0, §4, §6).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "hse/cli/cli.h"
#include "hse/image/ct_batch.h"
#include "hse/image/ct_input.h"

namespace CLI {
class App;
}

namespace hse::generate {

struct Options {
  cli::Common common;
  std::string model, llm, adapter, clip, tokenizer;
  std::vector<std::string> volumes, slice_features;
  std::string tokens1, tokens2;
  image::CtInputOptions ct;  // CT files (or --root/--metadata): preprocessed in-process
  std::string task = "mrg";
  std::string questions, reports, prompts, template_text;
  std::string prompt_choice = "random";       // random | first
  std::string tokenizer_mode;                 // fast | slow ("": the adapter's)
  std::string question, abnormality;          // one question (or template filled with one abnormality) per volume
  std::string slice_encoder, slice_encoder_config;  // override the adapter's record for CT inputs
  image::BatchOptions batch_options;          // --keep-going, --failures
  std::string report_column = "Findings_EN";
  long max_new_tokens = -1;  // -1: 512 (mrg) / 74 (vqa)
  int num_beams = 1;
  double length_penalty = 1.0;
  std::string early_stopping = "false";
  double guidance_scale = 1.0;
  bool do_sample = false;
  double temperature = 1.0, top_p = 1.0, repetition_penalty = 1.0;
  long top_k = 50;
  int batch = 1;
  std::string precision = "fp32";  // LLM compute precision: fp32, bf16, fp16
  bool int8 = false;
};

void declare(CLI::App& app, Options& o);
int run(const Options& o, cli::Io& io);

// Where CT inputs of hse-generate go and what may override the adapter's record.
// A private temporary directory (PREFIX-XXXXXX under the system's), removed with its contents
// when done.
struct TempDir {
  explicit TempDir(std::string prefix) : prefix_(std::move(prefix)) {}
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  void make();  // exit 1 when it cannot be created
  std::string path;

 private:
  std::string prefix_;
};

struct CtPrepare {
  std::string adapter_dir;           // relative paths of the record are relative to it
  std::string record_file = "hse_vlm.json";  // the record's file in adapter_dir (errors name it)
  std::string hint;                  // what to do about a record this hse cannot replay ("": an adapter's)
  std::string slice_encoder;         // --slice-encoder: the 2-D encoder directory (replaces the record's)
  std::string slice_encoder_config;  // --slice-encoder-config: its vit2d config JSON
  bool keep_going = false;           // list failed files instead of stopping at the first
  std::string dir;                   // private temporary directory for the intermediate files
  std::string device;
  int threads = 0;
};
struct CtPrepared {
  std::string volumes, slice_features;                      // slice_features "" when the record has no slices
  std::vector<std::pair<std::string, std::string>> failed;  // input path, reason (keep_going)
};
// The CT inputs of `o` expanded (a "-" list read from `in`, directories searched, or every
// --metadata row under --root) and named by image::input_ids: what prepare_ct_inputs takes.
image::CtInputOptions named_ct_inputs(const image::CtInputOptions& o, std::istream& in);

// CT files (`ct.inputs` already expanded, `ct.ids` set) -> volumes.h5 and slice_features.h5 in
// p.dir, made in-process by hse-preprocess, hse-slice and hse-embed --slices with the recipes of
// `inputs_json` (an adapter's record, or a CLIP checkpoint's hse_inputs.json). Throws cli::Error exit 3 when the record lacks what is
// needed; messages never name the temporary files.
CtPrepared prepare_ct_inputs(const std::string& inputs_json, const image::CtInputOptions& ct, const CtPrepare& p);

}  // namespace hse::generate
