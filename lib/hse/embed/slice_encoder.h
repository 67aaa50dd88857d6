// The slice encoder record: which 2-D encoder hse-embed --slices ran to make a slice_features
// file (HDF5 attributes "encoder.*"), so that hse-finetune can record it in an adapter and
// hse-generate can run it again on CT files. Reading is strict (io::RecordReader): exit 3.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace hse::h5 {
class Writer;
}

namespace hse::embed {

struct SliceEncoderRecord {
  static constexpr const char* kAttrPrefix = "encoder.";
  std::string model;              // the encoder's directory or safetensors ("" for a random trunk)
  std::int64_t random_init = -1;  // the seed of a random trunk (demos, tests), or -1
  std::string vit2d_config;       // its vit2d config JSON
  std::string prefix = "visual.trunk.";  // key prefix of the trunk in the weights

  void write(h5::Writer& w) const;  // as "encoder.<field>" attributes
  nlohmann::json to_json() const;
  static SliceEncoderRecord from_json(const nlohmann::json& j, const std::string& source, const std::string& hint = {});
};

}  // namespace hse::embed
