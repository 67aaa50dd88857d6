#include "hse/app/volume_batches.h"

#include <algorithm>

#include "hse/cli/cli.h"
#include "hse/model/config_check.h"
#include "hse/train/host.h"

namespace hse::app {

VolumeBatches::VolumeBatches(const std::vector<std::string>& volumes, const std::vector<std::string>& slice_features,
                             std::size_t batch, int data_workers, const torch::Device& dev)
    : vols_(volumes, "volumes") {
  if (!slice_features.empty()) {
    slices_ = std::make_unique<h5::Reader>(slice_features, "slice_features");
    slices_file_ = slice_features.front();
    for (std::size_t i = 0; i < slices_->size(); ++i) slice_row_[slices_->ids()[i]] = i;
  }
  const int workers = train::data_workers(data_workers);
  data_ = std::make_unique<train::Prefetcher<std::size_t, VolumeBatch>>(
      train::Spans{vols_.size(), batch},
      [this, batch, dev](const std::size_t& s) {
        const std::size_t n = std::min(vols_.size() - s, batch);
        VolumeBatch b{s, train::read_items(vols_, "volumes", s, n, dev), {}};
        if (slices_)
          b.slices = train::read_items(*slices_, "slice_features", s, n, dev, [this](std::size_t k) {
            auto it = slice_row_.find(vols_.ids()[k]);
            if (it == slice_row_.end()) cli::fail_input(slices_file_, "no slice features for '{}'", vols_.ids()[k]);
            return it->second;
          });
        return b;
      },
      workers, 2 * std::max(1, workers));
}

void VolumeBatches::check_guide(const std::string& model_guide, const std::string& model_source) const {
  if (slices_)
    model::check_patch_guide(slices_->attr_string(model::kGuideAttr), model_guide, slices_file_, model_source);
}

}  // namespace hse::app
