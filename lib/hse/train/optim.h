// Optimisation as HSENet's HF Trainer runs it (hsenet-spec §7): AdamW (torch
// semantics, betas 0.9/0.999, eps 1e-8, decoupled weight decay), the cosine
// schedule with linear warm-up (transformers.get_cosine_schedule_with_warmup,
// warm-up steps = ceil(ratio · total)), gradient clipping by global norm.
// Optimiser state is saved in safetensors (no pickles), so runs resume exactly.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "hse/io/safetensors.h"

namespace hse::train {

struct AdamWOptions {
  double lr = 1e-4, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.1;
};

// HF Trainer's rule, as HSENet trains (and hse-pretrain): no weight decay on biases and on the
// parameters of modules whose name contains "norm" (LayerNorm, norm1, ...).
bool no_weight_decay(const std::string& name);

class AdamW {
 public:
  // `params`: name -> parameter; `no_decay` names get weight decay 0.
  AdamW(std::vector<std::pair<std::string, torch::Tensor>> params, AdamWOptions opt,
        const std::vector<std::string>& no_decay = {});
  void zero_grad();
  // One update with learning rate `lr` (the schedule's value for this step).
  void step(double lr);
  long steps() const { return step_; }
  const std::vector<std::pair<std::string, torch::Tensor>>& params() const { return params_; }
  std::vector<torch::Tensor> tensors() const;
  // State as safetensors entries under "optimizer." (exp_avg, exp_avg_sq, step).
  void save(io::SafeTensorsWriter& w) const;
  void load(const io::SafeTensorsSet& ckpt);

 private:
  std::vector<std::pair<std::string, torch::Tensor>> params_;
  std::vector<bool> decay_;
  std::vector<torch::Tensor> m_, v_;
  AdamWOptions opt_;
  long step_ = 0;
};

// transformers.get_cosine_schedule_with_warmup(num_cycles=0.5): the multiplier of the base lr.
double cosine_with_warmup(long step, long total_steps, long warmup_steps);
long warmup_steps_for(long total_steps, double warmup_ratio);

// Clips the global L2 norm of the gradients to max_norm; returns the norm before clipping.
double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace hse::train
