// BIMCV-R: its layout (CT<n>/ct/*.nii.gz, as HSENet's and MedFinder's code glob it) and its
// report CSV (BIMCV-R.csv, or meta/curated_ct_report_path_En.csv), paired by the file name in the
// CSV's path column, never by the PatientID/ReportID columns (for the COVID-negative cohort they
// name another study); and a split by row order that keeps each patient (the file name's sub-S..)
// on one side.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace hse::image::bimcv {

// The CSV names this hse looks for under a root, in order.
extern const std::vector<std::string> kCsvNames;

// The volume files of a BIMCV-R root: ROOT/CT*/ct/*.nii[.gz], sorted by file name.
std::vector<std::string> volume_files(const std::string& root);

// The report CSV of a root: exactly one of kCsvNames must exist (exit 3 naming both otherwise).
std::string find_csv(const std::string& root);

struct Case {
  std::string name;     // the file name: the id every hse tool gives the volume
  std::string path;     // the volume file
  std::string subject;  // sub-S.. of the file name (the patient)
  std::size_t row = 0;  // 0-based CSV row
};

struct Dataset {
  std::string csv;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // the CSV rows, in file order
  std::vector<Case> cases;                    // rows with a volume file, in CSV order
  std::size_t rows_without_file = 0, duplicate_rows = 0, files_without_row = 0;
  std::string path_column;
};

// Reads `csv` and pairs its rows with the files under `root` by the file name of `path_column`
// ("" picks ct_path, else path). Exit 3 when the column is missing, its values are not volume
// files, or no row has a file. Rows without a file, a second row for one file, and files without a
// row are counted (the caller reports them).
Dataset read(const std::string& root, const std::string& csv, const std::string& path_column = {});

// The split by row order, one side per patient: in CSV order, a patient's first case goes to
// training while fewer than round(train_fraction * cases) cases are there, and the patient's later
// cases follow it. true: training. Exit 2 when a side would be empty.
std::vector<bool> split(const std::vector<Case>& cases, double train_fraction);

}  // namespace hse::image::bimcv
