#include "hse/image/ct_input.h"

#include <filesystem>
#include <istream>

#include <CLI/CLI.hpp>

#include "hse/cli/cli.h"
#include "hse/io/csv.h"

namespace fs = std::filesystem;

namespace hse::image {
namespace {
std::optional<double> number(const std::string& s) {
  if (s.empty() || s == "nan" || s == "NaN") return std::nullopt;
  try {
    std::size_t p = 0;
    const double v = std::stod(s, &p);
    if (p != s.size()) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}
}  // namespace

std::array<double, 2> parse_xy_spacing(const std::string& s) {
  std::string t;
  for (char c : s)
    if (c != '[' && c != ']' && c != ' ' && c != '"') t += c;
  const auto comma = t.find(',');
  auto a = number(t.substr(0, comma));
  auto b = comma == std::string::npos ? a : number(t.substr(comma + 1));
  if (!a || !b || *a <= 0 || *b <= 0) throw std::invalid_argument("bad XYSpacing");
  return {*a, *b};
}

Metadata::Metadata(const std::string& csv_path) : path_(csv_path) {
  const io::Table t = io::read_csv(csv_path);
  const std::size_t name = t.col("VolumeName");
  const auto cs = t.find_col("RescaleSlope"), ci = t.find_col("RescaleIntercept"), cz = t.find_col("ZSpacing"),
             cxy = t.find_col("XYSpacing");
  for (std::size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    MetaRow m;
    if (cs) m.slope = number(row[*cs]);
    if (ci) m.intercept = number(row[*ci]);
    if (cz) m.z_spacing = number(row[*cz]);
    if (cxy && !row[*cxy].empty()) {
      try {
        m.xy_spacing = parse_xy_spacing(row[*cxy]);
      } catch (const std::exception&) {
        cli::fail_input(csv_path, "line {}: XYSpacing '{}' is not of the form [x, y]", t.lines[r], row[*cxy]);
      }
    }
    if (m.z_spacing && *m.z_spacing <= 0)
      cli::fail_input(csv_path, "line {}: ZSpacing must be positive", t.lines[r]);
    if (rows_.emplace(row[name], m).second) order_.push_back(row[name]);
  }
}

std::vector<std::string> Metadata::names() const { return order_; }

const MetaRow& Metadata::at(const std::string& volume_name, const std::string& input_path) const {
  auto it = rows_.find(volume_name);
  if (it == rows_.end()) cli::fail_input(input_path, "no row for '{}' in metadata {}", volume_name, path_);
  return it->second;
}

std::string volume_id(const std::string& path) {
  fs::path p(path);
  std::string s = p.filename().string();
  if (s.empty()) s = p.parent_path().filename().string();
  return s;
}

std::string ctrate_path(const std::string& root, const std::string& name) {
  // valid_53_a_1.nii.gz -> valid/valid_53/valid_53_a/valid_53_a_1.nii.gz
  std::string stem = name;
  for (const char* ext : {".nii.gz", ".nii"})
    if (stem.size() > std::string(ext).size() && stem.compare(stem.size() - std::string(ext).size(), std::string::npos, ext) == 0)
      stem.resize(stem.size() - std::string(ext).size());
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= stem.size(); ++i)
    if (i == stem.size() || stem[i] == '_') {
      parts.push_back(stem.substr(start, i - start));
      start = i + 1;
    }
  std::vector<fs::path> candidates;
  if (parts.size() >= 3) {
    const std::string patient = parts[0] + "_" + parts[1], scan = patient + "_" + parts[2];
    for (const std::string split : {parts[0], parts[0] + "_fixed", std::string("")})
      candidates.push_back(fs::path(root) / split / patient / scan / name);
  }
  candidates.push_back(fs::path(root) / name);
  std::error_code ec;
  for (const auto& c : candidates)
    if (fs::exists(c, ec)) return c.lexically_normal().string();
  return candidates.front().lexically_normal().string();
}

void add_ct_input_options(CLI::App& app, CtInputOptions& o) {
  app.add_option("inputs", o.inputs,
                 "CT files (.nii, .nii.gz, .nrrd, .mha, .mhd, .dcm) or DICOM series directories; '-' reads a list of "
                 "paths from stdin");
  app.add_option("--root", o.root, "CT-RATE dataset root: with --metadata and no inputs, process every volume listed");
  app.add_option("--metadata", o.metadata,
                 "CT-RATE metadata CSV (VolumeName, RescaleSlope, RescaleIntercept, XYSpacing, ZSpacing)");
  app.add_option("--hu", o.hu,
                 "conversion to HU: auto (rescale with the metadata's slope/intercept only when the values are not "
                 "already HU), rescale, as-is")
      ->default_val("auto")
      ->check(CLI::IsMember({"auto", "rescale", "as-is"}));
}

std::vector<std::string> collect_inputs(const CtInputOptions& o, const Metadata& meta, std::istream& in) {
  std::vector<std::string> out;
  for (const auto& p : o.inputs) {
    if (p == "-") {
      std::string line;
      while (std::getline(in, line)) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        if (!line.empty() && line[0] != '#') out.push_back(line);
      }
    } else {
      out.push_back(p);
    }
  }
  if (out.empty() && !o.root.empty()) {
    if (meta.empty()) cli::fail_usage("--root needs --metadata (the list of volumes) when no inputs are given");
    for (const auto& n : meta.names()) out.push_back(ctrate_path(o.root, n));
  }
  if (out.empty()) cli::fail_usage("no inputs: give CT files, '-' for a list on stdin, or --root with --metadata");
  return out;
}

LoadedCt load_ct(const std::string& path, const Metadata& meta, HuMode mode) {
  LoadedCt c;
  c.id = volume_id(path);
  const MetaRow* row = meta.empty() ? nullptr : &meta.at(c.id, path);
  c.volume = read_volume(path);
  std::optional<std::pair<double, double>> si;
  if (row && row->slope && row->intercept) si = std::make_pair(*row->slope, *row->intercept);
  if (mode == HuMode::rescale && !si && !c.volume.hu_by_reader)
    cli::fail_input(path, "--hu rescale needs RescaleSlope and RescaleIntercept from --metadata");
  c.hu = decide_hu(c.volume, mode, si);
  cli::verbose("{}: {} HU: {}", path, c.hu.rescale ? "rescaling to" : "keeping values as", c.hu.reason);
  const auto& sp = c.volume.spacing;  // (x, y, z) from the header
  c.spacing_zxy = {sp[2], sp[0], sp[1]};
  if (row) {
    if (row->z_spacing) c.spacing_zxy[0] = *row->z_spacing;
    if (row->xy_spacing) {
      c.spacing_zxy[1] = (*row->xy_spacing)[0];
      c.spacing_zxy[2] = (*row->xy_spacing)[1];
    }
  }
  if (!row && !c.volume.spacing_in_header)
    cli::warn("{}: the header gives no voxel spacing and no --metadata row does; assuming 1 mm", path);
  return c;
}

}  // namespace hse::image
