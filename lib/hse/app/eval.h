// hse-eval: report, VQA and retrieval metrics, each under its own precise name
// (see man/hse-eval.1 for every definition and the mapping to published tables).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "hse/cli/cli.h"

namespace CLI {
class App;
}

namespace hse::eval {

struct Options {
  cli::Common common;
  std::string task;                     // report | vqa | retrieval | classification
  std::string input = "-";              // predictions JSONL or rankings TSV ("-": stdin)
  std::string references;               // CSV (CT-RATE reports, RadGenome VQA) or JSONL
  std::string ref_column = "Findings_EN";
  std::string reference_source;         // "", file or inline: which wins when both are present
  bool json = false;
  std::string per_item;                 // per-sample scores (TSV)
  std::vector<std::string> fail_under;  // metric=value
  std::string smooth = "exp";  // sacrebleu's default, for BLEU() and sentence_bleu alike
  double smooth_value = 0;
  bool stem = false;
  std::string compat;                   // "hsenet"
  bool clean_references = false;
  std::string wordnet = "/usr/share/wordnet";
  bool allow_missing = false;
  std::string pairs;                    // retrieval: TSV query_id<TAB>item_id
  std::string labels;                   // retrieval: CT-RATE labels CSV (volume-to-volume); classification: the truth
  std::string ks;                       // retrieval: comma-separated K values
  std::string bertscore_model;          // report/vqa: a BERT or RoBERTa HF model directory (enables BERTScore)
  int bertscore_layer = -1;             // -1: the last layer
  bool bertscore_idf = false;
  int bertscore_batch = 64;
  std::string bertscore_baseline;       // bert-score's rescale_baseline TSV (rescale_with_baseline)
};

// Registers the task subcommands (report, vqa, retrieval, classification) and their options.
void declare(CLI::App& app, Options& o);
int run(const Options& o, cli::Io& io);

}  // namespace hse::eval
