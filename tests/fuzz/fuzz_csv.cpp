// CSV (io/csv.cpp): quoting, embedded newlines, field counts, then the column lookups the tools
// make.
#include "fuzz_common.h"
#include "hse/io/csv.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  hse_fuzz::refused_or_parsed([&] {
    const auto t = hse::io::parse_csv(hse_fuzz::bytes(data, size), "fuzz.csv");
    (void)t.find_col("VolumeName");
    (void)t.find_col_ci({"findings_en", "volumename"});
    for (const auto& row : t.rows) (void)row.size();
  });
  return 0;
}
