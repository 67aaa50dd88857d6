// safetensors: the 8-byte header length, the header JSON (dtypes, shapes, data_offsets,
// __metadata__), and the tensor data read as float.
#include "fuzz_common.h"
#include "hse/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  hse_fuzz::refused_or_parsed([&] {
    const auto st = hse::io::SafeTensors::from_bytes(hse_fuzz::bytes(data, size), "fuzz.safetensors");
    for (const auto& name : st.names()) {
      const auto& info = st.info(name);
      if (hse::io::is_float_dtype(info.dtype) && info.numel() < (1 << 20)) (void)st.to_float(name);
    }
    (void)st.metadata();
  });
  return 0;
}
