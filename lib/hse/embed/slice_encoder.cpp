#include "hse/embed/slice_encoder.h"

#include "hse/io/h5.h"
#include "hse/io/record.h"

namespace hse::embed {

void SliceEncoderRecord::write(h5::Writer& w) const {
  const std::string p = kAttrPrefix;
  w.set_attr(p + "model", model);
  w.set_attr(p + "random_init", random_init);
  w.set_attr(p + "vit2d_config", vit2d_config);
  w.set_attr(p + "prefix", prefix);
}

nlohmann::json SliceEncoderRecord::to_json() const {
  return {{"model", model}, {"random_init", random_init}, {"vit2d_config", vit2d_config}, {"prefix", prefix}};
}

SliceEncoderRecord SliceEncoderRecord::from_json(const nlohmann::json& j, const std::string& source,
                                                 const std::string& hint) {
  io::RecordReader r("slice encoder record", j, source, hint);
  SliceEncoderRecord out;
  out.model = r.str("model");
  out.random_init = r.int64("random_init");
  out.vit2d_config = r.str("vit2d_config");
  out.prefix = r.str("prefix");
  r.finish();
  if (out.model.empty() && out.random_init < 0) r.fail("names no slice encoder (no model and no random_init)");
  return out;
}

}  // namespace hse::embed
