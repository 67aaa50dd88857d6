// hse-embed: volume, report and slice embeddings (HDF5 kind "embeddings" / "slice_features").
#pragma once

#include <string>
#include <vector>

#include "hse/cli/cli.h"

namespace CLI {
class App;
}

namespace hse::embed {

struct Options {
  cli::Common common;
  std::string model;                          // CLIP checkpoint dir, or (with --slices) a vit2d checkpoint
  std::vector<std::string> volumes;           // HDF5 kind volumes
  std::vector<std::string> slice_features;    // stage-2 models: HDF5 kind slice_features
  std::string reports;                        // CSV: embed reports instead of volumes
  std::vector<std::string> text_columns{"Findings_EN"};
  std::vector<std::string> slices;            // HDF5 kind slices: the 2-D encoder
  std::string vit2d_config;                   // with --slices: vit2d config (default <model dir>/config.json)
  std::string prefix = "visual.trunk.";       // with --slices: key prefix of the trunk
  long long random_init = -1;                 // with --slices and no --model: seeded random trunk (demos, tests)
  std::string guide;                          // with --reports: text-cls | full-text guide features (2E3 Table 1b)
  bool tokens = false;                        // all last-layer tokens (CLS dropped) instead of the projected CLS
  bool patch_scores = false;                  // stage 2: also the 2E3 patch scores
  std::string patch_png;                      // stage 2: a PNG per volume of the scores over axial slices
  int batch = 4;
  int data_workers = -1;                      // threads reading the next batches (-1: auto)
  int max_length = 512;
  std::string truncation = "cut";  // reports longer than max_length: cut | sentences (HSENet's truncate_text)
  std::string compat;              // "" | hsenet (--truncation sentences)
  std::string dtype = "float32";
  std::string compression = "none";
};

void declare(CLI::App& app, Options& o);
int run(const Options& o, cli::Io& io);

}  // namespace hse::embed
