// The Spatial Packer's config, without LibTorch: parsed in libhse (fuzzed by
// tests/fuzz/fuzz_config.cpp); the packers are in hse/model/packer.h.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace hse::model {

enum class PackerKind { v2p, spatial_pool, sequence_pool, qformer, anatomy, hsenet_qformer };
const char* packer_kind_name(PackerKind k);  // "v2p", "spatial_pool", ...

struct PackerConfig {
  PackerKind kind = PackerKind::v2p;
  std::int64_t in_dim = 768;
  std::int64_t out_dim = 3072;
  std::int64_t mlp_hidden = 0;                  // proj_mpls.0's width; 0: out_dim (HSENet)
  std::array<std::int64_t, 3> grid{8, 16, 16};  // D', H', W'
  std::array<std::int64_t, 3> window{1, 4, 4};
  std::array<std::int64_t, 3> stride{0, 0, 0};  // 0: the window's size (non-overlapping)
  double dropout = 0.1;
  double layer_norm_eps = 1e-5;
  std::array<std::int64_t, 3> halo{0, 1, 1};  // anatomy: tokens added to each window side
  std::int64_t num_queries = 0;               // qformer: learned queries (0: the window count)
  std::int64_t qformer_layers = 2;
  std::int64_t qformer_heads = 0;             // 0: in_dim / 64 (at least 1)
  std::int64_t qformer_intermediate = 0;      // 0: 4 * in_dim
  std::int64_t qformer_cross_every = 1;       // cross-attention in layers 0, k, 2k, ...
  std::string query_self_attention = "queries";  // hsenet_qformer: "queries" or "batch" (HSENet's code)

  std::int64_t heads() const {
    if (qformer_heads > 0) return qformer_heads;
    return kind == PackerKind::hsenet_qformer ? 8 : std::max<std::int64_t>(1, in_dim / 64);
  }
  std::int64_t intermediate() const {
    if (qformer_intermediate > 0) return qformer_intermediate;
    return kind == PackerKind::hsenet_qformer ? 2048 : 4 * in_dim;
  }
  std::int64_t hidden() const { return mlp_hidden > 0 ? mlp_hidden : out_dim; }
  std::array<std::int64_t, 3> strides() const;
  std::int64_t num_patches() const { return grid[0] * grid[1] * grid[2]; }  // N
  std::array<std::int64_t, 3> query_grid() const;  // (grid - window) / stride + 1 per axis
  std::int64_t num_tokens() const;                 // output tokens Q
  std::int64_t window_size() const { return window[0] * window[1] * window[2]; }  // K

  // Throws cli::Error (exit 3, naming `source`).
  void validate(const std::string& source = {}) const;
  // {"kind": "v2p", "in_dim", "out_dim", "mlp_hidden", "grid": [8,16,16], "window": [1,4,4],
  //  "stride": [1,4,4], "dropout", "layer_norm_eps"; anatomy: "halo"; qformer: "num_queries",
  //  "qformer_layers", "qformer_heads", "qformer_intermediate", "qformer_cross_every"}; absent
  //  fields keep the defaults.
  static PackerConfig from_json(const nlohmann::json& j, const std::string& source = {});
  nlohmann::json to_json() const;
};

}  // namespace hse::model
