#include "hse/config/lora.h"

#include <cmath>
#include <memory>
#include <stdexcept>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "hse/cli/cli.h"
#include "hse/config/files.h"
#include "hse/config/json.h"

namespace hse::model {

namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& src, const std::string& msg, const std::string& hint = {}) {
  throw cli::Error(cli::Exit::incompatible, src, fmt::format("lora config: {}", msg), hint);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// PEFT's list match: the name itself, or a dotted suffix.
bool list_match(const std::vector<std::string>& keys, const std::string& name) {
  for (const auto& k : keys)
    if (name == k || ends_with(name, "." + k)) return true;
  return false;
}

// PEFT matches module names with Python's re. PCRE2 reads the same syntax, and its limits bound
// the work a pathological pattern in a downloaded adapter can cause (std::regex backtracks without
// limit, recursively, and overflows on large repetition counts). Refusals are exit 3.
class Pattern {
 public:
  Pattern(const std::string& pattern, const std::string& what) : pattern_(pattern), what_(what) {
    int err = 0;
    PCRE2_SIZE off = 0;
    code_.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), 0, &err, &off, nullptr));
    if (!code_) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw cli::Error(cli::Exit::incompatible, {},
                       fmt::format("lora config: bad {} regex '{}': {} (at offset {})", what, pattern,
                                   reinterpret_cast<const char*>(msg), off));
    }
  }
  // Anchored at the start, and at the end when `whole` (re.fullmatch; else re.match). `group`
  // receives the named group `group_name` when given.
  bool match(const std::string& s, bool whole, const char* group_name = nullptr, std::string* group = nullptr) const {
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
        pcre2_match_data_create_from_pattern(code_.get(), nullptr), pcre2_match_data_free);
    std::unique_ptr<pcre2_match_context, decltype(&pcre2_match_context_free)> mc(pcre2_match_context_create(nullptr),
                                                                              pcre2_match_context_free);
    pcre2_set_match_limit(mc.get(), 1000000);
    pcre2_set_depth_limit(mc.get(), 10000);
    const int rc = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0,
                               PCRE2_ANCHORED | (whole ? PCRE2_ENDANCHORED : 0u), md.get(), mc.get());
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    if (rc < 0)
      throw cli::Error(cli::Exit::incompatible, {},
                       fmt::format("lora config: {} regex '{}' is too costly to match against '{}'", what_, pattern_, s));
    if (group_name && group) {
      PCRE2_SIZE len = 0;
      if (pcre2_substring_length_byname(md.get(), reinterpret_cast<PCRE2_SPTR>(group_name), &len) == 0) {
        PCRE2_SIZE cap = len + 1;
        std::string buf(cap, '\0');
        pcre2_substring_copy_byname(md.get(), reinterpret_cast<PCRE2_SPTR>(group_name),
                                    reinterpret_cast<PCRE2_UCHAR*>(buf.data()), &cap);
        *group = buf.substr(0, cap);
      }
    }
    return true;
  }

 private:
  std::string pattern_, what_;
  std::unique_ptr<pcre2_code, decltype(&pcre2_code_free)> code_{nullptr, pcre2_code_free};
};

// PEFT's regex for the layer number after "<layers_pattern>." (the number in the named group).
std::string layer_regex(const std::string& layers_pattern) {
  return "(?:^|.*?\\.)" + layers_pattern + "\\.(?<hse_layer>\\d+)\\.";
}
// PEFT's get_pattern_key regex for a rank_pattern/alpha_pattern key.
std::string pattern_key_regex(const std::string& key) { return "(.*\\.)?(" + key + ")"; }

bool full_match(const std::string& pattern, const std::string& name, const std::string& what) {
  return Pattern(pattern, what).match(name, true);
}

// PEFT's get_pattern_key: the first key K (in the map's order) such that re.match(r"(.*\.)?(K)$", name).
template <typename M>
const typename M::value_type* pattern_entry(const M& patterns, const std::string& name) {
  for (const auto& kv : patterns)
    if (full_match(pattern_key_regex(kv.first), name, "pattern")) return &kv;
  return nullptr;
}

// A JSON value PEFT would treat as "not set".
bool falsy(const json& v) {
  return v.is_null() || (v.is_boolean() && !v.get<bool>()) || (v.is_object() && v.empty()) ||
         (v.is_array() && v.empty()) || (v.is_string() && v.get<std::string>().empty());
}

std::vector<std::string> string_list(const json& v, const char* name, const std::string& src) {
  std::vector<std::string> out;
  if (!v.is_array()) bad(src, fmt::format("'{}' must be a list of strings or a string, got {}", name, v.dump()));
  for (const auto& x : v) {
    if (!x.is_string()) bad(src, fmt::format("'{}' must be a list of strings, got {}", name, v.dump()));
    out.push_back(x.get<std::string>());
  }
  return out;
}

// Fields that change the arithmetic or the base model and that hse does not implement.
constexpr const char* kUnsupported[] = {
    "use_dora",          "lora_bias",       "fan_in_fan_out",       "modules_to_save",     "target_parameters",
    "layer_replication", "trainable_token_indices", "use_qalora",   "alora_invocation_tokens", "use_bdlora",
    "arrow_config",      "velora_config",   "kasa_config",          "monteclora_config",   "lora_ga_config",
    "megatron_config",   "ensure_weight_tying"};

// Fields read into LoraConfig (not copied to `extra`).
constexpr const char* kKnown[] = {"r",
                                  "lora_alpha",
                                  "lora_dropout",
                                  "target_modules",
                                  "exclude_modules",
                                  "layers_to_transform",
                                  "layers_pattern",
                                  "rank_pattern",
                                  "alpha_pattern",
                                  "bias",
                                  "task_type",
                                  "base_model_name_or_path",
                                  "use_rslora",
                                  "init_lora_weights",
                                  "peft_type",
                                  "inference_mode",
                                  "peft_version",
                                  "revision",
                                  "auto_mapping",
                                  "loftq_config",
                                  "corda_config",
                                  "eva_config",
                                  "qalora_group_size",
                                  "megatron_core"};

}  // namespace

// ------------------------------------------------------------------ config
bool LoraConfig::targets(const std::string& name) const {
  if (!exclude_regex.empty() && full_match(exclude_regex, name, "exclude_modules")) return false;
  if (list_match(exclude_modules, name)) return false;
  if (!target_regex.empty()) return full_match(target_regex, name, "target_modules");
  if (!list_match(target_modules, name)) return false;
  if (layers_to_transform.empty()) return true;
  // PEFT: the first numbered component after "<pattern>." (or after any component).
  std::string layer;
  bool found = false;
  if (layers_pattern.empty()) {
    static const Pattern any(R"(.*?\.[^.]*\.(?<hse_layer>\d+)\.)", "layers");
    found = any.match(name, false, "hse_layer", &layer);
  } else {
    for (const auto& p : layers_pattern) {
      if (Pattern(layer_regex(p), "layers_pattern").match(name, false, "hse_layer", &layer)) {
        found = true;
        break;
      }
    }
  }
  if (!found) return false;
  std::int64_t idx = 0;
  try {
    idx = std::stoll(layer);
  } catch (const std::exception&) {
    return false;  // a layer number beyond int64 is in no layers_to_transform
  }
  for (auto l : layers_to_transform)
    if (l == idx) return true;
  return false;
}

std::int64_t LoraConfig::rank_for(const std::string& name) const {
  const auto* e = pattern_entry(rank_pattern, name);
  return e ? e->second : r;
}

double LoraConfig::alpha_for(const std::string& name) const {
  const auto* e = pattern_entry(alpha_pattern, name);
  return e ? e->second : lora_alpha;
}

double LoraConfig::scaling_for(const std::string& name) const {
  const double rr = static_cast<double>(rank_for(name));
  const double a = alpha_for(name);
  return use_rslora ? a / std::sqrt(rr) : a / rr;
}

void LoraConfig::validate(const std::string& src) const {
  if (r < 1) bad(src, fmt::format("'r' must be >= 1, got {}", r));
  for (const auto& [k, v] : rank_pattern)
    if (v < 1) bad(src, fmt::format("rank_pattern '{}' must be >= 1, got {}", k, v));
  if (!std::isfinite(lora_alpha)) bad(src, "'lora_alpha' must be a finite number");
  if (!(lora_dropout >= 0.0 && lora_dropout < 1.0))
    bad(src, fmt::format("'lora_dropout' must be in [0, 1), got {}", lora_dropout));
  if (bias != "none")
    bad(src, fmt::format("bias '{}' is not supported (only \"none\", as HSENet)", bias));
  if (target_regex.empty() && target_modules.empty()) bad(src, "'target_modules' is empty");
  // Module names are short; so are real patterns.
  constexpr std::size_t kMaxPattern = 256;
  for (const std::string* p : {&target_regex, &exclude_regex})
    if (p->size() > kMaxPattern) bad(src, fmt::format("a module regex of {} characters (at most {})", p->size(), kMaxPattern));
  for (const auto& p : layers_pattern)
    if (p.size() > kMaxPattern) bad(src, fmt::format("a layers_pattern of {} characters (at most {})", p.size(), kMaxPattern));
  // Compiled once here, so that a bad regex is refused at load, naming the file.
  try {
    if (!target_regex.empty()) (void)Pattern(target_regex, "target_modules");
    if (!exclude_regex.empty()) (void)Pattern(exclude_regex, "exclude_modules");
    for (const auto& p : layers_pattern) (void)Pattern(layer_regex(p), "layers_pattern");
    for (const auto& kv : rank_pattern) (void)Pattern(pattern_key_regex(kv.first), "rank_pattern");
    for (const auto& kv : alpha_pattern) (void)Pattern(pattern_key_regex(kv.first), "alpha_pattern");
  } catch (const cli::Error& e) {
    throw cli::Error(cli::Exit::incompatible, src, e.what(), e.hint());
  }
  if (init_lora_weights != "true" && init_lora_weights != "false" && init_lora_weights != "gaussian")
    bad(src, fmt::format("init_lora_weights '{}' is not supported (true, false or \"gaussian\")", init_lora_weights));
}

LoraConfig LoraConfig::from_json(const json& j, const std::string& src) {
  if (!j.is_object()) bad(src, "not a JSON object");
  cfg::check_depth("lora", j, src);
  LoraConfig c;
  if (auto it = j.find("peft_type"); it != j.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>() != "LORA")
      bad(src, fmt::format("peft_type {} is not LORA", it->dump()));
  }
  for (const char* name : kUnsupported) {
    auto it = j.find(name);
    if (it != j.end() && !falsy(*it))
      bad(src, fmt::format("'{}' = {} is not supported", name, it->dump()),
          "hse implements vanilla LoRA on Linear modules (PEFT LoraConfig defaults for this field)");
  }
  auto num = [&](const char* name, double& out) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return;
    if (!it->is_number()) bad(src, fmt::format("'{}' must be a number, got {}", name, it->dump()));
    out = it->get<double>();
  };
  if (auto it = j.find("r"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer()) bad(src, fmt::format("'r' must be an integer, got {}", it->dump()));
    c.r = it->get<std::int64_t>();
  }
  num("lora_alpha", c.lora_alpha);
  num("lora_dropout", c.lora_dropout);
  if (auto it = j.find("target_modules"); it != j.end() && !it->is_null()) {
    if (it->is_string()) {
      c.target_regex = it->get<std::string>();
      c.target_modules.clear();
    } else {
      c.target_modules = string_list(*it, "target_modules", src);
    }
  } else {
    bad(src, "'target_modules' is not set", "PEFT infers it from the model type; write it explicitly");
  }
  if (auto it = j.find("exclude_modules"); it != j.end() && !it->is_null()) {
    if (it->is_string())
      c.exclude_regex = it->get<std::string>();
    else
      c.exclude_modules = string_list(*it, "exclude_modules", src);
  }
  if (auto it = j.find("layers_to_transform"); it != j.end() && !it->is_null()) {
    if (it->is_number_integer()) {
      c.layers_to_transform = {it->get<std::int64_t>()};
    } else if (it->is_array()) {
      for (const auto& x : *it) {
        if (!x.is_number_integer()) bad(src, fmt::format("'layers_to_transform' must be integers, got {}", it->dump()));
        c.layers_to_transform.push_back(x.get<std::int64_t>());
      }
    } else {
      bad(src, fmt::format("'layers_to_transform' must be an integer or a list, got {}", it->dump()));
    }
  }
  if (auto it = j.find("layers_pattern"); it != j.end() && !it->is_null()) {
    if (it->is_string())
      c.layers_pattern = {it->get<std::string>()};
    else
      c.layers_pattern = string_list(*it, "layers_pattern", src);
  }
  if (auto it = j.find("rank_pattern"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) bad(src, "'rank_pattern' must be an object");
    for (const auto& [k, v] : it->items()) {
      if (!v.is_number_integer()) bad(src, fmt::format("rank_pattern '{}' must be an integer", k));
      c.rank_pattern[k] = v.get<std::int64_t>();
    }
  }
  if (auto it = j.find("alpha_pattern"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) bad(src, "'alpha_pattern' must be an object");
    for (const auto& [k, v] : it->items()) {
      if (!v.is_number()) bad(src, fmt::format("alpha_pattern '{}' must be a number", k));
      c.alpha_pattern[k] = v.get<double>();
    }
  }
  auto str = [&](const char* name, std::string& out) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return;
    if (!it->is_string()) bad(src, fmt::format("'{}' must be a string, got {}", name, it->dump()));
    out = it->get<std::string>();
  };
  str("bias", c.bias);
  str("task_type", c.task_type);
  str("base_model_name_or_path", c.base_model_name_or_path);
  if (auto it = j.find("use_rslora"); it != j.end() && !it->is_null()) {
    if (!it->is_boolean()) bad(src, "'use_rslora' must be true or false");
    c.use_rslora = it->get<bool>();
  }
  if (auto it = j.find("init_lora_weights"); it != j.end() && !it->is_null()) {
    if (it->is_boolean())
      c.init_lora_weights = it->get<bool>() ? "true" : "false";
    else if (it->is_string())
      c.init_lora_weights = it->get<std::string>();
    else
      bad(src, fmt::format("'init_lora_weights' must be a boolean or a string, got {}", it->dump()));
  }
  for (const auto& [k, v] : j.items()) {
    bool known = false;
    for (const char* n : kKnown) known = known || k == n;
    for (const char* n : kUnsupported) known = known || k == n;
    if (!known) c.extra[k] = v;
  }
  c.validate(src);
  return c;
}

LoraConfig LoraConfig::from_file(const std::string& path) {
  std::string file;
  const json j = read_json_input(path, "adapter_config.json", "LoRA adapter config", file);
  return from_json(j, file);
}

json LoraConfig::to_json() const {
  auto number = [](double v) -> json {
    if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) return json(static_cast<std::int64_t>(v));
    return json(v);
  };
  json alpha_p = json::object(), rank_p = json::object();
  for (const auto& [k, v] : alpha_pattern) alpha_p[k] = number(v);
  for (const auto& [k, v] : rank_pattern) rank_p[k] = v;
  json j = extra.is_object() ? extra : json::object();
  // PEFT 0.21.2's LoraConfig fields (the unsupported ones at their defaults).
  j["alora_invocation_tokens"] = nullptr;
  j["alpha_pattern"] = alpha_p;
  j["arrow_config"] = nullptr;
  j["auto_mapping"] = nullptr;
  j["base_model_name_or_path"] = base_model_name_or_path.empty() ? json(nullptr) : json(base_model_name_or_path);
  j["bias"] = bias;
  j["corda_config"] = nullptr;
  j["ensure_weight_tying"] = false;
  j["eva_config"] = nullptr;
  j["exclude_modules"] = !exclude_regex.empty()       ? json(exclude_regex)
                         : exclude_modules.empty() ? json(nullptr)
                                                   : json(exclude_modules);
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = true;
  j["init_lora_weights"] = init_lora_weights == "true"    ? json(true)
                           : init_lora_weights == "false" ? json(false)
                                                          : json(init_lora_weights);
  j["kasa_config"] = nullptr;
  j["layer_replication"] = nullptr;
  j["layers_pattern"] = layers_pattern.empty()       ? json(nullptr)
                        : layers_pattern.size() == 1 ? json(layers_pattern[0])
                                                     : json(layers_pattern);
  j["layers_to_transform"] = layers_to_transform.empty() ? json(nullptr) : json(layers_to_transform);
  j["loftq_config"] = json::object();
  j["lora_alpha"] = number(lora_alpha);
  j["lora_bias"] = false;
  j["lora_dropout"] = lora_dropout;
  j["lora_ga_config"] = nullptr;
  j["megatron_config"] = nullptr;
  j["megatron_core"] = "megatron.core";
  j["modules_to_save"] = nullptr;
  j["monteclora_config"] = nullptr;
  j["peft_type"] = "LORA";
  j["qalora_group_size"] = 16;
  j["r"] = r;
  j["rank_pattern"] = rank_p;
  j["revision"] = nullptr;
  j["target_modules"] = target_regex.empty() ? json(target_modules) : json(target_regex);
  j["target_parameters"] = nullptr;
  j["task_type"] = task_type.empty() ? json(nullptr) : json(task_type);
  j["trainable_token_indices"] = nullptr;
  j["use_bdlora"] = nullptr;
  j["use_dora"] = false;
  j["use_qalora"] = false;
  j["use_rslora"] = use_rslora;
  j["velora_config"] = nullptr;
  return j;
}

}  // namespace hse::model
