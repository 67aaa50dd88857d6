#include "hse/model/losses.h"

#include <algorithm>

#include "hse/cli/cli.h"

namespace hse::model {

SaSchedule parse_sa_schedule(const std::string& s) {
  if (s == "linear") return SaSchedule::linear;
  if (s == "const") return SaSchedule::constant;
  cli::fail_usage("--sa-weight-schedule: '{}' is not one of linear, const", s);
}

torch::Tensor effective_scale(const torch::Tensor& logit_scale, LogitScaleForm form) {
  return form == LogitScaleForm::raw ? logit_scale : logit_scale.exp();
}

ClipLogits clip_logits(const torch::Tensor& image, const torch::Tensor& text, const torch::Tensor& logit_scale,
                       LogitScaleForm form) {
  const auto s = effective_scale(logit_scale, form);
  ClipLogits l;
  l.per_image = s * torch::matmul(image, text.t());
  l.per_text = s * torch::matmul(text, image.t());
  return l;
}

torch::Tensor clip_loss(const ClipLogits& l) {
  const auto n = l.per_image.size(0);
  const auto labels = torch::arange(n, torch::TensorOptions().dtype(torch::kLong).device(l.per_image.device()));
  return (torch::nn::functional::cross_entropy(l.per_image, labels) +
          torch::nn::functional::cross_entropy(l.per_text, labels)) /
         2;
}

torch::Tensor sa_loss(const ClipLogits& s1, const ClipLogits& s2) {
  return 0.5 * (torch::mse_loss(s1.per_image.detach(), s2.per_image) + torch::mse_loss(s1.per_text.detach(), s2.per_text));
}

double sa_weight(long step, SaSchedule schedule, double w0, long steps) {
  if (schedule == SaSchedule::constant) return w0;
  if (steps <= 0) return 0.0;
  return std::max(0.0, w0 * (1.0 - static_cast<double>(step) / static_cast<double>(steps)));
}

}  // namespace hse::model
