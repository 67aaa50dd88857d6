// The LibTorch version libhse_model was built against (checked by tests/torch).
#include <torch/version.h>

namespace hse::model {
const char* torch_version() { return TORCH_VERSION; }
}  // namespace hse::model
