#include "hse/config/phi3.h"

#include <cmath>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/config/json.h"

namespace hse::model {

namespace {

constexpr const char* kWhat = "phi3";
using nlohmann::json;

[[noreturn]] void bad(const std::string& src, const std::string& msg) { cfg::fail(kWhat, src, msg); }

std::vector<double> number_list(const json& j, const char* name, const std::string& src) {
  const json* v = cfg::field(j, {name});
  if (!v) bad(src, fmt::format("longrope needs '{}'", name));
  if (!v->is_array()) cfg::bad_field(kWhat, src, name, *v, "a list of numbers");
  std::vector<double> out;
  for (const auto& x : *v) {
    if (!x.is_number()) cfg::bad_field(kWhat, src, name, *v, "a list of numbers");
    out.push_back(x.get<double>());
  }
  return out;
}

}  // namespace

// ------------------------------------------------------------------ config
std::int64_t Phi3Config::rotary_dim() const {
  return static_cast<std::int64_t>(static_cast<double>(head_size()) * partial_rotary_factor);
}

double Phi3Config::rope_attention_scaling() const {
  if (rope_type != RopeType::longrope) return 1.0;
  if (attention_factor) return *attention_factor;
  const double factor = rope_factor ? *rope_factor
                                    : static_cast<double>(max_position_embeddings) /
                                          static_cast<double>(original_max_position_embeddings);
  if (factor <= 1.0) return 1.0;
  return std::sqrt(1.0 + std::log(factor) / std::log(static_cast<double>(original_max_position_embeddings)));
}

void Phi3Config::validate(const std::string& src) const {
  for (auto [name, v] : {std::pair<const char*, std::int64_t>{"vocab_size", vocab_size},
                         {"hidden_size", hidden_size},
                         {"intermediate_size", intermediate_size},
                         {"num_attention_heads", num_attention_heads},
                         {"max_position_embeddings", max_position_embeddings},
                         {"original_max_position_embeddings", original_max_position_embeddings}})
    if (v <= 0) bad(src, fmt::format("'{}' must be positive, got {}", name, v));
  if (num_hidden_layers < 0) bad(src, "'num_hidden_layers' must be >= 0");
  if (num_key_value_heads < 0 || head_dim < 0) bad(src, "'num_key_value_heads' and 'head_dim' must be positive");
  if (num_attention_heads % kv_heads() != 0)
    bad(src, fmt::format("num_attention_heads {} is not a multiple of num_key_value_heads {}", num_attention_heads,
                         kv_heads()));
  if (head_dim == 0 && hidden_size % num_attention_heads != 0)
    bad(src, fmt::format("hidden_size {} is not a multiple of num_attention_heads {} (and no head_dim)", hidden_size,
                         num_attention_heads));
  if (!(rms_norm_eps > 0)) bad(src, "'rms_norm_eps' must be positive");
  if (!(rope_theta > 0)) bad(src, "'rope_theta' must be positive");
  if (!(partial_rotary_factor > 0 && partial_rotary_factor <= 1))
    bad(src, fmt::format("'partial_rotary_factor' must be in (0, 1], got {}", partial_rotary_factor));
  for (auto [name, v] : {std::pair<const char*, double>{"attention_dropout", attention_dropout}, {"resid_pdrop", resid_pdrop}})
    if (!(v >= 0 && v < 1)) bad(src, fmt::format("'{}' must be in [0, 1), got {}", name, v));
  if (static_cast<double>(head_size()) * partial_rotary_factor > 4e18)  // rotary_dim() converts it to int64
    bad(src, fmt::format("head_dim {} is too large", head_size()));
  const std::int64_t rd = rotary_dim();
  if (rd < 2 || rd % 2 != 0)
    bad(src, fmt::format("rotary dims int(head_dim {} * partial_rotary_factor {}) = {} must be even and >= 2",
                         head_size(), partial_rotary_factor, rd));
  if (rope_type == RopeType::longrope) {
    for (auto [name, f] : {std::pair<const char*, const std::vector<double>*>{"short_factor", &short_factor},
                           {"long_factor", &long_factor}})
      if (static_cast<std::int64_t>(f->size()) != rd / 2)
        bad(src, fmt::format("rope_scaling '{}' has {} values, expected rotary_dim/2 = {}", name, f->size(), rd / 2));
  }
  if (hidden_act != "silu") bad(src, fmt::format("unsupported hidden_act '{}' (Phi-3 uses 'silu')", hidden_act));
  if (sliding_window < 0) bad(src, "'sliding_window' must be positive or null");
}

Phi3Config Phi3Config::from_json(const json& j, const std::string& src) {
  if (!j.is_object()) bad(src, "not a JSON object");
  cfg::check_depth(kWhat, j, src);
  Phi3Config c;
  if (const json* mt = cfg::field(j, {"model_type"})) {
    if (!mt->is_string()) cfg::bad_field(kWhat, src, "model_type", *mt, "a string");
    if (mt->get<std::string>().find("phi3") == std::string::npos)
      bad(src, fmt::format("model_type '{}' is not a Phi-3 model", mt->get<std::string>()));
  }
  for (const char* req :
       {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"})
    if (!cfg::field(j, {req})) bad(src, fmt::format("missing required field '{}'", req));
  cfg::get_int(kWhat, j, {"vocab_size"}, c.vocab_size, src);
  cfg::get_int(kWhat, j, {"hidden_size"}, c.hidden_size, src);
  cfg::get_int(kWhat, j, {"intermediate_size"}, c.intermediate_size, src);
  cfg::get_int(kWhat, j, {"num_hidden_layers"}, c.num_hidden_layers, src);
  cfg::get_int(kWhat, j, {"num_attention_heads"}, c.num_attention_heads, src);
  cfg::get_int(kWhat, j, {"num_key_value_heads"}, c.num_key_value_heads, src);
  cfg::get_int(kWhat, j, {"head_dim"}, c.head_dim, src);
  cfg::get_num(kWhat, j, {"rms_norm_eps"}, c.rms_norm_eps, src);
  cfg::get_int(kWhat, j, {"max_position_embeddings"}, c.max_position_embeddings, src);
  cfg::get_bool(kWhat, j, "tie_word_embeddings", c.tie_word_embeddings, src);
  cfg::get_int(kWhat, j, {"sliding_window"}, c.sliding_window, src);
  cfg::get_num(kWhat, j, {"attention_dropout"}, c.attention_dropout, src);
  cfg::get_num(kWhat, j, {"resid_pdrop"}, c.resid_pdrop, src);
  if (const json* v = cfg::field(j, {"hidden_act"})) {
    if (!v->is_string()) cfg::bad_field(kWhat, src, "hidden_act", *v, "a string");
    c.hidden_act = v->get<std::string>();
  }
  if (const json* v = cfg::field(j, {"attention_bias"})) {
    if (!v->is_boolean()) cfg::bad_field(kWhat, src, "attention_bias", *v, "true or false");
    if (v->get<bool>()) bad(src, "attention_bias true is not supported (Phi-3 projections have no bias)");
  }
  // Token ids: null means none.
  auto id = [&](const char* name, std::int64_t& out) {
    auto it = j.find(name);
    if (it == j.end()) return;
    if (it->is_null()) {
      out = -1;
      return;
    }
    if (!it->is_number_integer()) cfg::bad_field(kWhat, src, name, *it, "an integer or null");
    out = it->get<std::int64_t>();
  };
  id("bos_token_id", c.bos_token_id);
  id("pad_token_id", c.pad_token_id);
  if (auto it = j.find("eos_token_id"); it != j.end()) {
    c.eos_token_ids.clear();
    if (it->is_number_integer()) {
      c.eos_token_ids.push_back(it->get<std::int64_t>());
    } else if (it->is_array()) {
      for (const auto& x : *it) {
        if (!x.is_number_integer()) cfg::bad_field(kWhat, src, "eos_token_id", *it, "an integer or a list of integers");
        c.eos_token_ids.push_back(x.get<std::int64_t>());
      }
    } else if (!it->is_null()) {
      cfg::bad_field(kWhat, src, "eos_token_id", *it, "an integer or a list of integers");
    }
  }

  // RoPE: transformers 4 writes rope_scaling (+ top-level rope_theta, partial_rotary_factor),
  // transformers 5 rope_parameters; rope_scaling wins when both are set (Phi3Config does so).
  cfg::get_num(kWhat, j, {"rope_theta"}, c.rope_theta, src);
  cfg::get_num(kWhat, j, {"partial_rotary_factor"}, c.partial_rotary_factor, src);
  const json* rs = cfg::field(j, {"rope_scaling"});
  const char* rs_name = "rope_scaling";
  if (!rs) {
    rs = cfg::field(j, {"rope_parameters"});
    rs_name = "rope_parameters";
  }
  std::int64_t rope_orig = 0;
  if (rs) {
    if (!rs->is_object()) cfg::bad_field(kWhat, src, rs_name, *rs, "an object or null");
    cfg::get_num(kWhat, *rs, {"rope_theta"}, c.rope_theta, src);
    cfg::get_num(kWhat, *rs, {"partial_rotary_factor"}, c.partial_rotary_factor, src);
    std::string type = "default";
    if (const json* t = cfg::field(*rs, {"rope_type", "type"})) {
      if (!t->is_string()) cfg::bad_field(kWhat, src, "rope_scaling.type", *t, "a string");
      type = t->get<std::string>();
    }
    if (type == "default") {
      c.rope_type = RopeType::standard;
    } else if (type == "longrope" || type == "su" || type == "yarn") {  // Phi3Config's BC mapping
      c.rope_type = RopeType::longrope;
      c.short_factor = number_list(*rs, "short_factor", src);
      c.long_factor = number_list(*rs, "long_factor", src);
      double f = 0;
      if (cfg::field(*rs, {"factor"})) {
        cfg::get_num(kWhat, *rs, {"factor"}, f, src);
        c.rope_factor = f;
      }
      if (cfg::field(*rs, {"attention_factor"})) {
        cfg::get_num(kWhat, *rs, {"attention_factor"}, f, src);
        c.attention_factor = f;
      }
      cfg::get_int(kWhat, *rs, {"original_max_position_embeddings"}, rope_orig, src);
    } else {
      throw cli::Error(cli::Exit::incompatible, src, fmt::format("unknown rope_scaling type '{}'", type),
                       "Phi-3 supports rope_scaling null, \"default\" or \"longrope\"");
    }
  }
  if (cfg::field(j, {"original_max_position_embeddings"}))
    cfg::get_int(kWhat, j, {"original_max_position_embeddings"}, c.original_max_position_embeddings, src);
  else if (rope_orig > 0)
    c.original_max_position_embeddings = rope_orig;
  c.validate(src);
  return c;
}

Phi3Config Phi3Config::from_file(const std::string& path) {
  std::string file;
  const json j = cfg::read_file(path, file);
  return from_json(j, file);
}

json Phi3Config::to_json() const {
  json j{{"architectures", {"Phi3ForCausalLM"}},
         {"model_type", "phi3"},
         {"vocab_size", vocab_size},
         {"hidden_size", hidden_size},
         {"intermediate_size", intermediate_size},
         {"num_hidden_layers", num_hidden_layers},
         {"num_attention_heads", num_attention_heads},
         {"num_key_value_heads", kv_heads()},
         {"rms_norm_eps", rms_norm_eps},
         {"rope_theta", rope_theta},
         {"partial_rotary_factor", partial_rotary_factor},
         {"max_position_embeddings", max_position_embeddings},
         {"original_max_position_embeddings", original_max_position_embeddings},
         {"tie_word_embeddings", tie_word_embeddings},
         {"hidden_act", hidden_act},
         {"attention_dropout", attention_dropout},
         {"resid_pdrop", resid_pdrop},
         {"embd_pdrop", 0.0},
         {"use_cache", true}};
  if (head_dim > 0) j["head_dim"] = head_dim;
  j["bos_token_id"] = bos_token_id >= 0 ? json(bos_token_id) : json(nullptr);
  j["pad_token_id"] = pad_token_id >= 0 ? json(pad_token_id) : json(nullptr);
  if (eos_token_ids.empty())
    j["eos_token_id"] = nullptr;
  else if (eos_token_ids.size() == 1)
    j["eos_token_id"] = eos_token_ids[0];
  else
    j["eos_token_id"] = eos_token_ids;
  j["sliding_window"] = sliding_window > 0 ? json(sliding_window) : json(nullptr);
  if (rope_type == RopeType::longrope) {
    json rs{{"type", "longrope"}, {"rope_type", "longrope"}, {"short_factor", short_factor},
            {"long_factor", long_factor}};
    if (rope_factor) rs["factor"] = *rope_factor;
    if (attention_factor) rs["attention_factor"] = *attention_factor;
    j["rope_scaling"] = rs;
  } else {
    j["rope_scaling"] = nullptr;
  }
  return j;
}

}  // namespace hse::model
