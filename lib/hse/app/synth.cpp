// hse-synth: the tool. Plans every patient, renders the volumes in parallel
// and writes the CT-RATE-style CSV files and the truth record.
#include "hse/app/synth.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "hse/cli/parallel.h"
#include "hse/image/volume.h"
#include "hse/io/atomic.h"
#include "hse/io/csv.h"
#include "hse/synth/internal.h"
#include "hse/synth/synth.h"

namespace hse::synth {

void declare(CLI::App& app, Options& o) {
  cli::add_common(app, o.common, cli::kOutputRequired | cli::kThreads | cli::kSeed | cli::kVerbosity | cli::kProgress,
                  "output directory (DIR/dataset/... is written)");
  app.add_option("--n-train", o.n_train, "number of training patients")->default_val(24);
  app.add_option("--n-valid", o.n_valid, "number of validation patients")->default_val(8);
  app.add_option("--size", o.size, "volume sizes: tiny (tests), small, realistic (512x512x300)")
      ->default_val("small")
      ->type_name("tiny|small|realistic");
  app.add_option("--lesion-scale", o.lesion_scale,
                 "multiply every lesion dimension by this factor (1: realistic sizes; the demo uses larger "
                 "findings so they survive downsampling to 16x64x64)")
      ->default_val(1.0);
  app.add_option("--gzip-level", o.gzip_level, "gzip level of the .nii.gz files (1-12)")->default_val(1);
  app.add_option("--layout", o.layout,
                 "ct-rate: CT-RATE's folders and CSV files; bimcv-r: BIMCV-R's CT<n>/ct/sub-S..._ct.nii.gz files "
                 "(HU, header spacing) and one BIMCV-R.csv of reports (training patients' rows first)")
      ->default_val("ct-rate")
      ->check(CLI::IsMember({"ct-rate", "bimcv-r"}));
}

namespace {

double r2(double v) { return std::round(v * 100) / 100; }

const std::vector<std::string> kMetaHeader = {
    "VolumeName", "Manufacturer", "SeriesDescription", "ManufacturerModelName", "PatientSex", "PatientAge",
    "ReconstructionDiameter", "DistanceSourceToDetector", "DistanceSourceToPatient", "GantryDetectorTilt",
    "TableHeight", "RotationDirection", "ExposureTime", "XRayTubeCurrent", "Exposure", "FilterType", "GeneratorPower",
    "FocalSpots", "ConvolutionKernel", "PatientPosition", "RevolutionTime", "SingleCollimationWidth",
    "TotalCollimationWidth", "TableSpeed", "TableFeedPerRotation", "SpiralPitchFactor", "DataCollectionCenterPatient",
    "ReconstructionTargetCenterPatient", "ExposureModulationType", "CTDIvol", "ImagePositionPatient",
    "ImageOrientationPatient", "SliceLocation", "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns",
    "XYSpacing", "RescaleIntercept", "RescaleSlope", "RescaleType", "NumberofSlices", "ZSpacing", "StudyDate"};

std::string num(double v) { return fmt::format("{}", v); }

std::vector<std::string> metadata_row(const Patient& p, const VolumeSpec& v) {
  const auto& g = v.geo;
  // DICOM patient coordinates (LPS) of the first voxel, with the table offset.
  const double table = -150;
  const std::string ipp = fmt::format("[{}, {}, {}]", r2(g.origin[0]), r2(g.origin[1] + table), r2(g.origin[2] - 500));
  const double exposure = std::round(v.tube_current * v.exposure_time / 1000.0);
  return {v.name,
          v.manufacturer,
          v.series,
          v.model,
          std::string(1, p.sex),
          fmt::format("{:03d}Y", p.age),
          num(r2(v.fov_mm)),
          "1085.6",
          "595",
          "0",
          "160",
          "CW",
          std::to_string(v.exposure_time),
          std::to_string(v.tube_current),
          num(exposure),
          "FLAT",
          "48",
          "1.2",
          v.kernel,
          "HFS",
          "0.5",
          "0.6",
          "38.4",
          "46",
          "23",
          "1.2",
          fmt::format("[0, {}, -500]", table),
          fmt::format("[0, {}, {}]", table, r2(g.origin[2] - 500 + g.spacing[2] * (g.dim[2] - 1) / 2)),
          "XYZ_EC",
          num(v.ctdi),
          ipp,
          "[1, 0, 0, 0, 1, 0]",
          num(r2(g.origin[2] - 500)),
          "1",
          "MONOCHROME2",
          std::to_string(g.dim[1]),
          std::to_string(g.dim[0]),
          fmt::format("[{}, {}]", g.spacing[1], g.spacing[0]),
          num(v.intercept),
          num(v.slope),
          "HU",
          std::to_string(g.dim[2]),
          num(g.spacing[2]),
          v.study_date};
}

void make_dirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) cli::fail(cli::Exit::runtime, dir, "cannot create directory: {}", ec.message());
}

// --- BIMCV-R ---------------------------------------------------------------------
// BIMCV-R's CSV columns (BIMCV_meta.csv as the HAID project's metadata copies it).
const std::vector<std::string> kBimcvHeader = {"PatientID", "ReportID", "Report", "Labels", "Localizations",
                                               "LabelsLocalizationsBySentence", "labelCUIS", "LocalizationsCUIS",
                                               "num", "path", "Report_en", "ct_path"};
constexpr int kBimcvFilesPerFolder = 500;  // HSENet's unzip script: CT{idx // 500 + 1}/ct

// The BIDS names BIMCV-R's files carry: sub-S<patient>_ses-E<session>_run-<recon>_bp-chest_ct.nii.gz.
void bimcv_rename(std::vector<Patient>& patients) {
  int pi = 0, si = 0;
  std::size_t k = 0;
  for (auto& p : patients) {
    ++pi;
    std::vector<int> session(p.scans.size());
    for (auto& s : session) s = ++si;
    for (auto& v : p.volumes) {
      v.name = fmt::format("sub-S{:05d}_ses-E{:05d}_run-{}_bp-chest_ct.nii.gz", 10000 + pi,
                           20000 + session[static_cast<std::size_t>(v.scan)], v.recon);
      v.rel_path = fmt::format("CT{}/ct/{}", k / kBimcvFilesPerFolder + 1, v.name);
      ++k;
      v.v1 = false;  // HU with the spacing in the header, no slope/intercept to apply
      v.intercept = 0;
      v.slope = 1;
    }
  }
}

// "['a', 'b']" as Python writes a list of strings.
std::string py_list(const std::vector<std::string>& xs) {
  std::string out = "[";
  for (std::size_t i = 0; i < xs.size(); ++i) out += (i ? ", '" : "'") + xs[i] + "'";
  return out + "]";
}

// BIMCV-R's Report column (the Spanish original there) in its form: lower case, no accents or
// punctuation, sentences joined by " . ". Here the English text, so formed.
std::string bimcv_flat(const std::string& text) {
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '.') out += " .";
    else if (std::isalnum(u) || c == ' ') out += static_cast<char>(std::tolower(u));
    else out += ' ';
  }
  std::string squeezed;
  for (char c : out)
    if (!(c == ' ' && (squeezed.empty() || squeezed.back() == ' '))) squeezed += c;
  while (!squeezed.empty() && (squeezed.back() == ' ' || squeezed.back() == '.')) squeezed.pop_back();
  return squeezed;
}

// One CSV row per volume, training patients first. One row in six belongs to the "negative
// cohort", whose PatientID/ReportID columns name another row's study, as in BIMCV-R: readers must
// pair rows with files by the file name in ct_path, never by the ID columns.
void write_bimcv_csv(const std::string& path, const std::vector<Patient>& patients) {
  struct Row {
    const Patient* p;
    const VolumeSpec* v;
  };
  std::vector<Row> rows;
  for (const auto& p : patients)
    for (const auto& v : p.volumes) rows.push_back({&p, &v});
  auto ids = [](const std::string& name) {  // sub-S.., ses-E..
    const auto a = name.find('_'), b = name.find('_', a + 1);
    return std::make_pair(name.substr(0, a), name.substr(a + 1, b - a - 1));
  };
  io::AtomicFile f(path);
  f.stream() << io::csv_row(kBimcvHeader);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& [p, v] = rows[i];
    const Scan& s = p->scans[static_cast<std::size_t>(v->scan)];
    const bool negative = rows.size() > 1 && i % 6 == 5;
    const auto [sub, ses] = ids(rows[negative ? (i + 1) % rows.size() : i].v->name);
    const std::string cohort = negative ? "covid19_neg" : "covid19_posi";
    const auto [own_sub, own_ses] = ids(v->name);
    const std::string dir = fmt::format("/data/BIMCV_CT/{}/{}/{}/mod-rx", cohort, own_sub, own_ses);
    std::vector<std::string> labels, places;
    for (std::size_t l = 0; l < s.labels.size(); ++l)
      if (s.labels[l]) {
        std::string name = kLabels[l];
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        labels.push_back(name);
      }
    for (const auto& fd : s.findings)
      for (const auto& a : fd.anatomy)
        if (std::find(places.begin(), places.end(), a) == places.end()) places.push_back(a);
    if (labels.empty()) labels.push_back("normal");
    const std::string report_en = s.report.technique == "Not given." ? s.report.impressions
                                                                     : s.report.technique + " " + s.report.impressions;
    f.stream() << io::csv_row({sub, ses, bimcv_flat(report_en), py_list(labels), py_list(places), "[]", "[]", "[]",
                               fmt::format("{:.1f}", static_cast<double>(labels.size())), dir, report_en,
                               dir + "/" + v->name});
  }
  f.commit();
}

// CT-RATE's reports, metadata, labels and RadGenome location CSVs, per split.
void write_ctrate_csvs(const std::string& root, const std::vector<Patient>& patients) {
  for (const std::string split : {"train", "valid"}) {
    const std::string long_name = split == "train" ? "train" : "validation";
    io::AtomicFile rep(root + "/radiology_text_reports/" + long_name + "_reports.csv");
    io::AtomicFile meta(root + "/metadata/" + long_name + "_metadata.csv");
    io::AtomicFile lab(root + "/multi_abnormality_labels/" + split + "_predicted_labels.csv");
    io::AtomicFile vqa(root + "/radgenome_files/" + long_name + "_vqa_location.csv");
    rep.stream() << io::csv_row({"VolumeName", "ClinicalInformation_EN", "Technique_EN", "Findings_EN",
                                 "Impressions_EN"});
    meta.stream() << io::csv_row(kMetaHeader);
    std::vector<std::string> lh = {"VolumeName"};
    for (const char* l : kLabels) lh.emplace_back(l);
    lab.stream() << io::csv_row(lh);
    vqa.stream() << io::csv_row({"Volumename", "Anatomy", "Abnormality"});
    for (const auto& p : patients) {
      if (p.split != split) continue;
      for (const auto& v : p.volumes) {
        const Scan& s = p.scans[static_cast<std::size_t>(v.scan)];
        rep.stream() << io::csv_row({v.name, s.report.clinical, s.report.technique, s.report.findings,
                                     s.report.impressions});
        meta.stream() << io::csv_row(metadata_row(p, v));
        std::vector<std::string> row = {v.name};
        for (int l : s.labels) row.push_back(std::to_string(l));
        lab.stream() << io::csv_row(row);
        if (v.recon == 1)
          for (const auto& f : s.findings)
            for (const auto& a : f.anatomy) vqa.stream() << io::csv_row({v.name, a, f.abnormality});
      }
    }
    rep.commit();
    meta.commit();
    lab.commit();
    vqa.commit();
  }
}

}  // namespace

std::string truth_json(const Patient& p, const VolumeSpec& v) {
  using nlohmann::ordered_json;
  const Scan& s = p.scans[static_cast<std::size_t>(v.scan)];
  ordered_json j;
  j["id"] = v.name;
  j["split"] = p.split;
  j["patient"] = fmt::format("{}_{}", p.split, p.number);
  j["scan"] = std::string(1, s.letter);
  j["recon"] = v.recon;
  j["path"] = "dataset/" + v.rel_path;
  j["convention"] = v.v1 ? "v1" : "v2";
  j["intercept"] = v.intercept;
  j["slope"] = v.slope;
  j["stored"] = v.v1 ? "(HU - intercept) / slope" : "HU";
  j["header_spacing"] = !v.v1;
  j["dims"] = {v.geo.dim[0], v.geo.dim[1], v.geo.dim[2]};
  j["spacing"] = {v.geo.spacing[0], v.geo.spacing[1], v.geo.spacing[2]};
  j["origin_mm"] = {r2(v.geo.origin[0]), r2(v.geo.origin[1]), r2(v.geo.origin[2])};
  j["noise_hu"] = v.noise_hu;
  j["sex"] = std::string(1, p.sex);
  j["age"] = p.age;
  j["normal"] = s.normal();
  j["labels"] = s.labels;
  ordered_json fs = ordered_json::array();
  for (const auto& f : s.findings) {
    ordered_json o;
    o["type"] = kLabels[static_cast<std::size_t>(f.label)];
    o["label_index"] = f.label;
    o["rendered"] = f.rendered;
    if (!f.side.empty()) o["side"] = f.side;
    if (f.lobe) o["lobe"] = lobe_anatomy(f.lobe);
    if (f.rendered) {
      o["centre_mm"] = {r2(f.centre[0]), r2(f.centre[1]), r2(f.centre[2])};
      const auto vx = v.geo.voxel(f.centre);
      o["centre_voxel"] = {vx[0], vx[1], vx[2]};
      o["size_mm"] = r2(f.size_mm);
    }
    if (!f.detail.empty()) o["detail"] = f.detail;
    o["anatomy"] = f.anatomy;
    o["abnormality"] = f.abnormality;
    if (!f.points.empty()) {
      ordered_json pts = ordered_json::array();
      for (const auto& q : f.points) pts.push_back({r2(q[0]), r2(q[1]), r2(q[2]), r2(q[3])});
      o["points_mm"] = pts;  // x, y, z, radius
    }
    fs.push_back(o);
  }
  j["findings"] = fs;
  return j.dump();
}

int run(const Options& o, cli::Io& io) {
  (void)io;
  const Size size = parse_size(o.size);
  if (o.n_train < 0 || o.n_valid < 0) cli::fail_usage("--n-train/--n-valid: counts must not be negative");
  if (o.n_train + o.n_valid < 1) cli::fail_usage("--n-train/--n-valid: nothing to generate (both are 0)");
  if (o.n_train > 1000000 || o.n_valid > 1000000) cli::fail_usage("--n-train/--n-valid: at most 1000000 patients");
  if (o.gzip_level < 1 || o.gzip_level > 12) cli::fail_usage("--gzip-level: must be in 1..12");
  if (!(o.lesion_scale >= 0.25 && o.lesion_scale <= 4))
    cli::fail_usage("--lesion-scale: must be in 0.25..4");
  const bool bimcv = o.layout == "bimcv-r";
  if (!bimcv && o.layout != "ct-rate") cli::fail_usage("--layout: must be ct-rate or bimcv-r");
  const std::string root = o.common.output + "/dataset";
  make_dirs(root);
  io::check_writable(root + "/truth.jsonl");
  if (!bimcv)
    for (const char* d : {"radiology_text_reports", "metadata", "multi_abnormality_labels", "radgenome_files"})
      make_dirs(root + "/" + d);

  // Plan every patient (cheap; independent per patient).
  std::vector<Patient> patients;
  for (int i = 1; i <= o.n_train; ++i) patients.push_back(plan_patient(o.common.seed, "train", i, size, o.lesion_scale));
  for (int i = 1; i <= o.n_valid; ++i) patients.push_back(plan_patient(o.common.seed, "valid", i, size, o.lesion_scale));
  if (bimcv) bimcv_rename(patients);
  struct Job {
    const Patient* p;
    const VolumeSpec* v;
  };
  std::vector<Job> jobs;
  for (const auto& p : patients)
    for (const auto& v : p.volumes) jobs.push_back({&p, &v});
  for (const auto& j : jobs) make_dirs(root + "/" + std::filesystem::path(j.v->rel_path).parent_path().string());
  cli::verbose("{} patients, {} volumes, size {}", patients.size(), jobs.size(), size_name(size));

  // --- text files ---
  if (bimcv) write_bimcv_csv(root + "/BIMCV-R.csv", patients);
  else write_ctrate_csvs(root, patients);
  {
    io::AtomicFile truth(root + "/truth.jsonl");
    for (const auto& j : jobs) truth.stream() << truth_json(*j.p, *j.v) << '\n';
    truth.commit();
  }

  // --- volumes ---
  const int threads = cli::resolve_threads(o.common.threads);
  const int workers = std::max(1, std::min<int>(threads, static_cast<int>(jobs.size())));
  const int inner = std::max(1, threads / workers);
  cli::Progress progress("synth", jobs.size(), o.common.progress);
  std::size_t voxels = 0;
  cli::ordered_map<std::size_t>(
      jobs.size(), workers, inner,
      [&](std::size_t i, int nt) -> std::size_t {
        const Job& j = jobs[i];
        const VolumeSpec& v = *j.v;
        std::vector<std::int16_t> data =
            render_hu(j.p->scans[static_cast<std::size_t>(v.scan)], v.geo, v.noise_hu, v.noise_key, nt);
        to_stored(data, v);
        image::write_nifti_i16(root + "/" + v.rel_path, data.data(), v.geo.dim, v.geo.spacing, !v.v1, o.gzip_level);
        return data.size();
      },
      [&](std::size_t i, std::size_t&& n) {
        voxels += n;
        cli::verbose("{} ({}x{}x{}, {})", jobs[i].v->name, jobs[i].v->geo.dim[0], jobs[i].v->geo.dim[1],
                     jobs[i].v->geo.dim[2], jobs[i].v->v1 ? "v1" : "v2");
        progress.tick();
      },
      [&](std::size_t, std::exception_ptr e) { std::rethrow_exception(e); });
  progress.finish();
  cli::summary("wrote {} volumes of {} patients ({:.1f} Mvoxels) to {}", jobs.size(), patients.size(), voxels / 1e6,
               root);
  return 0;
}

}  // namespace hse::synth
