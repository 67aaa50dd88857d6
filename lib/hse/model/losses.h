// HSENet's training losses (hsenet-spec §1, §2):
//   L_CL  symmetric InfoNCE: (CE(s·I·Tᵀ, arange) + CE(s·T·Iᵀ, arange)) / 2
//   L_SA  semantic consistency: ½[MSE(L_i¹, L_i²) + MSE(L_t¹, L_t²)] between the frozen
//         stage-1 logits (computed with the stage-2 logit_scale, detached) and stage 2's
//   w(t)  the L_SA weight: 0.1·(1 − t/5000) clipped at 0 (published code), or a constant (paper).
#pragma once

#include <string>

#include <torch/torch.h>

#include "hse/config/clip.h"

namespace hse::model {

torch::Tensor effective_scale(const torch::Tensor& logit_scale, LogitScaleForm form);

struct ClipLogits {
  torch::Tensor per_image, per_text;  // [N, N]: s·I·Tᵀ and its transpose
};
// image, text: [N, D] L2-normalised features (all ranks' features when gathered).
ClipLogits clip_logits(const torch::Tensor& image, const torch::Tensor& text, const torch::Tensor& logit_scale,
                       LogitScaleForm form = LogitScaleForm::raw);
torch::Tensor clip_loss(const ClipLogits& l);
torch::Tensor sa_loss(const ClipLogits& stage1, const ClipLogits& stage2);

enum class SaSchedule { linear, constant };
SaSchedule parse_sa_schedule(const std::string& s);  // "linear" | "const"
// w(t): linear = max(0, w0·(1 − t/steps)) (published: w0 0.1, steps 5000); constant = w0.
double sa_weight(long step, SaSchedule schedule, double w0 = 0.1, long steps = 5000);

}  // namespace hse::model
