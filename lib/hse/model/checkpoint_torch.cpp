#include "hse/model/checkpoint.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "hse/cli/cli.h"

namespace hse::model {

std::string LoadReport::summary(std::size_t max_names) const {
  auto list = [&](const char* what, const std::vector<std::string>& v) -> std::string {
    if (v.empty()) return {};
    std::vector<std::string> head(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(std::min(max_names, v.size())));
    return fmt::format("{} {} ({}{})", v.size(), what, fmt::join(head, ", "), v.size() > max_names ? ", ..." : "");
  };
  std::vector<std::string> parts;
  for (auto s : {list("missing", missing), list("unexpected", unexpected), list("mis-shaped", mis_shaped)})
    if (!s.empty()) parts.push_back(s);
  return parts.empty() ? "all keys matched" : fmt::format("{}", fmt::join(parts, "; "));
}

torch::Tensor tensor_from(const io::SafeTensorsSet& ckpt, const std::string& name) {
  const io::TensorInfo& ti = ckpt.info(name);
  std::vector<float> v = ckpt.to_float(name);
  auto t = torch::from_blob(v.data(), {static_cast<std::int64_t>(v.size())}, torch::kFloat32).clone();
  return t.reshape(ti.shape);
}

LoadReport load_state(torch::nn::Module& module, const io::SafeTensorsSet& ckpt, const std::string& prefix,
                      bool allow_partial, const std::vector<std::string>& ignore_unexpected) {
  LoadReport r;
  std::map<std::string, torch::Tensor> targets;
  for (const auto& p : module.named_parameters(true)) targets[p.key()] = p.value();
  for (const auto& b : module.named_buffers(true)) targets[b.key()] = b.value();
  torch::NoGradGuard ng;
  for (const auto& [name, t] : targets) {
    const std::string key = prefix + name;
    if (!ckpt.contains(key)) {
      r.missing.push_back(key);
      continue;
    }
    const auto& shape = ckpt.info(key).shape;
    if (std::vector<std::int64_t>(t.sizes().begin(), t.sizes().end()) != shape) {
      r.mis_shaped.push_back(fmt::format("{}: checkpoint [{}] vs model [{}]", key, fmt::join(shape, ","),
                                         fmt::join(t.sizes(), ",")));
      continue;
    }
    t.copy_(tensor_from(ckpt, key).to(t.dtype()));
    ++r.loaded;
  }
  for (const auto& key : ckpt.names()) {
    if (key.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string name = key.substr(prefix.size());
    if (targets.count(name)) continue;
    bool ignored = false;
    for (const auto& ig : ignore_unexpected) ignored = ignored || name.compare(0, ig.size(), ig) == 0;
    if (!ignored) r.unexpected.push_back(key);
  }
  if (!allow_partial && !r.clean())
    throw cli::Error(cli::Exit::incompatible, ckpt.path(),
                     fmt::format("checkpoint does not match the model{}: {}",
                                 prefix.empty() ? "" : fmt::format(" under '{}'", prefix), r.summary()),
                     "--allow-partial loads what matches");
  return r;
}

void add_state(io::SafeTensorsWriter& w, const torch::nn::Module& module, const std::string& prefix, io::Dtype dtype) {
  auto put = [&](const std::string& name, const torch::Tensor& t) {
    const auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    std::vector<std::int64_t> shape(c.sizes().begin(), c.sizes().end());
    w.add_float(prefix + name, dtype, shape, c.data_ptr<float>());
  };
  for (const auto& p : module.named_parameters(true)) put(p.key(), p.value());
  for (const auto& b : module.named_buffers(true)) put(b.key(), b.value());
}

}  // namespace hse::model
