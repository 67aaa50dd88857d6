// Activation checkpointing (hse-pretrain --gradient-checkpointing): a layer's forward runs
// without keeping its activations, and backward recomputes them from the saved input, as
// torch.utils.checkpoint (use_reentrant=True) does. The RNG state (CPU, and CUDA when the input
// is on a GPU) is saved with the input and restored for the recomputation, so dropout masks are
// the same in both passes and the gradients equal those without checkpointing.
//
// Memory: a checkpointed layer keeps one [B, T, H] input instead of every intermediate (for the
// ViT-B block at 2049 tokens: q, k, v, attention output, the 4H MLP activation, ...), at the cost
// of a second forward per layer in backward.
#pragma once

#include <functional>

#include <torch/torch.h>

namespace hse::model {

// y = fn(x, extra) where `extra` is a non-differentiable tensor (an attention mask; may be
// undefined). Without grad mode, or when x needs no gradient, fn is called directly (the
// parameters inside fn get their gradients through x's graph, as with torch.utils.checkpoint).
// `fn` must compute the same function every time it is called (a module's forward).
torch::Tensor recompute(const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& fn,
                        const torch::Tensor& x, const torch::Tensor& extra = {});

}  // namespace hse::model
