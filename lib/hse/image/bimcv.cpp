#include "hse/image/bimcv.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "hse/cli/cli.h"
#include "hse/image/ct_input.h"
#include "hse/io/csv.h"

namespace fs = std::filesystem;

namespace hse::image::bimcv {

const std::vector<std::string> kCsvNames = {"BIMCV-R.csv", "meta/curated_ct_report_path_En.csv"};

namespace {
bool is_nifti(const std::string& name) {
  auto ends = [&](const std::string& s) { return name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0; };
  return ends(".nii") || ends(".nii.gz");
}
// The file name of a CSV path value, either separator.
std::string base_name(const std::string& p) {
  const auto k = p.find_last_of("/\\");
  return k == std::string::npos ? p : p.substr(k + 1);
}
}  // namespace

std::vector<std::string> volume_files(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) cli::fail_input(root, "is not a directory (a BIMCV-R root holds CT*/ct/*.nii.gz)");
  std::vector<std::string> out;
  for (const auto& ct : fs::directory_iterator(root, ec)) {
    const std::string folder = ct.path().filename().string();
    if (folder.rfind("CT", 0) != 0 || !fs::is_directory(ct.path() / "ct", ec)) continue;
    for (const auto& f : fs::directory_iterator(ct.path() / "ct", ec))
      if (f.is_regular_file(ec) && is_nifti(f.path().filename().string())) out.push_back(f.path().string());
  }
  if (ec) cli::fail_input(root, "cannot be listed: {}", ec.message());
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    return fs::path(a).filename() < fs::path(b).filename();
  });
  return out;
}

std::string find_csv(const std::string& root) {
  std::vector<std::string> found;
  for (const auto& n : kCsvNames)
    if (fs::is_regular_file(fs::path(root) / n)) found.push_back((fs::path(root) / n).string());
  if (found.empty())
    cli::fail_input(root, "has no report CSV ({} or {}): give one with --csv", kCsvNames[0], kCsvNames[1]);
  if (found.size() > 1)
    cli::fail_input(root, "has both {} and {}: say which with --csv", kCsvNames[0], kCsvNames[1]);
  return found[0];
}

Dataset read(const std::string& root, const std::string& csv, const std::string& path_column) {
  Dataset d;
  io::Table t = io::read_csv(csv);
  d.csv = csv;
  d.header = t.header;
  std::size_t pc = 0;
  if (!path_column.empty()) {
    pc = t.col(path_column);
    d.path_column = path_column;
  } else if (auto c = t.find_col("ct_path")) {
    pc = *c;
    d.path_column = "ct_path";
  } else if (auto c2 = t.find_col("path")) {
    pc = *c2;
    d.path_column = "path";
  } else {
    cli::fail_input(csv, "has neither a ct_path nor a path column: give the column of the volume paths with --path-column");
  }
  const std::vector<std::string> files = volume_files(root);
  std::map<std::string, std::string> by_name;
  for (const auto& f : files) {
    const std::string n = fs::path(f).filename().string();
    if (auto [it, fresh] = by_name.emplace(n, f); !fresh)
      cli::fail_input(f, "has the same file name as {}; BIMCV-R's file names are unique and name its volumes",
                      it->second);
  }
  std::map<std::string, std::size_t> used;
  for (std::size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    const std::string value = pc < row.size() ? row[pc] : std::string();
    const std::string name = base_name(value);
    if (!is_nifti(name))
      cli::fail_input(csv, "line {}: column {} holds '{}', not a .nii or .nii.gz file (give the column of the volume "
                      "paths with --path-column)", t.lines[r], d.path_column, value);
    const auto it = by_name.find(name);
    if (it == by_name.end()) {
      ++d.rows_without_file;
      continue;
    }
    if (used.count(name)) {
      ++d.duplicate_rows;
      continue;
    }
    used[name] = r;
    Case c;
    c.name = name;
    c.path = it->second;
    c.subject = name.substr(0, name.find('_'));
    c.row = r;
    d.cases.push_back(std::move(c));
  }
  d.files_without_row = files.size() - used.size();
  d.rows = std::move(t.rows);
  if (d.cases.empty())
    cli::fail_input(csv, "no row names a volume file under {} ({} rows, {} files, paired by the file name in column {})",
                    root, d.rows.size(), files.size(), d.path_column);
  return d;
}

std::vector<bool> split(const std::vector<Case>& cases, double train_fraction) {
  if (!(train_fraction > 0 && train_fraction < 1)) cli::fail_usage("--train-fraction: must be between 0 and 1");
  const std::size_t n = cases.size();
  const auto target = static_cast<std::size_t>(std::llround(train_fraction * static_cast<double>(n)));
  std::map<std::string, bool> side;
  std::vector<bool> train(n);
  std::size_t n_train = 0;
  for (std::size_t i = 0; i < n; ++i) {
    auto it = side.find(cases[i].subject);
    if (it == side.end()) it = side.emplace(cases[i].subject, n_train < target).first;
    train[i] = it->second;
    n_train += train[i];
  }
  if (n_train == 0 || n_train == n)
    cli::fail_usage("--train-fraction {}: leaves no {} case ({} cases of {} patients; a patient stays on one side)",
                    train_fraction, n_train ? "validation" : "training", n, side.size());
  return train;
}

}  // namespace hse::image::bimcv
