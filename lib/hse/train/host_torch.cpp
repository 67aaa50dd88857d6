#include "hse/train/host.h"

#include <algorithm>
#include <stdexcept>

namespace hse::train {

torch::Tensor host_empty(at::IntArrayRef shape, torch::Dtype dtype, const torch::Device& dev) {
  return torch::empty(shape, torch::TensorOptions().dtype(dtype).pinned_memory(dev.is_cuda()));
}

torch::Tensor to_device(const torch::Tensor& t, const torch::Device& dev) {
  if (!t.defined()) return t;
  return t.to(dev, /*non_blocking=*/t.is_pinned());
}

torch::Tensor read_items(const h5::Reader& r, const std::string& name, std::size_t first, std::size_t n,
                         const torch::Device& dev, const std::function<std::size_t(std::size_t)>& row) {
  std::vector<std::int64_t> shape{static_cast<std::int64_t>(n)};
  for (auto x : r.item_shape(name)) shape.push_back(static_cast<std::int64_t>(x));
  auto t = host_empty(shape, torch::kFloat32, dev);
  for (std::size_t k = 0; k < n; ++k)
    r.read(name, row ? row(first + k) : first + k, t[static_cast<std::int64_t>(k)].data_ptr<float>());
  return t;
}

void set_encoding_row(torch::Tensor& ids, torch::Tensor& mask, std::int64_t row, const text::Encoding& e) {
  const auto L = static_cast<std::size_t>(ids.size(1));
  if (e.ids.size() != L || e.attention_mask.size() != L || mask.size(1) != ids.size(1))
    throw std::logic_error("set_encoding_row: the encoding is not padded to the tensors' width");
  std::copy(e.ids.begin(), e.ids.end(), ids[row].data_ptr<std::int64_t>());
  std::copy(e.attention_mask.begin(), e.attention_mask.end(), mask[row].data_ptr<std::int64_t>());
}

}  // namespace hse::train
