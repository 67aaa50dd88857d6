#include "hse/config/vlm.h"

#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/config/files.h"
#include "hse/config/json.h"

namespace hse::model {

namespace {

constexpr const char* kWhat = "vlm";
using nlohmann::json;

[[noreturn]] void bad(const std::string& src, const std::string& msg) {
  throw cli::Error(cli::Exit::incompatible, src, fmt::format("vlm config: {}", msg));
}

}  // namespace

// ------------------------------------------------------------------ config
std::int64_t VlmConfig::image_tokens() const {
  return packer.num_tokens() + (dual_encoder ? packer2.num_tokens() : 0);
}

void VlmConfig::validate(const std::string& src) const {
  packer.validate(src);
  if (dual_encoder) {
    packer2.validate(src);
    if (packer2.out_dim != packer.out_dim)
      bad(src, fmt::format("the packers' out_dim differ ({} vs {})", packer.out_dim, packer2.out_dim));
  }
  if (use_lora) lora.validate(src);
  if (vocab_size < 0 || num_new_tokens < 0) bad(src, "vocab_size and num_new_tokens must be >= 0");
  if (vocab_size > 0 && num_new_tokens >= vocab_size) bad(src, "num_new_tokens must be smaller than vocab_size");
  if (tokenizer_mode != "fast" && tokenizer_mode != "slow")
    bad(src, fmt::format("tokenizer_mode must be \"fast\" or \"slow\", got \"{}\"", tokenizer_mode));
  if (!compat.empty() && compat != "hsenet") bad(src, fmt::format("compat must be \"hsenet\" or absent, got \"{}\"", compat));
  for (auto [name, v] : {std::pair<const char*, std::int64_t>{"bos", tokens.bos}, {"eos", tokens.eos}, {"pad", tokens.pad}})
    if (v < 0) bad(src, fmt::format("token id '{}' must be >= 0", name));
}

VlmConfig VlmConfig::from_json(const json& j, const std::string& src) {
  if (!j.is_object()) bad(src, "not a JSON object");
  cfg::check_depth(kWhat, j, src);
  VlmConfig c;
  if (const json* f = cfg::field(j, {"format"})) {
    if (!f->is_string() || f->get<std::string>() != "hse-vlm")
      bad(src, fmt::format("format {} is not \"hse-vlm\"", f->dump()));
  }
  if (const json* v = cfg::field(j, {"version"})) {
    if (!v->is_number_integer() || v->get<std::int64_t>() != 1)
      bad(src, fmt::format("unsupported version {} (this hse reads version 1)", v->dump()));
  }
  if (const json* p = cfg::field(j, {"packer", "mm_projector"})) c.packer = PackerConfig::from_json(*p, src);
  cfg::get_bool(kWhat, j, "dual_encoder", c.dual_encoder, src);
  if (const json* t = cfg::field(j, {"tower"})) {
    if (!t->is_string() || (t->get<std::string>() != "3d" && t->get<std::string>() != "2e3"))
      cfg::bad_field(kWhat, src, "tower", *t, "\"3d\" or \"2e3\"");
    c.tower = t->get<std::string>();
  }
  if (const json* p = cfg::field(j, {"packer2", "mm_projector2"})) c.packer2 = PackerConfig::from_json(*p, src);
  if (auto it = j.find("lora"); it != j.end()) {
    if (it->is_null()) {
      c.use_lora = false;
    } else {
      c.use_lora = true;
      c.lora = LoraConfig::from_json(*it, src);
    }
  }
  if (const json* v = cfg::field(j, {"llm"})) {
    if (!v->is_string()) cfg::bad_field(kWhat, src, "llm", *v, "a string");
    c.llm = v->get<std::string>();
  }
  cfg::get_int(kWhat, j, {"vocab_size"}, c.vocab_size, src);
  cfg::get_int(kWhat, j, {"num_new_tokens"}, c.num_new_tokens, src);
  if (const json* t = cfg::field(j, {"tokens"})) {
    if (!t->is_object()) cfg::bad_field(kWhat, src, "tokens", *t, "an object");
    cfg::get_int(kWhat, *t, {"bos"}, c.tokens.bos, src);
    cfg::get_int(kWhat, *t, {"eos"}, c.tokens.eos, src);
    cfg::get_int(kWhat, *t, {"pad"}, c.tokens.pad, src);
    cfg::get_int(kWhat, *t, {"im_patch"}, c.tokens.im_patch, src);
  }
  if (const json* in = cfg::field(j, {"inputs"})) {
    if (!in->is_object()) cfg::bad_field(kWhat, src, "inputs", *in, "an object");
    c.inputs = in->dump();
  }
  for (auto [key, dst] : {std::pair<const char*, std::string*>{"tokenizer_mode", &c.tokenizer_mode}, {"compat", &c.compat}})
    if (const json* v = cfg::field(j, {key})) {
      if (!v->is_string()) cfg::bad_field(kWhat, src, key, *v, "a string");
      *dst = v->get<std::string>();
    }
  if (const json* n = cfg::field(j, {"image_tokens"})) {
    if (!n->is_number_integer() || n->get<std::int64_t>() != c.image_tokens())
      bad(src, fmt::format("image_tokens {} does not match the packers ({} tokens)", n->dump(), c.image_tokens()));
  }
  c.validate(src);
  return c;
}

VlmConfig VlmConfig::from_file(const std::string& path) {
  std::string file;
  const json j = read_json_input(path, kVlmConfigFile, "VLM config", file);
  return from_json(j, file);
}

json VlmConfig::to_json() const {
  json j{{"format", "hse-vlm"},
         {"version", 1},
         {"packer", packer.to_json()},
         {"dual_encoder", dual_encoder},
         {"llm", llm},
         {"vocab_size", vocab_size},
         {"num_new_tokens", num_new_tokens},
         {"image_tokens", image_tokens()},
         {"tokens", {{"bos", tokens.bos}, {"eos", tokens.eos}, {"pad", tokens.pad}, {"im_patch", tokens.im_patch}}}};
  if (dual_encoder) j["packer2"] = packer2.to_json();
  else j["tower"] = tower;
  j["lora"] = use_lora ? lora.to_json() : json(nullptr);
  if (!inputs.empty()) j["inputs"] = json::parse(inputs);
  j["tokenizer_mode"] = tokenizer_mode;
  if (!compat.empty()) j["compat"] = compat;
  return j;
}

}  // namespace hse::model
