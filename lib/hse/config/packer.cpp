#include "hse/config/packer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/config/json.h"

namespace hse::model {

namespace {

constexpr const char* kWhat = "packer";
using nlohmann::json;

[[noreturn]] void bad(const std::string& src, const std::string& msg) { cfg::fail(kWhat, src, msg); }

}  // namespace


const char* packer_kind_name(PackerKind k) {
  switch (k) {
    case PackerKind::v2p:
      return "v2p";
    case PackerKind::spatial_pool:
      return "spatial_pool";
    case PackerKind::sequence_pool:
      return "sequence_pool";
    case PackerKind::qformer:
      return "qformer";
    case PackerKind::anatomy:
      return "anatomy";
    case PackerKind::hsenet_qformer:
      return "hsenet_qformer";
  }
  return "?";
}

// ------------------------------------------------------------------ config
std::array<std::int64_t, 3> PackerConfig::strides() const {
  std::array<std::int64_t, 3> s{};
  for (int i = 0; i < 3; ++i) s[i] = stride[i] > 0 ? stride[i] : window[i];
  return s;
}

std::array<std::int64_t, 3> PackerConfig::query_grid() const {
  const auto s = strides();
  std::array<std::int64_t, 3> q{};
  for (int i = 0; i < 3; ++i) q[i] = (grid[i] - window[i]) / s[i] + 1;
  return q;
}

std::int64_t PackerConfig::num_tokens() const {
  if (kind == PackerKind::qformer && num_queries > 0) return num_queries;
  if (kind == PackerKind::hsenet_qformer) return num_queries > 0 ? num_queries : 32;
  if (kind == PackerKind::sequence_pool) {
    const auto s = strides();
    const std::int64_t k = window_size(), st = s[0] * s[1] * s[2];
    return (num_patches() - k) / st + 1;
  }
  const auto q = query_grid();
  return q[0] * q[1] * q[2];
}

void PackerConfig::validate(const std::string& src) const {
  if (in_dim <= 0 || out_dim <= 0 || mlp_hidden < 0)
    bad(src, fmt::format("in_dim {}, out_dim {} must be positive (mlp_hidden >= 0)", in_dim, out_dim));
  if (!(dropout >= 0.0 && dropout < 1.0)) bad(src, fmt::format("dropout must be in [0, 1), got {}", dropout));
  if (!(layer_norm_eps > 0)) bad(src, "layer_norm_eps must be positive");
  const auto s = strides();
  for (int i = 0; i < 3; ++i) {
    if (grid[i] <= 0 || window[i] <= 0 || stride[i] < 0)
      bad(src, fmt::format("grid [{}], window [{}] and stride [{}] must be positive", fmt::join(grid, ","),
                           fmt::join(window, ","), fmt::join(stride, ",")));
    if (window[i] > grid[i])
      bad(src, fmt::format("window [{}] is larger than the grid [{}]", fmt::join(window, ","), fmt::join(grid, ",")));
    if (kind != PackerKind::sequence_pool && (grid[i] - window[i]) % s[i] != 0)
      bad(src, fmt::format("windows [{}] with stride [{}] do not tile the grid [{}] (axis {} would drop tokens)",
                           fmt::join(window, ","), fmt::join(s, ","), fmt::join(grid, ","), i));
  }
  // num_patches(), num_tokens() and intermediate() multiply the sizes (and a VLM adds two packers'
  // token counts): int64 must hold the results.
  const auto prod = [](const std::array<std::int64_t, 3>& a) {
    return static_cast<double>(a[0]) * static_cast<double>(a[1]) * static_cast<double>(a[2]);
  };
  if (prod(grid) > 1e18 || prod(s) > 1e18 || static_cast<double>(in_dim) > 1e18 ||
      static_cast<double>(num_queries) > 1e18)
    bad(src, fmt::format("grid [{}], stride [{}], in_dim {} or num_queries {} is too large", fmt::join(grid, ","),
                         fmt::join(s, ","), in_dim, num_queries));
  if (kind == PackerKind::anatomy)
    for (int i = 0; i < 3; ++i)
      if (halo[i] < 0 || halo[i] > grid[i])
        bad(src, fmt::format("halo [{}] must be in 0..grid per axis", fmt::join(halo, ",")));
  if (kind == PackerKind::hsenet_qformer) {
    if (num_queries < 0 || qformer_layers < 0 || qformer_heads < 0 || qformer_intermediate < 0)
      bad(src, "num_queries, qformer_layers, qformer_heads and qformer_intermediate must be >= 0");
    if (in_dim % heads() != 0) bad(src, fmt::format("in_dim {} is not a multiple of {} heads", in_dim, heads()));
    if (query_self_attention != "queries" && query_self_attention != "batch")
      bad(src, fmt::format("query_self_attention must be \"queries\" or \"batch\", got \"{}\"", query_self_attention));
  }
  if (kind == PackerKind::qformer) {
    if (num_queries < 0 || qformer_layers < 1 || qformer_heads < 0 || qformer_intermediate < 0 ||
        qformer_cross_every < 1)
      bad(src, "num_queries >= 0, qformer_layers >= 1, qformer_heads >= 0, qformer_intermediate >= 0 and "
               "qformer_cross_every >= 1 are required");
    if (in_dim % heads() != 0) bad(src, fmt::format("in_dim {} is not a multiple of {} heads", in_dim, heads()));
  }
  if (kind == PackerKind::sequence_pool) {
    const std::int64_t k = window_size(), st = s[0] * s[1] * s[2];
    if ((num_patches() - k) % st != 0)
      bad(src, fmt::format("sequence pooling with kernel {} and stride {} does not tile {} tokens", k, st,
                           num_patches()));
  }
}

PackerConfig PackerConfig::from_json(const json& j, const std::string& src) {
  if (!j.is_object()) bad(src, "not a JSON object");
  cfg::check_depth(kWhat, j, src);
  PackerConfig c;
  if (const json* k = cfg::field(j, {"kind", "type"})) {
    if (!k->is_string()) cfg::bad_field(kWhat, src, "kind", *k, "a string");
    const std::string s = k->get<std::string>();
    bool found = false;
    for (auto kind : {PackerKind::v2p, PackerKind::spatial_pool, PackerKind::sequence_pool, PackerKind::qformer,
                      PackerKind::anatomy, PackerKind::hsenet_qformer})
      if (s == packer_kind_name(kind)) {
        c.kind = kind;
        found = true;
      }
    if (!found) bad(src, fmt::format("unknown kind '{}' (v2p, spatial_pool, sequence_pool, qformer, anatomy, hsenet_qformer)", s));
  }
  cfg::get_int(kWhat, j, {"in_dim"}, c.in_dim, src);
  cfg::get_int(kWhat, j, {"out_dim"}, c.out_dim, src);
  cfg::get_int(kWhat, j, {"mlp_hidden"}, c.mlp_hidden, src);
  cfg::get_tuple<3>(kWhat, j, {"grid"}, c.grid, src);
  cfg::get_tuple<3>(kWhat, j, {"window"}, c.window, src);
  cfg::get_tuple<3>(kWhat, j, {"stride"}, c.stride, src);
  cfg::get_num(kWhat, j, {"dropout"}, c.dropout, src);
  cfg::get_num(kWhat, j, {"layer_norm_eps"}, c.layer_norm_eps, src);
  cfg::get_tuple<3>(kWhat, j, {"halo"}, c.halo, src);
  cfg::get_int(kWhat, j, {"num_queries"}, c.num_queries, src);
  cfg::get_int(kWhat, j, {"qformer_layers"}, c.qformer_layers, src);
  cfg::get_int(kWhat, j, {"qformer_heads"}, c.qformer_heads, src);
  cfg::get_int(kWhat, j, {"qformer_intermediate"}, c.qformer_intermediate, src);
  cfg::get_int(kWhat, j, {"qformer_cross_every"}, c.qformer_cross_every, src);
  if (const json* v = cfg::field(j, {"query_self_attention"})) {
    if (!v->is_string()) cfg::bad_field(kWhat, src, "query_self_attention", *v, "a string");
    c.query_self_attention = v->get<std::string>();
  }
  c.validate(src);
  return c;
}

json PackerConfig::to_json() const {
  json j{{"kind", packer_kind_name(kind)}, {"in_dim", in_dim},       {"out_dim", out_dim},
         {"mlp_hidden", hidden()},         {"grid", grid},           {"window", window},
         {"stride", strides()},            {"dropout", dropout},     {"layer_norm_eps", layer_norm_eps}};
  if (kind == PackerKind::anatomy) j["halo"] = halo;
  if (kind == PackerKind::qformer || kind == PackerKind::hsenet_qformer) {
    j["num_queries"] = num_tokens();
    j["qformer_layers"] = qformer_layers;
    j["qformer_heads"] = heads();
    j["qformer_intermediate"] = intermediate();
    if (kind == PackerKind::qformer) j["qformer_cross_every"] = qformer_cross_every;
    else j["query_self_attention"] = query_self_attention;
  }
  return j;
}

}  // namespace hse::model
