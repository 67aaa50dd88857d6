#include "hse/io/record.h"

#include <variant>

#include <fmt/format.h>

#include "hse/cli/cli.h"

namespace hse::io {

nlohmann::json attrs_json(const h5::Attrs& attrs, const std::string& prefix) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : attrs)
    if (k.rfind(prefix, 0) == 0 && k.rfind("hse_", 0) != 0)
      j[k.substr(prefix.size())] = std::visit([](const auto& x) { return nlohmann::json(x); }, v);
  return j;
}

RecordReader::RecordReader(std::string what, const nlohmann::json& j, std::string source, std::string hint)
    : what_(std::move(what)), source_(std::move(source)), hint_(std::move(hint)), j_(j) {
  if (!j_.is_object()) fail(fmt::format("is not an object but {}", j_.dump()));
}

void RecordReader::fail(const std::string& message) const {
  throw cli::Error(cli::Exit::incompatible, source_, fmt::format("{} {}", what_, message), hint_);
}

const nlohmann::json& RecordReader::at(const char* key) {
  seen_.insert(key);
  const auto it = j_.find(key);
  if (it == j_.end() || it->is_null()) fail(fmt::format("has no '{}'", key));
  return *it;
}

std::string RecordReader::str(const char* key) {
  const auto& v = at(key);
  if (!v.is_string()) fail(fmt::format("'{}' must be a string, got {}", key, v.dump()));
  return v.get<std::string>();
}

std::int64_t RecordReader::int64(const char* key) {
  const auto& v = at(key);
  if (!v.is_number_integer()) fail(fmt::format("'{}' must be an integer, got {}", key, v.dump()));
  return v.get<std::int64_t>();
}

bool RecordReader::flag(const char* key) {
  const auto& v = at(key);
  if (!v.is_number_integer() || (v.get<std::int64_t>() != 0 && v.get<std::int64_t>() != 1))
    fail(fmt::format("'{}' must be 0 or 1, got {}", key, v.dump()));
  return v.get<std::int64_t>() == 1;
}

std::vector<double> RecordReader::number_list(const char* key, std::size_t n) {
  const auto& v = at(key);
  bool ok = v.is_array() && v.size() == n;
  for (std::size_t i = 0; ok && i < n; ++i) ok = v[i].is_number();
  if (!ok) fail(fmt::format("'{}' must be a list of {} numbers, got {}", key, n, v.dump()));
  return v.get<std::vector<double>>();
}

std::vector<std::int64_t> RecordReader::integer_list(const char* key, std::size_t n) {
  const auto& v = at(key);
  bool ok = v.is_array() && v.size() == n;
  for (std::size_t i = 0; ok && i < n; ++i) ok = v[i].is_number_integer();
  if (!ok) fail(fmt::format("'{}' must be a list of {} integers, got {}", key, n, v.dump()));
  return v.get<std::vector<std::int64_t>>();
}

void RecordReader::expect(const char* key, const nlohmann::json& value) {
  const auto& v = at(key);
  if (v != value) fail(fmt::format("'{}' is {}, but this hse makes {}", key, v.dump(), value.dump()));
}

void RecordReader::finish() {
  for (const auto& [k, v] : j_.items())
    if (!seen_.count(k)) fail(fmt::format("has a field this hse does not know: '{}'", k));
}

}  // namespace hse::io
