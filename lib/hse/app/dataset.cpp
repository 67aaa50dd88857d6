#include "hse/app/dataset.h"

#include <filesystem>

#include <CLI/CLI.hpp>

#include "hse/image/bimcv.h"
#include "hse/image/ct_input.h"
#include "hse/io/atomic.h"
#include "hse/io/csv.h"

namespace fs = std::filesystem;

namespace hse::dataset {

void declare(CLI::App& app, Options& o) {
  app.add_option("layout", o.layout, "the data set's layout: bimcv-r")
      ->required()
      ->check(CLI::IsMember({"bimcv-r"}));
  app.add_option("root", o.root, "its root folder (bimcv-r: the folder holding CT*/ct/*.nii.gz)")->required();
  cli::add_common(app, o.common, cli::kOutputRequired | cli::kVerbosity,
                  "output directory: {train,valid}_volumes.txt and {train,valid}_reports.csv");
  app.add_option("--csv", o.csv,
                 "the report CSV (default: ROOT/BIMCV-R.csv or ROOT/meta/curated_ct_report_path_En.csv, whichever "
                 "exists)");
  app.add_option("--path-column", o.path_column,
                 "the CSV column whose file names pair rows with volume files (default: ct_path, else path)");
  app.add_option("--train-fraction", o.train_fraction,
                 "share of the paired cases for training, by CSV row order, each patient (sub-S.. of the file name) "
                 "on one side; 0.9 is the paper's 6,766 training and 752 test pairs")
      ->default_val(0.9);
}

int run(const Options& o, cli::Io& io) {
  (void)io;
  if (!(o.train_fraction > 0 && o.train_fraction < 1)) cli::fail_usage("--train-fraction: must be between 0 and 1");
  const std::string csv = o.csv.empty() ? image::bimcv::find_csv(o.root) : o.csv;
  const image::bimcv::Dataset d = image::bimcv::read(o.root, csv, o.path_column);
  if (d.rows_without_file)
    cli::warn("{}: {} of {} rows name no volume file under {} and are left out", csv, d.rows_without_file,
              d.rows.size(), o.root);
  if (d.duplicate_rows)
    cli::warn("{}: {} rows name a volume file an earlier row names; the first row is kept", csv, d.duplicate_rows);
  if (d.files_without_row)
    cli::warn("{}: {} volume files under {} have no row and are left out", csv, d.files_without_row, o.root);
  const std::vector<bool> train = image::bimcv::split(d.cases, o.train_fraction);

  std::error_code ec;
  fs::create_directories(o.common.output, ec);
  if (ec) cli::fail(cli::Exit::runtime, o.common.output, "cannot create directory: {}", ec.message());
  std::vector<std::string> header = {"VolumeName"};
  header.insert(header.end(), d.header.begin(), d.header.end());
  std::size_t n_train = 0;
  for (const bool side : {true, false}) {
    const std::string split = side ? "train" : "valid";
    io::AtomicFile vol((fs::path(o.common.output) / (split + "_volumes.txt")).string());
    io::AtomicFile rep((fs::path(o.common.output) / (split + "_reports.csv")).string());
    rep.stream() << io::csv_row(header);
    // VolumeName: the id hse-preprocess and hse-slice give each file of this list (BIMCV-R's file
    // names are kept as they are; any other name becomes its path under the list's common folder).
    std::vector<std::size_t> rows;
    std::vector<std::string> paths;
    for (std::size_t i = 0; i < d.cases.size(); ++i)
      if (train[i] == side) {
        rows.push_back(i);
        paths.push_back(fs::absolute(d.cases[i].path).lexically_normal().string());
      }
    const std::vector<std::string> ids = image::input_ids(paths);
    for (std::size_t k = 0; k < rows.size(); ++k) {
      const auto& c = d.cases[rows[k]];
      vol.stream() << paths[k] << '\n';
      std::vector<std::string> row = {ids[k]};
      const auto& src = d.rows[c.row];
      row.insert(row.end(), src.begin(), src.end());
      row.resize(header.size());
      rep.stream() << io::csv_row(row);
      n_train += side;
    }
    vol.commit();
    rep.commit();
  }
  cli::summary("{}: {} cases ({} training, {} validation), paired by the file name in column {}, to {}", csv,
               d.cases.size(), n_train, d.cases.size() - n_train, d.path_column, o.common.output);
  return 0;
}

}  // namespace hse::dataset
