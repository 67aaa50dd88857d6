#include <map>
#include <random>

#include "hse/cli/cli.h"
#include "hse/io/csv.h"
#include "hse/train/clip_data.h"
#include "hse/train/host.h"

namespace hse::train {

ClipData::ClipData(const ClipDataOptions& opt, std::shared_ptr<const text::WordPieceTokenizer> tokenizer)
    : opt_(opt), tok_(std::move(tokenizer)) {
  vols_ = std::make_unique<h5::Reader>(opt.volumes, "volumes");
  const io::Table t = io::read_csv(opt.reports);
  const std::size_t idc = t.col("VolumeName");
  std::vector<std::size_t> cols;
  for (const auto& c : opt.text_columns) cols.push_back(t.col(c));
  if (t.rows.empty()) cli::fail_input(opt.reports, "no report rows (a header only)");
  std::map<std::string, std::string> reports;
  for (const auto& row : t.rows) {
    std::string s;
    for (auto c : cols) {
      if (row[c].empty() || row[c] == "Not given.") continue;
      if (!s.empty()) s += ' ';
      s += row[c];
    }
    reports[row[idc]] = s;
  }
  std::map<std::string, std::size_t> slice_pos;
  if (!opt.slice_features.empty()) {
    slices_ = std::make_unique<h5::Reader>(opt.slice_features, "slice_features");
    for (std::size_t i = 0; i < slices_->size(); ++i) slice_pos[slices_->ids()[i]] = i;
  }
  for (std::size_t i = 0; i < vols_->size(); ++i) {
    const std::string& id = vols_->ids()[i];
    auto it = reports.find(id);
    if (it == reports.end())
      throw cli::Error(cli::Exit::incompatible, opt.volumes.front(),
                       fmt::format("volume '{}' has no report in {}", id, opt.reports));
    ids_.push_back(id);
    texts_.push_back(opt.clean ? text::hsenet_clean(it->second) : it->second);
    if (slices_) {
      auto s = slice_pos.find(id);
      if (s == slice_pos.end())
        throw cli::Error(cli::Exit::incompatible, opt.slice_features.front(), fmt::format("no slice features for '{}'", id));
      slice_index_.push_back(s->second);
    }
  }
  if (ids_.empty()) cli::fail_input(opt.volumes.front(), "no volumes");
}

std::vector<std::int64_t> ClipData::volume_shape() const {
  const auto s = vols_->item_shape("volumes");
  return std::vector<std::int64_t>(s.begin(), s.end());
}

torch::Tensor augment_volume(const torch::Tensor& v, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  torch::Tensor x = v;
  // RandRotate90(prob 0.5, max_k 3, spatial axes (1, 2) of [C,D,H,W] = H, W): k in {1,2,3}.
  if (u(rng) < 0.5) x = torch::rot90(x, static_cast<std::int64_t>(rng() % 3) + 1, {2, 3});
  // RandFlip(prob 0.1) on each spatial axis in turn.
  for (std::int64_t axis : {1, 2, 3})
    if (u(rng) < 0.1) x = torch::flip(x, {axis});
  // RandScaleIntensity(0.1, p 0.5): v * (1 + f), f ~ U(-0.1, 0.1); RandShiftIntensity(0.1, p 0.5): v + o.
  if (u(rng) < 0.5) x = x * (1.0 + (u(rng) * 0.2 - 0.1));
  if (u(rng) < 0.5) x = x + (u(rng) * 0.2 - 0.1);
  return x.contiguous();
}

void ClipData::encode_texts(const std::vector<std::size_t>& items, torch::Tensor& ids, torch::Tensor& mask,
                            std::uint64_t seed, const torch::Device& dev) const {
  const std::int64_t B = static_cast<std::int64_t>(items.size()), L = opt_.max_length;
  ids = host_empty({B, L}, torch::kLong, dev);
  mask = host_empty({B, L}, torch::kLong, dev);
  for (std::int64_t b = 0; b < B; ++b) {
    std::string t = texts_[items[static_cast<std::size_t>(b)]];
    if (opt_.sentence_truncation) t = text::hsenet_truncate(t, *tok_, L, seed + static_cast<std::uint64_t>(b));
    set_encoding_row(ids, mask, b, tok_->encode(t, L, true, true));
  }
}

ClipBatch ClipData::batch(const std::vector<std::size_t>& items, bool augment, std::uint64_t seed, long epoch,
                          const torch::Device& dev) const {
  ClipBatch b;
  const auto shape = volume_shape();
  std::vector<std::int64_t> vshape{static_cast<std::int64_t>(items.size())};
  vshape.insert(vshape.end(), shape.begin(), shape.end());
  b.volumes = host_empty(vshape, torch::kFloat32, dev);
  for (std::size_t k = 0; k < items.size(); ++k) {
    vols_->read("volumes", items[k], b.volumes[static_cast<std::int64_t>(k)].data_ptr<float>());
    if (augment) {
      const std::uint64_t s = seed * 1000003ull + static_cast<std::uint64_t>(epoch) * 7919ull + items[k];
      b.volumes[static_cast<std::int64_t>(k)].copy_(augment_volume(b.volumes[static_cast<std::int64_t>(k)], s));
    }
    b.ids.push_back(ids_[items[k]]);
  }
  if (slices_) {
    const auto ss = slices_->item_shape("slice_features");
    std::vector<std::int64_t> s{static_cast<std::int64_t>(items.size())};
    for (auto x : ss) s.push_back(static_cast<std::int64_t>(x));
    b.slices = host_empty(s, torch::kFloat32, dev);
    for (std::size_t k = 0; k < items.size(); ++k)
      slices_->read("slice_features", slice_index_[items[k]], b.slices[static_cast<std::int64_t>(k)].data_ptr<float>());
  }
  encode_texts(items, b.input_ids, b.attention_mask, seed + static_cast<std::uint64_t>(epoch), dev);
  return b;
}

}  // namespace hse::train
