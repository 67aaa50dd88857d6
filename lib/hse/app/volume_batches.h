// The volumes of an HDF5 volumes file in batches for a CLIP's image tower (hse-embed,
// hse-classify): each batch's volumes and, for a stage-2 (2E3) model, their slice features
// matched by id, read ahead on --data-workers threads into host memory for the device (pinned on
// CUDA), handed out in input order.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "hse/io/h5.h"
#include "hse/train/prefetch.h"

namespace hse::app {

struct VolumeBatch {
  std::size_t first = 0;  // the first item's index in the volumes file
  torch::Tensor volumes;  // [n,1,D,H,W] host
  torch::Tensor slices;   // [n,S,F] host, undefined without slice features
};

class VolumeBatches {
 public:
  // `slice_features` empty: no slice features. Exit 3 naming the slice-features file when a
  // volume has none (when its batch is reached).
  VolumeBatches(const std::vector<std::string>& volumes, const std::vector<std::string>& slice_features,
                std::size_t batch, int data_workers, const torch::Device& dev);
  const h5::Reader& reader() const { return vols_; }
  // Refuses (exit 3) slice features whose guide (model::check_patch_guide) is not `model_guide`.
  void check_guide(const std::string& model_guide, const std::string& model_source) const;
  std::optional<VolumeBatch> next() { return data_->next(); }

 private:
  h5::Reader vols_;
  std::unique_ptr<h5::Reader> slices_;
  std::string slices_file_;
  std::map<std::string, std::size_t> slice_row_;
  std::unique_ptr<train::Prefetcher<std::size_t, VolumeBatch>> data_;
};

}  // namespace hse::app
