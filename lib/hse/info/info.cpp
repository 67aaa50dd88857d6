#include "hse/info/info.h"

#include <ostream>

#include <CLI/CLI.hpp>
#include <fmt/ranges.h>

#include "hse/io/h5.h"

namespace hse::info {

void declare(CLI::App& app, Options& o) {
  app.add_option("files", o.files, "hse HDF5 files, read as one set (shards in order)")->required();
  app.add_option("--kind", o.kind, "fail (exit 3) unless the files are of this kind");
  app.add_flag("--ids", o.ids, "print the item ids, one per line, instead of the summary");
  app.add_flag("--provenance", o.provenance, "print the provenance records (JSON lines) instead of the summary");
  cli::add_common(app, o.common, cli::kVerbosity);
}

namespace {
std::string value_str(const h5::AttrValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* d = std::get_if<double>(&v)) return fmt::format("{}", *d);
  if (const auto* i = std::get_if<std::int64_t>(&v)) return fmt::format("{}", *i);
  if (const auto* vd = std::get_if<std::vector<double>>(&v)) return fmt::format("{}", fmt::join(*vd, ","));
  if (const auto* vi = std::get_if<std::vector<std::int64_t>>(&v)) return fmt::format("{}", fmt::join(*vi, ","));
  return "?";
}
}  // namespace

int run(const Options& o, cli::Io& io) {
  h5::Reader r(o.files, o.kind);
  if (o.ids) {
    for (const auto& id : r.ids()) io.out << id << '\n';
    return 0;
  }
  if (o.provenance) {
    for (const auto& p : r.provenance()) io.out << p << '\n';
    return 0;
  }
  io.out << "kind\t" << r.kind() << '\n';
  io.out << "items\t" << r.size() << '\n';
  for (const char* ds : {"volumes", "slices", "slice_features", "embeddings", "features", "tokens"})
    if (r.has_dataset(ds)) {
      const auto shape = r.item_shape(ds);
      io.out << "dataset\t" << ds << "\t[" << r.size() << (shape.empty() ? "" : ",") << fmt::format("{}", fmt::join(shape, ","))
             << "]\n";
    }
  for (const auto& [k, v] : r.attrs()) io.out << "attr\t" << k << '\t' << value_str(v) << '\n';
  return 0;
}

}  // namespace hse::info
