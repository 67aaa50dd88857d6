#include "hse/app/info.h"

#include <algorithm>
#include <filesystem>
#include <ostream>

#include <CLI/CLI.hpp>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "hse/io/atomic.h"
#include "hse/io/h5.h"
#include "hse/io/safetensors.h"

namespace fs = std::filesystem;

namespace hse::info {

void declare(CLI::App& app, Options& o) {
  app.add_option("files", o.files,
                 "hse HDF5 files (files of one kind are read as one set, shards in order; files of different kinds "
                 "are described each), checkpoint or adapter directories")
      ->required();
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

// A checkpoint (config.json + model.safetensors) or adapter (hse_vlm.json +
// adapter.safetensors) directory: its kind, its config's top-level values, its tensors.
void describe_dir(const std::string& dir, cli::Io& io) {
  const fs::path d(dir);
  std::string kind, config, weights;
  if (fs::exists(d / "hse_vlm.json")) {
    kind = "vlm_adapter";
    config = "hse_vlm.json";
    weights = "adapter.safetensors";
  } else if (fs::exists(d / "config.json")) {
    kind = "checkpoint";
    config = "config.json";
    weights = fs::exists(d / "model.safetensors.index.json") ? "model.safetensors.index.json" : "model.safetensors";
  } else {
    cli::fail_input(dir, "neither an hse HDF5 file nor a checkpoint (config.json) or adapter (hse_vlm.json) directory");
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(io::read_file((d / config).string()));
  } catch (const nlohmann::json::exception& e) {
    cli::fail_input((d / config).string(), "malformed JSON ({})", e.what());
  }
  io.out << "kind\t" << kind << '\n';
  if (j.is_object())
    for (const auto& [k, v] : j.items()) {
      if (v.is_object() || v.is_array()) continue;
      io.out << "config\t" << k << '\t' << (v.is_string() ? v.get<std::string>() : v.dump()) << '\n';
    }
  if (fs::exists(d / weights)) {
    const io::SafeTensorsSet st((d / weights).string());
    std::int64_t params = 0;
    for (const auto& n : st.names()) params += st.info(n).numel();
    io.out << "weights\t" << weights << '\n' << "tensors\t" << st.size() << '\n' << "parameters\t" << params << '\n';
  } else {
    io.out << "weights\tnone\n";
  }
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(d))
    if (e.path().filename() != config && e.path().filename() != weights)
      entries.push_back(e.path().filename().string() + (e.is_directory() ? "/" : ""));
  std::sort(entries.begin(), entries.end());
  for (const auto& e : entries) io.out << "file\t" << e << '\n';
}

void describe(const h5::Reader& r, cli::Io& io) {
  io.out << "kind\t" << r.kind() << '\n';
  io.out << "items\t" << r.size() << '\n';
  for (const char* ds : {"volumes", "slices", "slice_features", "embeddings", "features", "tokens"})
    if (r.has_dataset(ds)) {
      const auto shape = r.item_shape(ds);
      io.out << "dataset\t" << ds << "\t[" << r.size() << (shape.empty() ? "" : ",") << fmt::format("{}", fmt::join(shape, ","))
             << "]\n";
    }
  for (const auto& [k, v] : r.attrs()) io.out << "attr\t" << k << '\t' << value_str(v) << '\n';
}
}  // namespace

int run(const Options& o, cli::Io& io) {
  std::vector<std::string> files, dirs;
  for (const auto& f : o.files) (fs::is_directory(f) ? dirs : files).push_back(f);
  if (!dirs.empty() && (o.ids || o.provenance || !o.kind.empty()))
    cli::fail_usage("--ids, --provenance and --kind describe HDF5 files, not directories ({})", dirs.front());
  // Files of one kind are one set (shards); files of different kinds are described each.
  std::vector<std::string> kinds;
  for (const auto& f : files) kinds.push_back(h5::Reader({f}, o.kind).kind());
  const bool one_set = !files.empty() && dirs.empty() &&
                       std::all_of(kinds.begin(), kinds.end(), [&](const std::string& k) { return k == kinds[0]; });
  if (!one_set) {
    if (o.ids || o.provenance) cli::fail_usage("--ids and --provenance need files of one kind (got {})", fmt::join(kinds, ", "));
    bool first = true;
    for (const auto& f : o.files) {
      io.out << (first ? "" : "\n") << "path\t" << f << '\n';
      first = false;
      if (fs::is_directory(f)) describe_dir(f, io);
      else describe(h5::Reader({f}, o.kind), io);
    }
    cli::summary("described {} inputs", o.files.size());
    return 0;
  }
  h5::Reader r(files, o.kind);
  if (o.ids) {
    for (const auto& id : r.ids()) io.out << id << '\n';
    return 0;
  }
  if (o.provenance) {
    for (const auto& p : r.provenance()) io.out << p << '\n';
    return 0;
  }
  describe(r, io);
  cli::summary("described {} items in {} file{}", r.size(), files.size(), files.size() == 1 ? "" : "s");
  return 0;
}

}  // namespace hse::info
