// Typed reads of model config fields (JSON), with one-line errors (exit 3) naming the
// config file: "<what> config: '<field>' must be <type>, got <value>". Fields may have
// several accepted names (our own and the published ones); null counts as absent.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"

namespace hse::model::cfg {

using nlohmann::json;

// Refuses a config nested deeper than `max_depth` levels (checked without recursion): copying or
// printing a JSON value recurses once per level, and a deep enough file would overflow the stack.
inline void check_depth(const char* what, const json& j, const std::string& source, std::size_t max_depth = 100) {
  std::vector<std::pair<const json*, std::size_t>> todo{{&j, 1}};
  while (!todo.empty()) {
    const auto [v, depth] = todo.back();
    todo.pop_back();
    if (depth > max_depth)
      throw cli::Error(cli::Exit::incompatible, source,
                       fmt::format("{} config: nested deeper than {} levels", what, max_depth));
    if (v->is_structured())
      for (const auto& x : *v) todo.emplace_back(&x, depth + 1);
  }
}

inline const json* field(const json& j, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    auto it = j.find(n);
    if (it != j.end() && !it->is_null()) return &*it;
  }
  return nullptr;
}

[[noreturn]] inline void bad_field(const char* what, const std::string& source, const char* name, const json& v,
                                   const char* want) {
  throw cli::Error(cli::Exit::incompatible, source,
                   fmt::format("{} config: '{}' must be {}, got {}", what, name, want, v.dump()));
}

// "<what> config: <message>" (exit 3, naming the source).
[[noreturn]] inline void fail(const char* what, const std::string& source, const std::string& message) {
  throw cli::Error(cli::Exit::incompatible, source, fmt::format("{} config: {}", what, message));
}

inline void get_int(const char* what, const json& j, std::initializer_list<const char*> names, std::int64_t& out,
                    const std::string& src) {
  if (const json* v = field(j, names)) {
    if (!v->is_number_integer()) bad_field(what, src, *names.begin(), *v, "an integer");
    out = v->get<std::int64_t>();
  }
}

inline void get_num(const char* what, const json& j, std::initializer_list<const char*> names, double& out,
                    const std::string& src) {
  if (const json* v = field(j, names)) {
    if (!v->is_number()) bad_field(what, src, *names.begin(), *v, "a number");
    out = v->get<double>();
  }
}

inline void get_bool(const char* what, const json& j, const char* name, bool& out, const std::string& src) {
  if (const json* v = field(j, {name})) {
    if (!v->is_boolean()) bad_field(what, src, name, *v, "true or false");
    out = v->get<bool>();
  }
}

// An integer (repeated N times, as timm's to_Ntuple) or a list of N integers.
template <std::size_t N>
void get_tuple(const char* what, const json& j, std::initializer_list<const char*> names,
               std::array<std::int64_t, N>& out, const std::string& src) {
  const json* v = field(j, names);
  if (!v) return;
  if (v->is_number_integer()) {
    out.fill(v->get<std::int64_t>());
    return;
  }
  const std::string want = fmt::format("an integer or a list of {} integers", N);
  if (!v->is_array() || v->size() != N) bad_field(what, src, *names.begin(), *v, want.c_str());
  for (std::size_t i = 0; i < N; ++i) {
    if (!(*v)[i].is_number_integer()) bad_field(what, src, *names.begin(), *v, want.c_str());
    out[i] = (*v)[i].get<std::int64_t>();
  }
}

// The typed reads above bound to one config (its name and source), for a config's from_json:
//   cfg::Reader r("vit3d", j, source);  r.get({"hidden_size", "hidden"}, c.hidden);
class Reader {
 public:
  Reader(const char* what, const json& j, const std::string& source) : what_(what), j_(j), src_(source) {}
  const json& object() const { return j_; }
  const std::string& source() const { return src_; }
  const json* find(std::initializer_list<const char*> names) const { return field(j_, names); }
  void get(std::initializer_list<const char*> names, std::int64_t& out) const { get_int(what_, j_, names, out, src_); }
  void get(std::initializer_list<const char*> names, double& out) const { get_num(what_, j_, names, out, src_); }
  void get(const char* name, bool& out) const { get_bool(what_, j_, name, out, src_); }
  // An integer repeated N times or a list of N integers (timm's to_Ntuple, MONAI's ensure_tuple_rep).
  template <std::size_t N>
  void get(std::initializer_list<const char*> names, std::array<std::int64_t, N>& out) const {
    get_tuple<N>(what_, j_, names, out, src_);
  }
  void get(std::initializer_list<const char*> names, std::string& out) const {
    if (const json* v = field(j_, names)) {
      if (!v->is_string()) bad(*names.begin(), *v, "a string");
      out = v->get<std::string>();
    }
  }
  [[noreturn]] void bad(const char* name, const json& v, const char* want) const {
    bad_field(what_, src_, name, v, want);
  }
  // "<what> config: <message>" (exit 3, naming the source).
  [[noreturn]] void fail(const std::string& message) const { cfg::fail(what_, src_, message); }

 private:
  const char* what_;
  const json& j_;
  const std::string& src_;
};

// Reads a config JSON file, or `<dir>/config.json` when `path` is a directory; `file`
// receives the path read (for error messages).
inline json read_file(const std::string& path, std::string& file) {
  namespace fs = std::filesystem;
  file = path;
  std::error_code ec;
  if (fs::is_directory(path, ec)) file = (fs::path(path) / "config.json").string();
  std::ifstream in(file);
  if (!in) throw cli::Error(cli::Exit::incompatible, file, "cannot open the model config");
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded()) throw cli::Error(cli::Exit::incompatible, file, "model config is not valid JSON");
  return j;
}

}  // namespace hse::model::cfg
