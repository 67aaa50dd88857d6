// LoRA on the Phi-3 decoder with PEFT's semantics and file formats (peft 0.21.2, the same
// arithmetic as the peft 0.14 HSENet trained with; hsenet-spec §4, §8).
//
// Where the delta lives: inside phi3.h's Phi3LinearImpl (the decoder's Linear, optionally int8),
// as two registered bias-free children lora_A [r,in] and lora_B [out,r] plus a scaling, a dropout
// probability and a merged flag. Module paths are therefore HF's and PEFT's:
//   model.layers.{i}.self_attn.qkv_proj.lora_A.weight, ...
// The forward (Phi3LinearImpl::forward) is PEFT's lora.Linear.forward for one active adapter:
//   result = base(x); x' = x.to(lora dtype); result = result + lora_B(lora_A(dropout(x'))) * scaling;
//   result.to(base result dtype)        (dropout only in training mode, p = lora_dropout)
// scaling = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora.
// Initialisation (init_lora_weights true, PEFT's default): lora_A kaiming_uniform_(a = sqrt(5))
// (torch's nn.Linear weight init), lora_B zeros; "gaussian": lora_A normal(0, 1/r); false: lora_B
// also kaiming_uniform_(a = sqrt(5)) (PEFT leaves nn.Linear's init, which is that).
// Base weights are frozen by apply_lora (requires_grad false); LoRA weights require grad.
// LoRA weights are float32 by default whatever the base dtype (PEFT's autocast_adapter_dtype=True
// upcasts bf16/fp16 adapters), and Module::to(dtype) leaves them alone (see Phi3LinearImpl::to).
//
// Target selection is PEFT's check_target_module_exists over the names of the model's Linear
// modules (the four decoder projections of every layer, and lm_head when untied):
//   list form: name == t or name ends with "." + t;  string form (target_regex): std::regex
//   full match (ECMAScript; PEFT uses Python's re.fullmatch — plain patterns agree);
//   exclude_modules likewise; layers_to_transform / layers_pattern as PEFT (the first numbered
//   path component after a "<pattern>." or, with no pattern, after any component);
//   rank_pattern / alpha_pattern as PEFT's get_pattern_key (first key K with "(.*\.)?(K)$" matching;
//   hse tries the keys in sorted order, PEFT in the JSON's order: they differ only when several
//   patterns match one module).
// HSENet: r 16, alpha 32 (scaling 2), dropout 0.05, qkv_proj/o_proj/gate_up_proj/down_proj of all
// 32 layers = 128 modules, about 23.07 M parameters.
//
// Files:
//  - adapter_config.json: PEFT's LoraConfig JSON. Read: r, lora_alpha, lora_dropout,
//    target_modules (list or regex string), exclude_modules, layers_to_transform, layers_pattern,
//    rank_pattern, alpha_pattern, bias ("none" only), task_type, base_model_name_or_path,
//    use_rslora, init_lora_weights, peft_type ("LORA"); fields that change the arithmetic and
//    are not supported (use_dora, lora_bias, fan_in_fan_out, modules_to_save, target_parameters,
//    layer_replication, trainable_token_indices, use_qalora, alora_invocation_tokens, ...) must be
//    null/false/empty, else cli::Error exit 3 naming the file. Unknown fields are kept and written
//    back. Written: PEFT 0.21.2's field set with our values, so PeftModel.from_pretrained reads it.
//  - adapter_model.safetensors: PEFT's saved names, "base_model.model." + module path +
//    ".lora_A.weight" / ".lora_B.weight" (get_peft_model_state_dict drops the adapter name), metadata
//    {"format": "pt"}. Loading also accepts the in-memory names with ".default." before "weight"
//    (HSENet's pickle converted by scripts/convert_hsenet_vlm.py).
//  Key mismatches (missing, unexpected, mis-shaped: an adapter for another base model) throw
//  cli::Error exit 3 naming the file unless allow_partial; so does a base_model_name_or_path whose
//  last path component differs from the model's (Phi3ForCausalLMImpl::name_or_path), when both
//  are known and check_base_name.
//
// Merge: W <- (W.float() + scaling * (B.float() @ A.float())).to(W dtype) (one rounding, as
// PEFT's in-place `weight.data += delta` on a bf16/fp16 weight); unmerge subtracts the same delta
// (exact in fp32 up to rounding; as in PEFT, not bit-reversible in bf16/fp16). An int8-quantised
// layer cannot be merged (merge first, then quantize_int8): cli::Error exit 1.
//
// Parity (tests/parity/test_lora.py, peft 0.21.2, fp32 CPU): logits bit-identical to PeftModel's
// (max |diff| 0) for PEFT-saved, ".default."-named and rslora/rank_pattern/alpha_pattern adapters;
// PeftModel.from_pretrained on an hse-saved adapter gives identical logits; merged vs unmerged
// within 1e-5; PEFT's initialisation under the same torch seed is reproduced bit for bit.
// Deviations: std::regex (ECMAScript) stands in for Python's re in the regex forms; the
// pattern order noted above; LoRA on Embedding/Conv layers, DoRA and the other PEFT variants are
// not implemented (refused when a config asks for them).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "hse/config/lora.h"
#include "hse/io/safetensors.h"
#include "hse/model/checkpoint.h"
#include "hse/model/phi3.h"

namespace hse::model {

struct LoraApplyOptions {
  torch::Dtype dtype = torch::kFloat32;  // LoRA weights' dtype (PEFT: float32 for bf16/fp16 bases)
  bool freeze_base = true;               // requires_grad false on every non-LoRA parameter
};

// Attaches LoRA to every Linear module of `model` that `config` targets (replacing a LoRA already
// attached, which is unmerged first), initialised as PEFT does with torch's global generator (CPU,
// or the model's device). Returns the adapted module names in model order. Throws cli::Error
// (exit 3) when nothing matches (PEFT raises too) or a rank is < 1.
std::vector<std::string> apply_lora(Phi3ForCausalLMImpl& model, const LoraConfig& config,
                                    const LoraApplyOptions& options = {});

// The adapted layers, in model order: (module name, layer).
std::vector<std::pair<std::string, Phi3LinearImpl*>> lora_layers(Phi3ForCausalLMImpl& model);
bool has_lora(Phi3ForCausalLMImpl& model);
// lora_A and lora_B weights of every adapted layer (A then B, in model order): the trainable set.
std::vector<torch::Tensor> lora_parameters(Phi3ForCausalLMImpl& model);
std::int64_t lora_parameter_count(Phi3ForCausalLMImpl& model);
// Casts the LoRA weights (not the base weights) to `dtype`.
void set_lora_dtype(Phi3ForCausalLMImpl& model, torch::Dtype dtype);
// Removes the LoRA children (unmerging first when merged).
void remove_lora(Phi3ForCausalLMImpl& model);

// W += scaling * B@A into every adapted base weight (no-op for merged layers); forward then uses
// the base weight alone. Throws cli::Error (exit 1) for int8-quantised layers.
void merge_lora(Phi3ForCausalLMImpl& model);
// W -= scaling * B@A (no-op for unmerged layers).
void unmerge_lora(Phi3ForCausalLMImpl& model);
bool lora_merged(Phi3ForCausalLMImpl& model);  // true when every adapted layer is merged

enum class LoraKeyForm {
  peft,       // "<prefix><module>.lora_A.weight" (PEFT's adapter_model.safetensors)
  published,  // "<prefix><module>.lora_A.default.weight" (in-memory PeftModel names; HSENet's pickle)
};
inline const char* kPeftPrefix = "base_model.model.";

// Adds the LoRA weights to `w` (as float32 unless `dtype` says otherwise).
void add_lora_state(io::SafeTensorsWriter& w, Phi3ForCausalLMImpl& model, LoraKeyForm form = LoraKeyForm::peft,
                    io::Dtype dtype = io::Dtype::F32, const std::string& prefix = kPeftPrefix);

// Loads the LoRA weights of the adapted layers from `ckpt` (either key form). Keys consumed are
// added to `consumed` when given. Missing and mis-shaped keys are reported; unexpected keys are
// those under `prefix` containing ".lora_" that no adapted layer takes. Throws cli::Error (exit 3,
// naming the file) when !allow_partial and the report is not clean.
LoadReport load_lora_state(Phi3ForCausalLMImpl& model, const io::SafeTensorsSet& ckpt, bool allow_partial = false,
                           const std::string& prefix = kPeftPrefix, std::set<std::string>* consumed = nullptr);

// Writes a PEFT adapter directory: adapter_config.json (config with r etc.; base_model_name_or_path
// from the model when the config has none) and adapter_model.safetensors (PEFT names, float32).
// The model's LoRA must be unmerged (cli::Error exit 1 otherwise: PEFT saves the factors, which a
// merged model still has, but the round trip is clearer this way).
void save_lora_adapter(Phi3ForCausalLMImpl& model, const LoraConfig& config, const std::string& dir);

struct LoraLoadOptions {
  bool allow_partial = false;
  bool check_base_name = true;  // compare base_model_name_or_path with the model's name_or_path
  LoraApplyOptions apply;
};

// Reads a PEFT adapter (a directory with adapter_config.json + adapter_model.safetensors, or the
// .safetensors file with adapter_config.json beside it), attaches it to `model` (apply_lora with
// the file's config) and loads its weights. Returns the config. Errors as described above.
LoraConfig load_lora_adapter(Phi3ForCausalLMImpl& model, const std::string& path,
                             const LoraLoadOptions& options = {});

}  // namespace hse::model
