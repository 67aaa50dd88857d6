#include "hse/image/ct_input.h"

#include <algorithm>
#include <filesystem>
#include <istream>
#include <regex>

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

bool is_bimcv_name(const std::string& s) {
  // sub-S<n>_ses-E<n>[_<key>-<value>...]_ct.nii[.gz], e.g. sub-S329586_ses-E60073_acq-1_run-2_bp-chest_ct.nii.gz
  static const std::regex re("^sub-S[0-9]+_ses-E[0-9]+(_[A-Za-z]+-[A-Za-z0-9]+)*_ct\\.nii(\\.gz)?$");
  return std::regex_match(s, re);
}

bool is_ctrate_name(const std::string& s) {
  // <split>_<patient>_<scan letter(s)>_<reconstruction>.nii[.gz], e.g. valid_53_a_1.nii.gz
  static const std::regex re("^[A-Za-z]+_[0-9]+_[a-z]+_[0-9]+\\.nii(\\.gz)?$");
  return std::regex_match(s, re);
}

std::vector<std::string> input_ids(const std::vector<std::string>& paths, const std::string& root) {
  auto clean = [](const std::string& p) {
    fs::path q = fs::absolute(p).lexically_normal();
    if (q.filename().empty()) q = q.parent_path();  // "series/" -> "series"
    return q;
  };
  std::vector<fs::path> abs;
  for (const auto& p : paths) abs.push_back(clean(p));
  // The inputs' common directory.
  fs::path common;
  bool first = true;
  for (const auto& a : abs) {
    const fs::path dir = a.parent_path();
    if (first) {
      common = dir;
      first = false;
      continue;
    }
    fs::path c;
    auto i = common.begin(), j = dir.begin();
    for (; i != common.end() && j != dir.end() && *i == *j; ++i, ++j) c /= *i;
    common = c;
  }
  const fs::path r = root.empty() ? fs::path() : clean(root);
  auto under = [](const fs::path& p, const fs::path& base) {
    const auto rel = p.lexically_relative(base);
    return !base.empty() && !rel.empty() && *rel.begin() != "..";
  };
  std::vector<std::string> ids;
  std::map<std::string, std::size_t> seen;
  for (std::size_t k = 0; k < abs.size(); ++k) {
    const std::string name = abs[k].filename().string();
    std::string id;
    if (is_ctrate_name(name) || is_bimcv_name(name)) id = name;
    else if (under(abs[k], r)) id = abs[k].lexically_relative(r).generic_string();
    else id = abs[k].lexically_relative(common).generic_string();
    if (id.empty() || id == ".") id = name;
    if (auto [it, fresh] = seen.emplace(id, k); !fresh)
      cli::fail_input(paths[k], "has the same id '{}' as {}; inputs in one run need distinct ids (rename one, or give "
                      "the inputs from a common directory that tells them apart)", id, paths[it->second]);
    ids.push_back(std::move(id));
  }
  return ids;
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
    for (const std::string& split : {parts[0], parts[0] + "_fixed", std::string("")})
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
                 "CT files (.nii, .nii.gz, .nrrd, .mha, .mhd, .dcm), directories (their volume files, searched "
                 "recursively; else a DICOM series); '-' reads a list of paths from stdin");
  app.add_option("--root", o.root, "CT-RATE dataset root: with --metadata and no inputs, process every volume listed");
  app.add_option("--metadata", o.metadata,
                 "CT-RATE metadata CSV (VolumeName, RescaleSlope, RescaleIntercept, XYSpacing, ZSpacing)");
  app.add_option("--hu", o.hu,
                 "conversion to HU: auto (rescale with the slope/intercept only when the values are not already HU; "
                 "refuse values that cannot be HU when none is known), rescale, as-is (force the stored values)")
      ->default_val("auto")
      ->check(CLI::IsMember({"auto", "rescale", "as-is"}));
  app.add_option("--rescale-slope", o.rescale_slope,
                 "RescaleSlope of the inputs, for files whose header and no metadata give it (with --rescale-intercept)");
  app.add_option("--rescale-intercept", o.rescale_intercept,
                 "RescaleIntercept of the inputs (e.g. -1024 for CT-RATE v1 files), with --rescale-slope");
}

void apply_hsenet_compat(CtInputOptions& o) {
  o.rescale_when_known = o.hu == "auto";
  o.xy_first_for_both = true;
}

bool is_volume_file(const std::string& name) {
  for (const char* ext : {".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd"}) {
    const std::string e(ext);
    if (name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0) return true;
  }
  return false;
}

std::vector<std::string> volume_files_under(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (!name.empty() && name[0] != '.' && it->is_regular_file(ec) && is_volume_file(name))
      out.push_back(it->path().lexically_normal().string());
  }
  if (ec) cli::fail_input(dir, "cannot list the directory ({})", ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> collect_inputs(const CtInputOptions& o, const Metadata& meta, std::istream& in) {
  if (o.rescale_slope.has_value() != o.rescale_intercept.has_value())
    cli::fail_usage("--rescale-slope and --rescale-intercept go together");
  if (o.rescale_slope && !o.metadata.empty())
    cli::fail_usage("--rescale-slope/--rescale-intercept replace --metadata's values: give one or the other");
  if (o.rescale_slope && *o.rescale_slope == 0) cli::fail_usage("--rescale-slope must not be 0");
  std::vector<std::string> out;
  for (const auto& p : o.inputs) {
    if (p == "-") {
      std::string line;
      while (std::getline(in, line)) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        if (!line.empty() && line[0] != '#') out.push_back(line);
      }
    } else {
      const auto files = volume_files_under(p);
      if (files.empty()) out.push_back(p);  // a file, or a DICOM series directory
      else out.insert(out.end(), files.begin(), files.end());
    }
  }
  if (out.empty() && !o.root.empty()) {
    if (meta.empty()) cli::fail_usage("--root needs --metadata (the list of volumes) when no inputs are given");
    for (const auto& n : meta.names()) out.push_back(ctrate_path(o.root, n));
  }
  if (out.empty()) cli::fail_usage("no inputs: give CT files, '-' for a list on stdin, or --root with --metadata");
  return out;
}

LoadedCt load_ct(const std::string& path, const std::string& id, const Metadata& meta, const CtInputOptions& o) {
  HuMode mode = parse_hu_mode(o.hu);
  LoadedCt c;
  c.id = id;
  c.path = path;
  const MetaRow* row = nullptr;
  if (!meta.empty()) {
    // CT-RATE metadata is keyed by VolumeName: the id, else the file name.
    const std::string base = fs::path(id).filename().string();
    row = &meta.at(meta.has(id) || !meta.has(base) ? id : base, path);
  }
  c.volume = read_volume(path);
  std::optional<std::pair<double, double>> si;
  if (o.rescale_slope && o.rescale_intercept) si = std::make_pair(*o.rescale_slope, *o.rescale_intercept);
  else if (row && row->slope && row->intercept) si = std::make_pair(*row->slope, *row->intercept);
  if (o.rescale_when_known && si) mode = HuMode::rescale;
  if (mode == HuMode::rescale && !si && !c.volume.hu_by_reader)
    cli::fail_input(path, "--hu rescale needs RescaleSlope and RescaleIntercept (--metadata, or --rescale-slope and "
                    "--rescale-intercept)");
  c.hu = decide_hu(c.volume, mode, si);
  if (c.hu.unknown)
    cli::fail_input(path,
                    "{} and no RescaleSlope/RescaleIntercept is known: give --metadata, or --rescale-slope and "
                    "--rescale-intercept (1 and -1024 for CT-RATE v1 files), or --hu as-is to keep the stored values",
                    c.hu.reason);
  cli::verbose("{}: {} HU: {}", path, c.hu.rescale ? "rescaling to" : "keeping values as", c.hu.reason);
  const auto& sp = c.volume.spacing;  // (x, y, z) from the header
  c.spacing_zxy = {sp[2], sp[0], sp[1]};
  if (row) {
    if (row->z_spacing) c.spacing_zxy[0] = *row->z_spacing;
    if (row->xy_spacing) {
      c.spacing_zxy[1] = (*row->xy_spacing)[0];
      c.spacing_zxy[2] = (*row->xy_spacing)[o.xy_first_for_both ? 0 : 1];
    }
  }
  if (!row && !c.volume.spacing_in_header)
    cli::warn("{}: the header gives no voxel spacing and no --metadata row does; assuming 1 mm", path);
  return c;
}

}  // namespace hse::image
