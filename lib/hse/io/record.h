// Records: the parameters a tool writes beside its output (HDF5 root attributes, a JSON object in
// an adapter) and a later tool reads back to replay them. A record is read strictly: a missing
// field, a field of the wrong type, a constant that is not this hse's, or a field this hse does
// not know is exit 3 naming the record and the field, never a silent default.
#pragma once

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hse/io/h5.h"

namespace hse::io {

// The attributes of `attrs` whose names start with `prefix` (prefix stripped), hse_* bookkeeping
// left out, as a JSON object.
nlohmann::json attrs_json(const h5::Attrs& attrs, const std::string& prefix = {});

class RecordReader {
 public:
  // what: "volume recipe"; source: the file it came from; hint: what to do about a bad record.
  RecordReader(std::string what, const nlohmann::json& j, std::string source, std::string hint = {});

  // True when the record has `key` (a field later hse versions added; absent in older files).
  bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }
  std::string str(const char* key);
  std::int64_t int64(const char* key);
  bool flag(const char* key);  // an integer 0 or 1 (as HDF5 attributes store booleans)
  template <std::size_t N>
  std::array<double, N> numbers(const char* key) {
    std::array<double, N> out{};
    const auto v = number_list(key, N);
    for (std::size_t i = 0; i < N; ++i) out[i] = v[i];
    return out;
  }
  template <std::size_t N>
  std::array<std::int64_t, N> integers(const char* key) {
    std::array<std::int64_t, N> out{};
    const auto v = integer_list(key, N);
    for (std::size_t i = 0; i < N; ++i) out[i] = v[i];
    return out;
  }
  // A field whose value this hse fixes (a layout, a normalisation): it must be `value`.
  void expect(const char* key, const nlohmann::json& value);
  // Refuses the fields not read.
  void finish();

  [[noreturn]] void fail(const std::string& message) const;

 private:
  const nlohmann::json& at(const char* key);
  std::vector<double> number_list(const char* key, std::size_t n);
  std::vector<std::int64_t> integer_list(const char* key, std::size_t n);
  std::string what_, source_, hint_;
  const nlohmann::json& j_;
  std::set<std::string> seen_;
};

}  // namespace hse::io
