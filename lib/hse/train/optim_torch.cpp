#include <cctype>
#include <cmath>
#include <cstring>

#include "hse/cli/cli.h"
#include "hse/model/checkpoint.h"
#include "hse/train/optim.h"

namespace hse::train {

bool no_weight_decay(const std::string& name) {
  if (name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0) return true;
  const auto dot = name.rfind('.');
  const std::string module = name.substr(0, dot == std::string::npos ? 0 : dot);
  const auto last = module.substr(module.rfind('.') == std::string::npos ? 0 : module.rfind('.') + 1);
  std::string lower;
  for (char c : last) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower.find("norm") != std::string::npos;
}

AdamW::AdamW(std::vector<std::pair<std::string, torch::Tensor>> params, AdamWOptions opt,
             const std::vector<std::string>& no_decay)
    : params_(std::move(params)), opt_(opt) {
  for (const auto& [name, p] : params_) {
    bool nd = false;
    for (const auto& s : no_decay) nd = nd || name == s;
    decay_.push_back(!nd);
    m_.push_back(torch::zeros_like(p));
    v_.push_back(torch::zeros_like(p));
  }
}

std::vector<torch::Tensor> AdamW::tensors() const {
  std::vector<torch::Tensor> v;
  for (const auto& np : params_) v.push_back(np.second);
  return v;
}

void AdamW::zero_grad() {
  for (auto& [n, p] : params_)
    if (p.grad().defined()) p.mutable_grad().zero_();
}

void AdamW::step(double lr) {
  ++step_;
  torch::NoGradGuard ng;
  const double bc1 = 1 - std::pow(opt_.beta1, static_cast<double>(step_));
  const double bc2 = 1 - std::pow(opt_.beta2, static_cast<double>(step_));
  for (std::size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i].second;
    if (!p.grad().defined()) continue;
    const auto g = p.grad();
    // torch.optim.AdamW (single-tensor path): decoupled decay, then the Adam update.
    if (decay_[i] && opt_.weight_decay != 0) p.mul_(1 - lr * opt_.weight_decay);
    m_[i].lerp_(g, 1 - opt_.beta1);
    v_[i].mul_(opt_.beta2).addcmul_(g, g, 1 - opt_.beta2);
    const auto denom = (v_[i].sqrt() / std::sqrt(bc2)).add_(opt_.eps);
    p.addcdiv_(m_[i], denom, -lr / bc1);
  }
}

void AdamW::save(io::SafeTensorsWriter& w) const {
  for (std::size_t i = 0; i < params_.size(); ++i) {
    for (const auto& [suffix, t] : {std::make_pair(".exp_avg", m_[i]), std::make_pair(".exp_avg_sq", v_[i])}) {
      const auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
      w.add_float("optimizer." + params_[i].first + suffix, io::Dtype::F32,
                  std::vector<std::int64_t>(c.sizes().begin(), c.sizes().end()), c.data_ptr<float>());
    }
  }
  const std::int64_t s = step_;
  w.add("optimizer.step", io::Dtype::I64, {}, &s);
}

void AdamW::load(const io::SafeTensorsSet& ckpt) {
  torch::NoGradGuard ng;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    m_[i].copy_(model::tensor_from(ckpt, "optimizer." + params_[i].first + ".exp_avg"));
    v_[i].copy_(model::tensor_from(ckpt, "optimizer." + params_[i].first + ".exp_avg_sq"));
  }
  const auto& info = ckpt.info("optimizer.step");
  if (info.dtype != io::Dtype::I64 || info.nbytes() != 8) cli::fail_input(ckpt.path(), "optimizer.step is not an int64 scalar");
  std::int64_t s;
  std::memcpy(&s, info.bytes, 8);
  step_ = s;
}

double cosine_with_warmup(long step, long total, long warmup) {
  if (step < warmup) return static_cast<double>(step) / static_cast<double>(std::max(1L, warmup));
  const double progress = static_cast<double>(step - warmup) / static_cast<double>(std::max(1L, total - warmup));
  return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * 0.5 * 2.0 * progress)));
}

long warmup_steps_for(long total, double ratio) { return static_cast<long>(std::ceil(static_cast<double>(total) * ratio)); }

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  std::vector<torch::Tensor> ps;
  for (const auto& p : params)
    if (p.grad().defined()) ps.push_back(p);
  if (ps.empty()) return 0.0;
  return torch::nn::utils::clip_grad_norm_(ps, max_norm);
}

}  // namespace hse::train
