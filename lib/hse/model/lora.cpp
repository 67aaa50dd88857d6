#include "hse/model/lora.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "hse/cli/cli.h"
#include "hse/config/files.h"

namespace fs = std::filesystem;

namespace hse::model {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string last_component(std::string p) {
  while (p.size() > 1 && (p.back() == '/' || p.back() == '\\')) p.pop_back();
  fs::path fp(p);
  if (ends_with(p, ".safetensors") || ends_with(p, ".json")) fp = fp.parent_path();
  std::string name = fp.filename().string();
  return name.empty() ? p : name;
}


}  // namespace

// ------------------------------------------------------------------ attach
std::vector<std::pair<std::string, Phi3LinearImpl*>> lora_layers(Phi3ForCausalLMImpl& model) {
  std::vector<std::pair<std::string, Phi3LinearImpl*>> out;
  for (const auto& item : model.named_modules("", false)) {
    auto* lin = dynamic_cast<Phi3LinearImpl*>(item.value().get());
    if (lin && lin->has_lora()) out.emplace_back(item.key(), lin);
  }
  return out;
}

bool has_lora(Phi3ForCausalLMImpl& model) { return !lora_layers(model).empty(); }

std::vector<torch::Tensor> lora_parameters(Phi3ForCausalLMImpl& model) {
  std::vector<torch::Tensor> out;
  for (auto& [name, l] : lora_layers(model)) {
    out.push_back(l->lora_A->weight);
    out.push_back(l->lora_B->weight);
  }
  return out;
}

std::int64_t lora_parameter_count(Phi3ForCausalLMImpl& model) {
  std::int64_t n = 0;
  for (const auto& t : lora_parameters(model)) n += t.numel();
  return n;
}

void set_lora_dtype(Phi3ForCausalLMImpl& model, torch::Dtype dtype) {
  for (auto& [name, l] : lora_layers(model)) {
    l->lora_A->to(dtype);
    l->lora_B->to(dtype);
  }
}

void remove_lora(Phi3ForCausalLMImpl& model) {
  unmerge_lora(model);
  for (auto& [name, l] : lora_layers(model)) {
    l->unregister_module("lora_A");
    l->unregister_module("lora_B");
    l->lora_A = nullptr;
    l->lora_B = nullptr;
    l->lora_merged = false;
    l->lora_scaling = 1.0;
    l->lora_dropout = 0.0;
  }
}

std::vector<std::string> apply_lora(Phi3ForCausalLMImpl& model, const LoraConfig& config,
                                    const LoraApplyOptions& options) {
  config.validate();
  remove_lora(model);
  std::vector<std::pair<std::string, Phi3LinearImpl*>> targets;
  for (const auto& item : model.named_modules("", false)) {
    auto* lin = dynamic_cast<Phi3LinearImpl*>(item.value().get());
    if (lin && config.targets(item.key())) targets.emplace_back(item.key(), lin);
  }
  if (targets.empty()) {
    const std::string what = config.target_regex.empty() ? fmt::format("{}", fmt::join(config.target_modules, ", "))
                                                         : config.target_regex;
    throw cli::Error(cli::Exit::incompatible, {},
                     fmt::format("lora: target_modules ({}) match no Linear module of the model", what),
                     "Phi-3's Linear modules: qkv_proj, o_proj, gate_up_proj, down_proj (and lm_head when untied)");
  }
  const torch::Device device = model.device();
  std::vector<std::string> names;
  for (auto& [name, lin] : targets) {
    const std::int64_t r = config.rank_for(name);
    // As PEFT's update_layer: nn.Linear(in, r), nn.Linear(r, out) (their constructors draw the
    // default init), then reset_lora_parameters.
    torch::nn::Linear A(torch::nn::LinearOptions(lin->in_features, r).bias(false));
    torch::nn::Linear B(torch::nn::LinearOptions(r, lin->out_features).bias(false));
    {
      torch::NoGradGuard ng;
      if (config.init_lora_weights == "true") {
        torch::nn::init::kaiming_uniform_(A->weight, std::sqrt(5.0));
        B->weight.zero_();
      } else if (config.init_lora_weights == "gaussian") {
        A->weight.normal_(0.0, 1.0 / static_cast<double>(r));
        B->weight.zero_();
      }  // "false": nn.Linear's own init for both
    }
    A->to(device, options.dtype);
    B->to(device, options.dtype);
    lin->lora_A = lin->register_module("lora_A", A);
    lin->lora_B = lin->register_module("lora_B", B);
    lin->lora_scaling = config.scaling_for(name);
    lin->lora_dropout = config.lora_dropout;
    lin->lora_merged = false;
    names.push_back(name);
  }
  if (options.freeze_base)
    for (auto& p : model.named_parameters(true))
      p.value().set_requires_grad(p.key().find(".lora_") != std::string::npos);
  return names;
}

// ------------------------------------------------------------------ merge
namespace {
torch::Tensor delta_of(Phi3LinearImpl& l) {
  return torch::matmul(l.lora_B->weight.detach().to(torch::kFloat32), l.lora_A->weight.detach().to(torch::kFloat32)) *
         l.lora_scaling;
}
}  // namespace

void merge_lora(Phi3ForCausalLMImpl& model) {
  torch::NoGradGuard ng;
  auto layers = lora_layers(model);
  for (auto& [name, l] : layers)
    if (!l->lora_merged && l->quantized())
      throw cli::Error(cli::Exit::runtime, {},
                       fmt::format("lora: cannot merge into the int8-quantised layer {}", name),
                       "merge the LoRA before quantising (load with int8 after merging)");
  for (auto& [name, l] : layers) {
    if (l->lora_merged) continue;
    const auto d = delta_of(*l).to(l->weight.device());
    l->weight.copy_((l->weight.to(torch::kFloat32) + d).to(l->weight.scalar_type()));
    l->lora_merged = true;
  }
}

void unmerge_lora(Phi3ForCausalLMImpl& model) {
  torch::NoGradGuard ng;
  for (auto& [name, l] : lora_layers(model)) {
    if (!l->lora_merged) continue;
    if (l->quantized())
      throw cli::Error(cli::Exit::runtime, {},
                       fmt::format("lora: cannot unmerge from {}: it was quantised after merging", name));
    const auto d = delta_of(*l).to(l->weight.device());
    l->weight.copy_((l->weight.to(torch::kFloat32) - d).to(l->weight.scalar_type()));
    l->lora_merged = false;
  }
}

bool lora_merged(Phi3ForCausalLMImpl& model) {
  auto layers = lora_layers(model);
  if (layers.empty()) return false;
  for (auto& [name, l] : layers)
    if (!l->lora_merged) return false;
  return true;
}

// ------------------------------------------------------------------ files
void add_lora_state(io::SafeTensorsWriter& w, Phi3ForCausalLMImpl& model, LoraKeyForm form, io::Dtype dtype,
                    const std::string& prefix) {
  const char* mid = form == LoraKeyForm::published ? ".default" : "";
  for (auto& [name, l] : lora_layers(model)) {
    for (auto [which, t] : {std::pair<const char*, torch::Tensor>{"lora_A", l->lora_A->weight}, {"lora_B", l->lora_B->weight}}) {
      const auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
      w.add_float(fmt::format("{}{}.{}{}.weight", prefix, name, which, mid), dtype,
                  std::vector<std::int64_t>(c.sizes().begin(), c.sizes().end()), c.data_ptr<float>());
    }
  }
}

LoadReport load_lora_state(Phi3ForCausalLMImpl& model, const io::SafeTensorsSet& ckpt, bool allow_partial,
                           const std::string& prefix, std::set<std::string>* consumed_out) {
  LoadReport r;
  std::set<std::string> consumed;
  torch::NoGradGuard ng;
  for (auto& [name, l] : lora_layers(model)) {
    for (auto [which, t] : {std::pair<const char*, torch::Tensor>{"lora_A", l->lora_A->weight}, {"lora_B", l->lora_B->weight}}) {
      const std::string k1 = fmt::format("{}{}.{}.weight", prefix, name, which);
      const std::string k2 = fmt::format("{}{}.{}.default.weight", prefix, name, which);
      const std::string key = ckpt.contains(k1) ? k1 : ckpt.contains(k2) ? k2 : std::string();
      if (key.empty()) {
        r.missing.push_back(k1);
        continue;
      }
      consumed.insert(key);
      const auto& shape = ckpt.info(key).shape;
      if (std::vector<std::int64_t>(t.sizes().begin(), t.sizes().end()) != shape) {
        r.mis_shaped.push_back(fmt::format("{}: checkpoint [{}] vs model [{}]", key, fmt::join(shape, ","),
                                           fmt::join(t.sizes(), ",")));
        continue;
      }
      t.copy_(tensor_from(ckpt, key).to(t.device(), t.scalar_type()));
      ++r.loaded;
    }
    if (l->lora_merged) l->lora_merged = false;  // (never: callers load into unmerged layers)
  }
  for (const auto& key : ckpt.names()) {
    if (key.compare(0, prefix.size(), prefix) != 0 || consumed.count(key)) continue;
    if (key.find(".lora_") != std::string::npos) r.unexpected.push_back(key);
  }
  if (consumed_out) consumed_out->insert(consumed.begin(), consumed.end());
  if (!allow_partial && !r.clean())
    throw cli::Error(cli::Exit::incompatible, ckpt.path(),
                     fmt::format("LoRA adapter does not match the model: {}", r.summary()),
                     "an adapter for another base model or another LoRA config (r, target_modules)?");
  return r;
}

void save_lora_adapter(Phi3ForCausalLMImpl& model, const LoraConfig& config, const std::string& dir) {
  if (!has_lora(model)) cli::fail(cli::Exit::runtime, dir, "the model has no LoRA to save");
  for (auto& [name, l] : lora_layers(model))
    if (l->lora_merged)
      cli::fail(cli::Exit::runtime, dir, "the LoRA is merged into the base weights; unmerge before saving the adapter");
  fs::create_directories(dir);
  LoraConfig c = config;
  if (c.base_model_name_or_path.empty()) c.base_model_name_or_path = model.name_or_path;
  write_text_atomic(fs::path(dir) / "adapter_config.json", c.to_json().dump(2) + "\n");
  io::SafeTensorsWriter w;
  add_lora_state(w, model, LoraKeyForm::peft);
  w.set_metadata("format", "pt");
  w.write((fs::path(dir) / "adapter_model.safetensors").string());
}

LoraConfig load_lora_adapter(Phi3ForCausalLMImpl& model, const std::string& path, const LoraLoadOptions& o) {
  fs::path cfg_path, weights;
  if (fs::is_directory(path)) {
    cfg_path = fs::path(path) / "adapter_config.json";
    weights = fs::path(path) / "adapter_model.safetensors";
    if (!fs::exists(weights) && fs::exists(fs::path(path) / "adapter_model.bin"))
      throw cli::Error(cli::Exit::incompatible, (fs::path(path) / "adapter_model.bin").string(),
                       "a torch pickle adapter; hse reads safetensors",
                       "convert it: python3 scripts/convert_hsenet_vlm.py adapter_model.bin adapter_model.safetensors");
  } else {
    weights = path;
    cfg_path = fs::path(path).parent_path() / "adapter_config.json";
  }
  if (!fs::exists(cfg_path)) cli::fail_input(cfg_path.string(), "no adapter_config.json for the LoRA adapter");
  if (!fs::exists(weights)) cli::fail_input(weights.string(), "no such adapter weights file");
  LoraConfig c = LoraConfig::from_file(cfg_path.string());
  if (o.check_base_name && !c.base_model_name_or_path.empty() && !model.name_or_path.empty()) {
    const std::string want = last_component(c.base_model_name_or_path), have = last_component(model.name_or_path);
    if (want != have)
      throw cli::Error(cli::Exit::incompatible, cfg_path.string(),
                       fmt::format("LoRA adapter is for base model '{}', but the model is '{}'",
                                   c.base_model_name_or_path, model.name_or_path),
                       "load the matching base model (or disable the base-name check)");
  }
  io::SafeTensorsSet ckpt(weights.string());
  try {
    apply_lora(model, c, o.apply);
  } catch (const cli::Error& e) {
    throw cli::Error(e.code(), cfg_path.string(), e.what(), e.hint());
  }
  try {
    load_lora_state(model, ckpt, o.allow_partial);
  } catch (...) {
    remove_lora(model);
    throw;
  }
  return c;
}

}  // namespace hse::model
