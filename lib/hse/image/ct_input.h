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
  bool has(const std::string& volume_name) const { return rows_.count(volume_name) > 0; }
  // The row for a volume name; throws (exit 3) naming the input when absent.
  const MetaRow& at(const std::string& volume_name, const std::string& input_path) const;

 private:
  std::string path_;
  std::vector<std::string> order_;
  std::map<std::string, MetaRow> rows_;
};

// Parses CT-RATE's XYSpacing string "[0.7, 0.7]".
std::array<double, 2> parse_xy_spacing(const std::string& s);

// True for a CT-RATE VolumeName such as "valid_53_a_1.nii.gz".
bool is_ctrate_name(const std::string& file_name);
// True for a BIMCV-R (BIMCV-COVID19, BIDS) CT file name such as
// "sub-S03825_ses-E07697_run-2_bp-chest_ct.nii.gz".
bool is_bimcv_name(const std::string& file_name);

// The ids of CT inputs, one rule for every tool: a file named as CT-RATE or
// BIMCV-R name their volumes keeps that name (CT-RATE's VolumeName; BIMCV-R's
// file names are unique across its CT*/ct folders); any other input is named by its
// path relative to --root when it lies under it, else relative to the inputs'
// common directory (so one file is its file name, a DICOM series its directory
// name, and pa/ct.nii.gz and pb/ct.nii.gz stay apart). Throws exit 3 naming both
// files when two inputs still map to one id.
std::vector<std::string> input_ids(const std::vector<std::string>& paths, const std::string& root = {});

// True for a file name with a volume-file extension (.nii, .nii.gz, .nrrd, .nhdr, .mha, .mhd).
bool is_volume_file(const std::string& name);
// The volume files (is_volume_file) under `dir`, searched recursively, sorted;
// empty when `dir` is not a directory or holds none (then it is a DICOM series).
std::vector<std::string> volume_files_under(const std::string& dir);

// Path of a CT-RATE volume under `root` (the dataset folder or one split folder).
std::string ctrate_path(const std::string& root, const std::string& volume_name);

// Options for choosing inputs and HU handling, declared once for every tool that reads CT.
struct CtInputOptions {
  std::vector<std::string> inputs;  // files, directories (of volume files, else a DICOM series), or "-" (stdin list)
  std::string root;                 // --root: CT-RATE dataset root
  std::string metadata;             // --metadata: CT-RATE metadata CSV
  std::string hu = "auto";          // --hu auto|rescale|as-is
  std::optional<double> rescale_slope, rescale_intercept;  // --rescale-slope/--rescale-intercept
  // Not a flag: the ids of `inputs` when a caller has already expanded them (hse-generate
  // passes a subset of its inputs on, which must keep the ids they had in the whole list).
  std::vector<std::string> ids;
  // Not a flag (--compat hsenet): XYSpacing's first value for both X and Y, as HSENet's scripts
  // parse it ([1:][:-2].split(",")[0]); hse uses the second for Y.
  bool xy_first_for_both = false;
  // Not a flag (--compat hsenet): a known slope and intercept (--metadata row or
  // --rescale-slope/--rescale-intercept) is applied to every file, as the scripts do; files
  // without one are decided as --hu says.
  bool rescale_when_known = false;
};
void add_ct_input_options(CLI::App& app, CtInputOptions& o);
// --compat hsenet on the CT inputs, as HSENet's preprocessing scripts read them: with --hu auto,
// a known slope and intercept is applied to every file (CT-RATE v2 files, already HU, are
// shifted again), and XYSpacing's first value serves X and Y. An explicit --hu stays.
void apply_hsenet_compat(CtInputOptions& o);

// The input list: positional paths (with "-" expanded from `in`, and a
// directory holding volume files expanded to them, recursively), or every
// metadata row resolved under --root.
std::vector<std::string> collect_inputs(const CtInputOptions& o, const Metadata& meta, std::istream& in);

struct LoadedCt {
  std::string id;
  std::string path;  // the input as given
  Volume volume;
  HuDecision hu;
  std::array<double, 3> spacing_zxy{1, 1, 1};
};
// Reads one input (named `id`) and decides HU and spacing (metadata or
// --rescale-slope/--rescale-intercept first, then the header). Refuses (exit 3)
// values that cannot be HU when no slope/intercept is known, unless --hu as-is.
LoadedCt load_ct(const std::string& path, const std::string& id, const Metadata& meta, const CtInputOptions& o);

}  // namespace hse::image
