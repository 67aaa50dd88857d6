// hse-classify: zero-shot classification with a CLIP, as CT-CLIP's zero-shot script does it
// (scripts/zero_shot.py): for each label, the prompts "<label> is present." and "<label> is not
// present.", the softmax over the two scaled cosine similarities with the volume, and the first
// as the probability. Output: TSV id<TAB>label<TAB>probability on stdout, for hse-eval
// classification.
#pragma once

#include <string>
#include <vector>

#include "hse/cli/cli.h"
#include "hse/image/ct_input.h"

namespace CLI {
class App;
}

namespace hse::classify {

struct Options {
  cli::Common common;
  std::string model;                        // CLIP checkpoint directory
  std::vector<std::string> volumes;         // HDF5 kind volumes
  std::vector<std::string> slice_features;  // 2E3 (stage-2) models
  image::CtInputOptions ct;                 // or CT files, made with the model's hse_inputs.json
  std::string prompts;                      // TSV label<TAB>positive<TAB>negative (default: CT-CLIP's, 18 labels)
  int batch = 4;
  int max_length = 512;
  int data_workers = -1;
};

struct PromptPair {
  std::string label, positive, negative;
};
// CT-CLIP's pair for each line of `labels_file` (one label per line), or the pairs of a TSV
// label<TAB>positive<TAB>negative. Exit 3 naming the file on a malformed line or no labels.
std::vector<PromptPair> read_prompt_pairs(const std::string& path, bool tsv);

void declare(CLI::App& app, Options& o);
int run(const Options& o, cli::Io& io);

}  // namespace hse::classify
