// Volume-report pairs for CLIP pretraining: volumes (HDF5 kind "volumes"), reports
// (CT-RATE CSV, VolumeName + text columns), optional 2-D slice features (HDF5 kind
// "slice_features", [N,S,768]) matched by id; HSENet's augmentations (hsenet-spec §5:
// RandRotate90 on (H,W) p 0.5, RandFlip p 0.1 per axis, RandScaleIntensity 0.1 p 0.5,
// RandShiftIntensity 0.1 p 0.5), seeded per (seed, epoch, item).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "hse/io/h5.h"
#include "hse/text/wordpiece.h"

namespace hse::train {

struct ClipDataOptions {
  std::vector<std::string> volumes;         // HDF5 files (shards in order)
  std::string reports;                      // CSV
  std::vector<std::string> text_columns{"Findings_EN"};
  std::vector<std::string> slice_features;  // HDF5 files, or empty
  int max_length = 512;
  bool clean = true;                        // HSENet's cleaning (", ', (, ) removed)
  bool sentence_truncation = false;         // HSENet's truncate_text before tokenizing
};

struct ClipBatch {
  torch::Tensor volumes;       // [B,1,D,H,W] float
  torch::Tensor slices;        // [B,S,F] float, undefined without slice features
  torch::Tensor input_ids;     // [B,L] long
  torch::Tensor attention_mask;
  std::vector<std::string> ids;
};

class ClipData {
 public:
  // Throws cli::Error (exit 3) naming the file: a missing text column, a volume id
  // without a report, a volume without slice features.
  ClipData(const ClipDataOptions& opt, std::shared_ptr<const text::WordPieceTokenizer> tokenizer);
  std::size_t size() const { return ids_.size(); }
  const std::vector<std::string>& ids() const { return ids_; }
  const std::string& text(std::size_t i) const { return texts_[i]; }
  std::vector<std::int64_t> volume_shape() const;
  // The batch of `items` in host memory for `dev` (pinned when it is a CUDA device, host.h).
  ClipBatch batch(const std::vector<std::size_t>& items, bool augment, std::uint64_t seed, long epoch,
                  const torch::Device& dev = torch::kCPU) const;

 private:
  void encode_texts(const std::vector<std::size_t>& items, torch::Tensor& ids, torch::Tensor& mask,
                    std::uint64_t seed, const torch::Device& dev) const;

  ClipDataOptions opt_;
  std::shared_ptr<const text::WordPieceTokenizer> tok_;
  std::unique_ptr<h5::Reader> vols_, slices_;
  std::vector<std::string> ids_, texts_;
  std::vector<std::size_t> slice_index_;
};

// HSENet's training augmentation of one [1,D,H,W] volume (a copy), seeded.
torch::Tensor augment_volume(const torch::Tensor& v, std::uint64_t seed);

}  // namespace hse::train
