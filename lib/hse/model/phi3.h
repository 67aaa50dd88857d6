// The Phi-3 / Phi-4-mini decoder (HSENet's language model, hsenet-spec §4) on LibTorch, in the
// Hugging Face `Phi3ForCausalLM` layout, numerically following transformers 5.23
// (models/phi3/modeling_phi3.py with the default "sdpa" attention, modeling_rope_utils.py).
//
// Parameter names are HF's, so Phi-4-mini-instruct and save_pretrained directories load by name:
//   model.embed_tokens.weight                         [V,H]
//   model.layers.{i}.input_layernorm.weight           [H]
//   model.layers.{i}.self_attn.qkv_proj.weight        [(heads + 2*kv_heads)*head_dim, H]  q | k | v rows
//   model.layers.{i}.self_attn.o_proj.weight          [H, heads*head_dim]
//   model.layers.{i}.post_attention_layernorm.weight  [H]
//   model.layers.{i}.mlp.gate_up_proj.weight          [2*I, H]  gate rows first, then up
//   model.layers.{i}.mlp.down_proj.weight             [H, I]
//   model.norm.weight                                 [H]
//   lm_head.weight                                    [V,H]  absent when tie_word_embeddings
//                                                             (the logits then use embed_tokens)
// No biases (HF's Phi3 has none; a config with attention_bias true is refused).
//
// Numerics, per layer (eval mode: the dropouts are identities):
//   RMSNorm as Phi3RMSNorm: x32 = x.to(f32); x32 *= rsqrt(mean(x32^2) + eps); weight * x32.to(x.dtype)
//   x = x + o_proj(attn(input_layernorm(x))); x = x + down(silu(gate) * up)(post_attention_layernorm(x))
//   In training mode, as transformers' Phi3: dropout resid_pdrop on each residual branch before the
//   add, and attention_dropout on the attention probabilities (sdpa's dropout_p); embd_pdrop is
//   read by no module there and is ignored here too.
//   attention: q,k,v split from qkv_proj, partial RoPE on the first rotary_dim = int(head_dim *
//   partial_rotary_factor) dims of each head with HF's rotate_half convention (cat(-x2, x1)), the
//   other dims passed through; torch's scaled_dot_product_attention with scale head_dim^-0.5, called
//   as transformers' sdpa_attention_forward calls it (GQA by enable_gqa when there is no mask, by
//   folding the query heads for one-token steps with a mask, else by repeating k/v; is_causal only
//   when no mask is needed), so that CPU results are bit-identical to transformers on the same torch.
//   The mask is built as masking_utils.sdpa_mask does: none when there is no padding and
//   (T == 1 or T == cached+T), else a boolean [B,1,T,KV] mask: causal over cache indices, the
//   [B,KV] padding mask, and the sliding window (kv > q - sliding_window) when set and reached.
// RoPE: cos/sin computed in float32 as position_ids.float()[..., None] * inv_freq, duplicated,
//   times the attention scaling, then cast to the activation dtype.
//   - rope_scaling null / type "default": inv_freq = 1 / theta^(arange(0,dim,2)/dim), scaling 1.
//   - "longrope" ("su" and "yarn" are read as longrope, as HF's Phi3Config does): inv_freq =
//     1 / (factor_i * theta^(2i/dim)) with the short factors, or with the long factors when the
//     forward's max(position_ids)+1 > original_max_position_embeddings (transformers'
//     longrope_frequency_update: one choice per forward, from the positions of that forward, so
//     cached keys keep the factors they were computed with). Attention scaling (always applied):
//     attention_factor if given, else 1 when factor <= 1, else sqrt(1 + ln(factor)/ln(orig)) with
//     factor = rope_scaling.factor or max_position_embeddings / original_max_position_embeddings.
//   Any other rope type is refused: "unknown rope_scaling type 'X'" (exit 3).
//   generate() (generate.h) re-runs the whole sequence when it first grows past
//   original_max_position_embeddings, as Phi3ForCausalLM.prepare_inputs_for_generation does.
//
// Positions: forward() takes position_ids [B,T] or [1,T]; when not given they come from the
// attention mask as HF generate computes them (cumsum(mask)-1, 0 at padding, the last T columns),
// or are past..past+T-1 without a mask. With padding (left or right), pass the [B, past+T] 0/1 mask.
//
// dtypes: fp32, bf16, fp16 (checkpoints of any float dtype are cast while loading); devices: any
// (all tensors follow the module's device). int8 weight-only (quantize_int8): see Phi3LinearImpl.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/torch.h>

#include "hse/config/phi3.h"
#include "hse/model/checkpoint.h"

namespace hse::model {

// The KV cache of one batch: per layer keys/values [B, kv_heads, length, head_dim] in the
// activation dtype, stored in buffers that grow by doubling (appending is amortised O(T)).
class KVCache {
 public:
  std::int64_t length() const { return len_.empty() ? 0 : len_[0]; }  // cached positions (padding included)
  std::int64_t batch() const { return k_.empty() || !k_[0].defined() ? 0 : k_[0].size(0); }
  bool empty() const { return length() == 0; }
  void clear();
  // Beam search: row r of the new cache is row index[r] of the old one (index: int64 [B']).
  void reorder(const torch::Tensor& index);
  // Appends k,v [B, kv_heads, T, head_dim] for `layer`; returns views of the whole cached k,v.
  std::pair<torch::Tensor, torch::Tensor> update(std::size_t layer, const torch::Tensor& k, const torch::Tensor& v);

 private:
  std::vector<torch::Tensor> k_, v_;
  std::vector<std::int64_t> len_;
};

// A bias-free Linear (y = x W^T) whose weight may be stored as int8.
//
// int8 weight-only (quantize_int8): per output channel o, scale_o = max_i |W_oi| / 127 (1 for an
// all-zero row), q_oi = round(W_oi / scale_o) clamped to [-127, 127], stored as an int8 buffer
// "weight_int8" [out,in] and a float32 buffer "weight_scale" [out]; the "weight" parameter is removed.
// forward dequantises on the fly: W' = q.to(x.dtype) * scale.to(x.dtype), then x W'^T, so only one
// layer's weight exists in the activation dtype at a time. The error per weight is at most
// scale_o/2. This is not bitsandbytes' LLM.int8 (no fp16 outlier columns, no int8 matmul): results
// are close to, not equal to, the authors' load_in_8bit runs. to(dtype) leaves int8 storage as it is.
class Phi3LinearImpl : public torch::nn::Module {
 public:
  Phi3LinearImpl(std::int64_t in_features, std::int64_t out_features, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  void quantize_int8();
  bool quantized() const { return qweight.defined(); }
  // The weight in `dtype` (dequantised when int8).
  torch::Tensor dense_weight(torch::Dtype dtype) const;

  // to(dtype) casts the base weight only: int8 storage and the LoRA weights keep their dtypes
  // (set_lora_dtype in lora.h changes the latter); to(device) moves everything.
  void to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Device device, bool non_blocking = false) override;

  std::int64_t in_features, out_features;
  torch::Tensor weight;   // [out,in]; undefined once quantised
  torch::Tensor qweight;  // int8 [out,in] ("weight_int8")
  torch::Tensor scale;    // float32 [out] ("weight_scale")

  // Optional LoRA delta (PEFT's lora.Linear; attached, merged, saved and loaded by lora.h). When
  // attached, two bias-free children are registered under PEFT's names, so the parameters are
  // "<this>.lora_A.weight" [r,in] and "<this>.lora_B.weight" [out,r], and forward is PEFT's:
  //   result = x W^T;  xl = x.to(lora dtype);  xl = dropout(xl, lora_dropout) in training;
  //   result = (result + lora_B(lora_A(xl)) * lora_scaling).to(result dtype)
  // (the sum in the promoted dtype, as torch promotes bf16 + fp32). When lora_merged, the delta
  // is inside `weight` and forward is the plain one.
  torch::nn::Linear lora_A{nullptr}, lora_B{nullptr};
  double lora_scaling = 1.0;
  double lora_dropout = 0.0;
  bool lora_merged = false;
  bool has_lora() const { return !lora_A.is_empty(); }
};
TORCH_MODULE(Phi3Linear);

class Phi3RMSNormImpl : public torch::nn::Module {
 public:
  Phi3RMSNormImpl(std::int64_t hidden, double eps, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(Phi3RMSNorm);

class Phi3EmbeddingImpl : public torch::nn::Module {
 public:
  Phi3EmbeddingImpl(std::int64_t vocab, std::int64_t hidden, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& ids);  // [..] int64 -> [.., H]
  torch::Tensor weight;
};
TORCH_MODULE(Phi3Embedding);

// What the layers of one forward share: the rotary cos/sin and the attention mask.
struct Phi3AttentionContext {
  torch::Tensor cos, sin;  // [B|1, T, rotary_dim], activation dtype
  torch::Tensor mask;      // bool [B,1,T,KV]; undefined: none needed
  bool is_causal = false;  // with no mask: causal when T > 1
  KVCache* cache = nullptr;
};

class Phi3AttentionImpl : public torch::nn::Module {
 public:
  Phi3AttentionImpl(const Phi3Config& c, std::size_t layer_idx, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const Phi3AttentionContext& ctx);
  Phi3Linear qkv_proj{nullptr}, o_proj{nullptr};
  std::int64_t heads, kv_heads, head_dim;
  std::size_t layer_idx;
  double attention_dropout = 0.0;
};
TORCH_MODULE(Phi3Attention);

class Phi3MLPImpl : public torch::nn::Module {
 public:
  Phi3MLPImpl(const Phi3Config& c, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);  // down(up * silu(gate)), [gate | up] = gate_up(x)
  Phi3Linear gate_up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Phi3MLP);

class Phi3DecoderLayerImpl : public torch::nn::Module {
 public:
  Phi3DecoderLayerImpl(const Phi3Config& c, std::size_t layer_idx, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const Phi3AttentionContext& ctx);
  Phi3RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Phi3Attention self_attn{nullptr};
  Phi3MLP mlp{nullptr};
  double resid_pdrop = 0.0;
};
TORCH_MODULE(Phi3DecoderLayer);

// HF's Phi3Model (the "model." part): embeddings, layers, final norm.
class Phi3ModelImpl : public torch::nn::Module {
 public:
  // Parameters are allocated uninitialised (torch::empty) with `options` (dtype, device):
  // load a checkpoint (load_phi3 / load_state) or initialise them before use.
  Phi3ModelImpl(const Phi3Config& c, const torch::TensorOptions& options = {});
  // inputs_embeds [B,T,H]; attention_mask [B, past+T] 0/1 (undefined: no padding);
  // position_ids [B,T] or [1,T] (undefined: see the file comment); cache appended to when given.
  // Returns the final-norm hidden states [B,T,H] in the activation dtype.
  torch::Tensor forward(const torch::Tensor& inputs_embeds, const torch::Tensor& attention_mask = {},
                        const torch::Tensor& position_ids = {}, KVCache* cache = nullptr);

  // The inverse frequencies (float32, CPU) a forward uses for `seq_len` = max(position_ids)+1.
  torch::Tensor inv_freq(std::int64_t seq_len) const;
  // cos, sin [.., T, rotary_dim] in `dtype` for position_ids (as Phi3RotaryEmbedding.forward).
  std::pair<torch::Tensor, torch::Tensor> rotary(const torch::Tensor& position_ids, torch::Dtype dtype) const;

  Phi3Config config;
  Phi3Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};  // of Phi3DecoderLayer
  Phi3RMSNorm norm{nullptr};

 private:
  torch::Tensor short_inv_freq_, long_inv_freq_;
  double attention_scaling_ = 1.0;
};
TORCH_MODULE(Phi3Model);

// Position ids as HF generate derives them from a [B,L] 0/1 mask: cumsum(mask)-1, 0 where mask is 0.
torch::Tensor phi3_position_ids(const torch::Tensor& attention_mask);

// HF's Phi3ForCausalLM.
class Phi3ForCausalLMImpl : public torch::nn::Module {
 public:
  explicit Phi3ForCausalLMImpl(const Phi3Config& c, const torch::TensorOptions& options = {});

  // Logits [B, T', V] in the activation dtype for input_ids [B,T] (int64); T' = T, or the last
  // `logits_to_keep` positions when > 0 (as HF's logits_to_keep). The other arguments as
  // Phi3ModelImpl::forward.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                        const torch::Tensor& position_ids = {}, KVCache* cache = nullptr,
                        std::int64_t logits_to_keep = 0);
  // The same from inputs_embeds [B,T,H] (HSENet writes image tokens over embed(ids)[:, 1:257]).
  torch::Tensor forward_embeds(const torch::Tensor& inputs_embeds, const torch::Tensor& attention_mask = {},
                               const torch::Tensor& position_ids = {}, KVCache* cache = nullptr,
                               std::int64_t logits_to_keep = 0);
  // model.embed_tokens(input_ids): [B,T] -> [B,T,H] in the parameters' dtype.
  torch::Tensor embed(const torch::Tensor& input_ids);
  // lm_head (or the tied embedding) on hidden states [.., H].
  torch::Tensor logits(const torch::Tensor& hidden);

  // int8 weight-only quantisation of every decoder Linear (qkv_proj, o_proj, gate_up_proj,
  // down_proj); the embedding, lm_head and norms stay in their dtype. See Phi3LinearImpl.
  void quantize_int8();
  bool quantized() const;

  torch::Device device() const;
  torch::Dtype dtype() const;  // the activation dtype (the embedding's)

  Phi3Config config;
  Phi3Model model{nullptr};
  Phi3Linear lm_head{nullptr};  // null when tie_word_embeddings
  // Where the weights came from (load_phi3's path; empty otherwise). lora.h compares its last
  // path component with an adapter's base_model_name_or_path.
  std::string name_or_path;
};
TORCH_MODULE(Phi3ForCausalLM);

struct Phi3LoadOptions {
  torch::Dtype dtype = torch::kFloat32;  // fp32, bf16 or fp16
  torch::Device device = torch::kCPU;
  bool int8 = false;           // quantize_int8() after loading
  bool allow_partial = false;  // load what matches (see model::load_state)
  std::string prefix;          // key prefix of the Phi3ForCausalLM tensors ("" for HF files)
  // Checkpoint key prefixes (after `prefix`) that are not the decoder's and are skipped without
  // error, e.g. {"model.mm_projector", "model.vision_tower"} for a merged LamedPhi3 checkpoint.
  std::vector<std::string> ignore_unexpected;
};

// Loads a Phi3ForCausalLM from `path`: an HF model directory (config.json + model.safetensors or
// a sharded model.safetensors.index.json), or a .safetensors / index file with config.json beside
// it. Key mismatches throw cli::Error (exit 3) naming the checkpoint unless allow_partial; a tied
// model ignores a stray lm_head.weight. Parameters do not require grad (HSENet freezes the LLM).
// The model is in eval mode.
Phi3ForCausalLM load_phi3(const std::string& path, const Phi3LoadOptions& options = {});
Phi3ForCausalLM load_phi3(const Phi3Config& config, const std::string& weights, const Phi3LoadOptions& options = {});

// Writes an HF directory (config.json + model.safetensors, in the model's dtype: F32, BF16 or F16).
// Throws cli::Error (exit 1) for an int8-quantised model (its weights are not HF's). LoRA weights
// (lora.h) are not written: a merged LoRA is saved inside the base weights, an unmerged one not at all.
void save_phi3(const Phi3ForCausalLM& model, const std::string& dir);

}  // namespace hse::model
