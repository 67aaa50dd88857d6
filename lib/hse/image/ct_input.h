// Finding and loading CT inputs: file lists, CT-RATE roots and metadata CSVs,
// and the per-file HU and spacing decisions shared by hse-preprocess and hse-slice.
#pragma once

#include <array>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "hse/image/ops.h"
#include "hse/image/volume.h"

namespace CLI {
class App;
}

namespace hse::image {

// One row of a CT-RATE metadata CSV (the columns hse uses).
struct MetaRow {
  std::optional<double> slope, intercept, z_spacing;
  std::optional<std::array<double, 2>> xy_spacing;
};

class Metadata {
 public:
  Metadata() = default;
  explicit Metadata(const std::string& csv_path);
  bool empty() const { return rows_.empty(); }
  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;  // VolumeName column in file order
  // The row for a volume name; throws (exit 3) naming the input when absent.
  const MetaRow& at(const std::string& volume_name, const std::string& input_path) const;

 private:
  std::string path_;
  std::vector<std::string> order_;
  std::map<std::string, MetaRow> rows_;
};

// Parses CT-RATE's XYSpacing string "[0.7, 0.7]".
std::array<double, 2> parse_xy_spacing(const std::string& s);

// The id of a CT input: the file name (CT-RATE's VolumeName), or the directory
// name for a DICOM series.
std::string volume_id(const std::string& path);

// Path of a CT-RATE volume under `root` (the dataset folder or one split folder).
std::string ctrate_path(const std::string& root, const std::string& volume_name);

// Options for choosing inputs and HU handling, declared once for every tool that reads CT.
struct CtInputOptions {
  std::vector<std::string> inputs;  // files, DICOM directories, or "-" (a list on stdin)
  std::string root;                 // --root: CT-RATE dataset root
  std::string metadata;             // --metadata: CT-RATE metadata CSV
  std::string hu = "auto";          // --hu auto|rescale|as-is
};
void add_ct_input_options(CLI::App& app, CtInputOptions& o);

// The input list: positional paths (with "-" expanded from `in`), or every
// metadata row resolved under --root.
std::vector<std::string> collect_inputs(const CtInputOptions& o, const Metadata& meta, std::istream& in);

struct LoadedCt {
  std::string id;
  Volume volume;
  HuDecision hu;
  std::array<double, 3> spacing_zxy{1, 1, 1};
};
// Reads one input and decides HU and spacing (metadata first, then the header).
LoadedCt load_ct(const std::string& path, const Metadata& meta, HuMode mode);

}  // namespace hse::image
