// Model configs (lib/hse/config/, libhse without LibTorch): the input parsed as JSON (input that is
// not JSON is a normal outcome), then every config's from_json on it: BERT, 3-D and 2-D ViT, CLIP,
// LoRA (adapter_config.json), packer, Phi-3 and the VLM (hse_vlm.json). A config that parses must
// give the sizes the models compute from it without overflow; it is written back with to_json and
// the result parsed again.
#include <nlohmann/json.hpp>

#include "fuzz_common.h"
#include "hse/config/bert.h"
#include "hse/config/clip.h"
#include "hse/config/lora.h"
#include "hse/config/packer.h"
#include "hse/config/phi3.h"
#include "hse/config/vit2d.h"
#include "hse/config/vit3d.h"
#include "hse/config/vlm.h"

namespace {

using namespace hse::model;

template <class... T>
void use(const T&...) {}

// The sizes the models compute from a validated config.
void sizes(const BertConfig& c) { use(c.act()); }
void sizes(const Vit3dConfig& c) { use(c.num_patches(), c.patch_dim(), c.head_dim()); }
void sizes(const Vit2dConfig& c) { use(c.num_tokens(), c.mlp_hidden(), c.head_dim()); }
void sizes(const ClipConfig& c) {
  sizes(c.vision);
  sizes(c.text);
}
void sizes(const LoraConfig& c) {  // the module names of Phi-3 that PEFT's matching sees
  use(c.targets("model.layers.0.self_attn.qkv_proj"), c.targets("model.layers.31.mlp.down_proj"),
      c.targets("lm_head"));
}
void sizes(const PackerConfig& c) {
  use(c.num_tokens(), c.num_patches(), c.window_size(), c.heads(), c.intermediate(), c.hidden());
}
void sizes(const Phi3Config& c) {
  use(c.kv_heads(), c.head_size(), c.rotary_dim(), c.rope_attention_scaling());
}
void sizes(const VlmConfig& c) {
  sizes(c.packer);
  sizes(c.packer2);
  use(c.image_tokens());
}

template <class Config>
void parse_and_round_trip(const nlohmann::json& j) {
  hse_fuzz::refused_or_parsed([&] {
    const Config c = Config::from_json(j, "fuzz/config.json");
    sizes(c);
    const nlohmann::json out = c.to_json();
    (void)out.dump();
    const Config again = Config::from_json(out, "fuzz/config.json (written)");
    (void)again.to_json().dump();
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(hse_fuzz::bytes(data, size));
  } catch (const nlohmann::json::exception&) {  // parse_error, or out_of_range for 1e400
    return 0;
  }
  parse_and_round_trip<BertConfig>(j);
  parse_and_round_trip<Vit3dConfig>(j);
  parse_and_round_trip<Vit2dConfig>(j);
  parse_and_round_trip<ClipConfig>(j);
  parse_and_round_trip<LoraConfig>(j);
  parse_and_round_trip<PackerConfig>(j);
  parse_and_round_trip<Phi3Config>(j);
  parse_and_round_trip<VlmConfig>(j);
  return 0;
}
