// The HSENet vision-language model (hsenet-spec §0, §3 "LLM input assembly", §4, §8): two Spatial
// Packers (packer.h) over the patch tokens of the two 3-D towers, Phi-4-mini (phi3.h) with LoRA
// (lora.h), the text layout, labels and loss of the published training code, and generation.
//
// Mapping to the published code (LamedPhi3ForCausalLM, lamed_arch.py, train_VLM.py):
//   mm_projector  (packer #1) <- stage-1 3D-ViT patch tokens [B, N, 768] (CLS dropped)
//   mm_projector2 (packer #2) <- 2E3 ViT patch tokens        [B, N, 768] (CLS dropped)
//   image = cat([mm_projector(t1), mm_projector2(t2)], 1)                [B, n_img = 128+128, 3072]
//   inputs_embeds = cat(E[:, :1], image, E[:, 1+n_img:]),  E = embed_tokens(input_ids)
//     (prepare_inputs_for_multimodal: positions 1..n_img are overwritten whatever their ids; no
//     separators; position 0 must be BOS <|endoftext|>)
//   single-encoder option (dual_encoder false, the paper's Table 3 ablations): only mm_projector,
//   fed with the tower named by `tower` ("3d": t1, "2e3": t2); n_img = mm_projector's token count.
// Text layout (token ids; no chat template):
//   prompt   = [bos] + [im_patch] * n_img + question_ids
//   training = prompt + answer_ids (the tokens of " " + answer, add_special_tokens=False),
//              truncated to max_length, padded with pad to max_length, and EOS written at index
//              valid_len when it fits (attention_mask stays 0 there, as in the published dataset);
//   labels   = input_ids with -100 over the first min(len(prompt), max_length) positions; when
//              pad == eos, every pad/eos id is set to -100 and then labels[valid_len] = eos again;
//              otherwise every pad id is -100. (LaMed's dataset __getitem__, verbatim logic.)
//   loss     = transformers' ForCausalLMLoss: logits.float(), shift by one, cross-entropy with
//              ignore_index -100, mean over the counted tokens.
//   Training forward uses position_ids arange(T) (transformers' default cache_position), with the
//   [B,T] attention mask for padding.
// Generation: prompt ids right-padded, image tokens assembled into embeddings, then decode/decode.h's
// prompt-embeddings entry (which re-packs to left padding as HF generate does). HSENet: greedy,
// max_new_tokens 512 (MRG) or 74 (VQA), stop id 199999.
// Vocabulary (LaMed initialize_vision_tokenizer): with vocab_size > 0 the embedding (and an untied
// lm_head) is resized to vocab_size rows (truncated, or grown), then the last num_new_tokens rows
// are set to the mean of the rows before them (HSENet: the tokenizer's length, 4 new tokens; the
// exact length is UNCONFIRMED, read it from the Python tokenizer). Deviations: the mean is taken
// in float32 then cast (HF: in the weight dtype); rows added by growing that are not among the
// last num_new_tokens are also set to the mean (HF samples them around the mean).
//
// Weights: parameters keep the published names
//   base_model.model.model.mm_projector{,2}.<packer keys>            (packer.h)
//   base_model.model.model.layers.{i}.<module>.lora_{A,B}.default.weight   (lora.h, published form)
// load_vlm_state accepts the LoRA keys with or without ".default.".
// Files:
//  - The published pytorch_model.bin (a pickle) must first be converted with
//    scripts/convert_hsenet_vlm.py (torch.load(weights_only=True) -> safetensors, same names).
//  - An hse adapter directory: hse_vlm.json (the VlmConfig as JSON: packer configs, the PEFT LoRA
//    config, the LLM directory, vocabulary, image token count, special token ids) and
//    adapter.safetensors (packers + LoRA, published names, float32), written atomically.
// Strictness: unknown, missing or mis-shaped keys throw cli::Error exit 3 naming the file unless
// allow_partial; an adapter whose LoRA config names another base model (last path component of
// base_model_name_or_path vs the LLM directory) or whose shapes do not fit the LLM also exits 3.
// Dtypes: packers and LoRA in float32 (the published towers/packers are fp32); the LLM in the
// chosen dtype (fp32, bf16, fp16; int8 weight-only after an optional merge).
// Parity (tests/parity/test_packer.py: transformers Phi3ForCausalLM + peft LoRA + reference
// packers, checkpoint made as HSENet makes it and converted by the script, fp32 CPU):
// inputs_embeds rel 3.9e-7, logits max|diff| 4e-6, loss equal to transformers' labels loss,
// greedy tokens identical to HF generate(inputs_embeds=...), labels identical to LaMed's logic.
// Not modelled: the authors' bitsandbytes LLM.int8 and fp16 autocast (hse's int8 is per-row
// weight-only, see phi3.h), so outputs are close to, not equal to, theirs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "hse/config/vlm.h"
#include "hse/model/lora.h"
#include "hse/model/packer.h"
#include "hse/model/phi3.h"

namespace hse::model {

inline const char* kVlmWeightsFile = "adapter.safetensors";
inline const char* kVlmPrefix = "base_model.model.model.";  // + "mm_projector." / "mm_projector2."

// ---- text layout, labels, loss (free functions; token ids in, tensors out)

// [bos] + [im_patch] * image_tokens + question_ids.
std::vector<std::int64_t> vlm_prompt_ids(const VlmTokens& tokens, std::int64_t image_tokens,
                                         const std::vector<std::int64_t>& question_ids);

struct VlmExample {
  std::vector<std::int64_t> input_ids, labels, attention_mask;  // each max_length long
  std::int64_t valid_len = 0;                                   // tokens before padding
};
// The published training example (see the file comment). tokens.im_patch must be resolved (>= 0).
// Throws cli::Error (exit 2) when max_length < 1.
VlmExample vlm_train_example(const VlmTokens& tokens, std::int64_t image_tokens,
                             const std::vector<std::int64_t>& question_ids,
                             const std::vector<std::int64_t>& answer_ids, std::int64_t max_length);

struct VlmBatch {
  torch::Tensor input_ids, attention_mask, labels;  // int64 [B, L]
};
// Stacks examples of equal length (cli::Error exit 2 otherwise).
VlmBatch vlm_collate(const std::vector<VlmExample>& examples);

// cat(text[:, :1], image, text[:, 1+n:]) with n = image.size(1); text [B,T,H] with T >= 1+n,
// image [B,n,H]. The result has torch's promoted dtype of the two (as torch.cat).
torch::Tensor assemble_inputs_embeds(const torch::Tensor& text_embeds, const torch::Tensor& image_embeds);

// Shifted causal-LM cross-entropy (float32), ignore_index -100, mean over counted tokens.
torch::Tensor causal_lm_loss(const torch::Tensor& logits, const torch::Tensor& labels);

// Resizes the LLM's vocabulary (see the file comment); updates the configs' vocab_size.
void resize_token_embeddings(Phi3ForCausalLMImpl& llm, std::int64_t new_vocab, std::int64_t num_new_tokens);

// Drops the CLS token when x has one token more than `grid_tokens` ([B, 1+N, C] -> [B, N, C]).
torch::Tensor drop_cls(const torch::Tensor& x, std::int64_t grid_tokens);

// ---- the model
class HsenetVlmImpl : public torch::nn::Module {
 public:
  // Builds the packers (float32, PyTorch default init, on the LLM's device), resizes the LLM's
  // vocabulary when the config says so, and attaches LoRA (use_lora; PEFT init, LoRA float32).
  // Throws cli::Error (exit 3) when the packers' out_dim differs from the LLM's hidden size or the
  // image does not fit the token ids.
  HsenetVlmImpl(const VlmConfig& config, Phi3ForCausalLM llm);

  // The special ids with im_patch resolved.
  VlmTokens tokens() const;
  std::int64_t image_tokens() const { return config.image_tokens(); }

  // Packed image tokens [B, n_img, H]: cat(mm_projector(t1), mm_projector2(t2)); when !dual_encoder
  // only mm_projector of the configured tower's tokens (the other may be undefined). t1/t2: [B, N, C] patch tokens, or [B, 1+N, C] with CLS
  // (dropped). Float32.
  torch::Tensor image_embeds(const torch::Tensor& t1, const torch::Tensor& t2 = {});
  // inputs_embeds for input_ids [B,T] (T >= 1 + n_img).
  torch::Tensor inputs_embeds(const torch::Tensor& input_ids, const torch::Tensor& t1, const torch::Tensor& t2 = {});
  // Logits [B,T,V] (training forward: position_ids arange(T), the [B,T] mask for padding).
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask, const torch::Tensor& t1,
                        const torch::Tensor& t2 = {});
  // causal_lm_loss(forward(...), labels).
  torch::Tensor loss(const torch::Tensor& input_ids, const torch::Tensor& attention_mask, const torch::Tensor& labels,
                     const torch::Tensor& t1, const torch::Tensor& t2 = {});
  // The trainable set: packers' parameters then LoRA factors (HSENet trains only these).
  std::vector<torch::Tensor> trainable_parameters();
  // The same with their published names (see the file comment; LoRA in the ".default." form).
  std::vector<std::pair<std::string, torch::Tensor>> named_trainable_parameters();

  VlmConfig config;
  SpatialPacker mm_projector{nullptr}, mm_projector2{nullptr};  // mm_projector2 null when !dual_encoder
  Phi3ForCausalLM llm{nullptr};
};
TORCH_MODULE(HsenetVlm);

// Adds the packers and LoRA weights (float32) under the published names.
void add_vlm_state(io::SafeTensorsWriter& w, HsenetVlmImpl& vlm, LoraKeyForm lora_form = LoraKeyForm::published);
// Loads packers + LoRA from a published-layout file (either LoRA key form); every key of the file
// must be used and every parameter found unless allow_partial (cli::Error exit 3 naming the file).
LoadReport load_vlm_state(HsenetVlmImpl& vlm, const io::SafeTensorsSet& ckpt, bool allow_partial = false);

// Writes <dir>/hse_vlm.json (llm: the config's, else the LLM's name_or_path) and
// <dir>/adapter.safetensors (LoRA must be unmerged: exit 1).
void save_vlm_adapter(HsenetVlmImpl& vlm, const std::string& dir);

struct VlmLoadOptions {
  torch::Dtype dtype = torch::kFloat32;  // the LLM's dtype
  torch::Device device = torch::kCPU;
  bool merge_lora = false;     // merge LoRA into the LLM weights after loading
  bool int8 = false;           // then quantise the LLM int8 weight-only (see phi3.h)
  bool allow_partial = false;  // load what matches
  bool check_base_name = true; // the adapter's base_model_name_or_path vs the LLM directory
  std::string llm;             // the LLM directory; overrides the config's
  // For a published-layout .safetensors (no hse_vlm.json): the config to build (default: HSENet's).
  std::optional<VlmConfig> config;
};

// Loads a VLM from an hse adapter directory (hse_vlm.json + adapter.safetensors) or from a
// published-layout .safetensors (converted HSENet pytorch_model.bin; options.config, else
// VlmConfig's defaults, and options.llm). A .bin path exits 3 with the conversion hint. The
// result is in eval mode.
HsenetVlm load_vlm(const std::string& path, const VlmLoadOptions& options = {});

}  // namespace hse::model
