// hse-synth: a deterministic synthetic chest-CT data set in CT-RATE's layout
// (volumes, reports, metadata, labels, RadGenome-style location VQA and a truth
// record), for tests, demos and benchmarks.
//
// Coordinates: physical millimetres relative to the carina, x towards the
// patient's left, y towards the posterior, z towards the head. A volume's voxel
// (i, j, k) (i fastest, as NIfTI stores it) sits at Geometry::mm(i, j, k).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "hse/cli/cli.h"

namespace hse::synth {

enum class Size { tiny, small, realistic };
Size parse_size(const std::string& s);  // throws a usage error
const char* size_name(Size s);

// CT-RATE's 18 abnormality labels, in the order of its label CSV columns.
constexpr int kNumLabels = 18;
extern const std::array<const char*, kNumLabels> kLabels;
enum Label : int {
  kMedicalMaterial = 0,
  kArterialCalcification,
  kCardiomegaly,
  kPericardialEffusion,
  kCoronaryCalcification,
  kHiatalHernia,
  kLymphadenopathy,
  kEmphysema,
  kAtelectasis,
  kLungNodule,
  kLungOpacity,
  kFibroticSequela,
  kPleuralEffusion,
  kMosaicAttenuation,
  kPeribronchialThickening,
  kConsolidation,
  kBronchiectasis,
  kSeptalThickening,
};

// Lung lobes (0: none).
enum Lobe : int { kNoLobe = 0, kRUL, kRML, kRLL, kLUL, kLLL };
// RadGenome anatomy name of a lobe: "right lung upper lobe", ...
const char* lobe_anatomy(int lobe);

enum class Tissue : std::uint8_t {
  air,          // outside the body, airway lumen excluded
  fat,          // subcutaneous fat
  muscle,       // chest wall
  lung,         // aerated lung parenchyma (lobe given)
  mediastinum,  // mediastinal fat
  abdomen,      // below the diaphragm
  heart,
  vessel,       // aorta, great vessels, pulmonary vessels
  airway,       // trachea and bronchi lumen
  esophagus,
  bone,
  canal,        // spinal canal
  fluid,        // pleural or pericardial effusion
  lesion,       // a rendered finding (nodule, consolidation, atelectasis, node, hernia, thickened walls and septa)
  material,     // catheter
  calcification,
};
const char* tissue_name(Tissue t);

// A finding as drawn and rendered. One nodule per Finding; diffuse findings
// (emphysema, mosaic attenuation) keep their patches in `points`.
struct Finding {
  int label = 0;
  std::string side;                   // right, left, bilateral, or empty
  int lobe = kNoLobe;                 // main lobe (0 when none or several)
  std::array<double, 3> centre{};     // mm
  double size_mm = 0;                 // diameter, thickness or extent (see man page)
  bool rendered = true;               // false: in the text and labels only
  std::string detail;                 // e.g. lymph node station, catheter tip
  std::vector<std::array<double, 4>> points;  // x, y, z, radius (mm) of patches/spots
  std::vector<std::string> anatomy;   // RadGenome anatomy names (location VQA rows)
  std::string abnormality;            // RadGenome abnormality term
};

// One patient's body and organs (mm). Scans of one patient share it except for
// what a finding changes (cardiomegaly scales the heart).
struct Anatomy {
  double s = 1;                 // overall scale
  double A = 160, B = 112;      // body semi-axes (lateral, antero-posterior)
  double ox = 0, oy = 0;        // body centre in the image plane
  double fat = 15;              // subcutaneous fat thickness
  double wall = 12;             // chest wall (muscle) thickness
  double apex = 85;             // lung apex height
  double dome_r = -120, dome_l = -130;  // diaphragm domes
  double fiss_r = -50, fiss_l = -40;    // oblique fissure height at the lung centre
  double fiss_t = 0.9;          // oblique fissure slope (dz/dy)
  double horiz = -30;           // right horizontal fissure height
  double heart_scale = 1;       // > 1.2 with cardiomegaly
  double heart_rot = 0.5;       // radians about z
  double vert_phase = 0;        // vertebra level phase
  double rib_phase = 0;
  std::vector<std::array<double, 7>> lung_vessels;  // ax ay az bx by bz r
};

struct Report {
  std::string clinical, technique, findings, impressions;
};

struct Scan {
  char letter = 'a';
  Anatomy anat;
  std::vector<Finding> findings;
  std::array<int, kNumLabels> labels{};
  Report report;
  // Effusion/atelectasis parameters per side (0 right, 1 left): depth mm at the base, top height.
  std::array<double, 2> effusion_depth{0, 0}, effusion_top{0, 0};
  std::array<double, 2> atelectasis_thick{0, 0}, atelectasis_top{0, 0};
  double pericardial_mm = 0;
  double peribronchial_mm = 0;  // extra wall around the main bronchi and bronchovascular bundles
  double septal_mm = 0;         // thickness of the septa in the lower lobes' periphery
  bool normal() const {
    for (int l : labels)
      if (l) return false;
    return true;
  }
};

struct Geometry {
  std::array<std::int64_t, 3> dim{0, 0, 0};
  std::array<double, 3> spacing{1, 1, 1};
  std::array<double, 3> origin{0, 0, 0};  // mm of voxel (0, 0, 0)
  std::array<double, 3> mm(double i, double j, double k) const {
    return {origin[0] + i * spacing[0], origin[1] + j * spacing[1], origin[2] + k * spacing[2]};
  }
  // Nearest voxel index of a point (may fall outside the volume).
  std::array<std::int64_t, 3> voxel(const std::array<double, 3>& p) const;
  std::size_t voxels() const { return static_cast<std::size_t>(dim[0] * dim[1] * dim[2]); }
};

struct VolumeSpec {
  std::string name;      // valid_3_a_1.nii.gz
  std::string rel_path;  // valid/valid_3/valid_3_a/valid_3_a_1.nii.gz (under dataset/)
  int scan = 0;          // index into Patient::scans
  int recon = 1;
  Geometry geo;
  bool v1 = true;           // v1: stored = (HU - intercept) / slope, header without spacing; v2: stored = HU
  double intercept = -1024;  // what the metadata CSV says
  double slope = 1;
  double noise_hu = 15;
  std::uint64_t noise_key = 0;
  double fov_mm = 350;
  // scanner metadata
  std::string manufacturer, model, kernel, series, study_date;
  int tube_current = 200, exposure_time = 500;
  double ctdi = 8;
};

struct Patient {
  std::string split;  // train or valid
  int number = 1;
  char sex = 'M';
  int age = 50;
  std::vector<Scan> scans;
  std::vector<VolumeSpec> volumes;
};

// Draws patient `number` (1-based) of `split` ("train" or "valid"): anatomy,
// scans, findings, reports and volume geometries. Depends only on the arguments.
// `lesion_scale` multiplies every lesion dimension (nodule and node diameters,
// opacity, consolidation and hernia extents, effusion depth and height,
// atelectasis, emphysema and mosaic patches, calcified spots, fibrotic bands,
// the catheter); 1 gives realistic sizes, larger values keep findings visible
// in heavily downsampled volumes (the demo's 16x64x64).
Patient plan_patient(std::uint64_t seed, const std::string& split, int number, Size size, double lesion_scale = 1.0);

struct Prim;
struct SideGeo;

// The noise-free phantom of one scan, evaluated at physical points.
class Phantom {
 public:
  explicit Phantom(const Scan& scan);
  ~Phantom();
  Phantom(const Phantom&) = delete;
  Phantom& operator=(const Phantom&) = delete;

  struct Sample {
    float hu = -1000;
    Tissue tissue = Tissue::air;
    int lobe = kNoLobe;   // for lung (and lesions inside lung)
    bool in_lung = false; // the base tissue was aerated lung
  };
  Sample at(double x, double y, double z) const;

  // HU (noise added when noise_hu > 0), int16, i fastest. Voxels sample the
  // phantom at their centres, except small calcified spots, which are averaged
  // over the slice thickness (partial volume) so thick slices still show them.
  void render(const Geometry& g, std::int16_t* out, double noise_hu, std::uint64_t noise_key, int threads) const;

  // Lung bounding box per side (0 right, 1 left): x0 x1 y0 y1 z0 z1.
  std::array<double, 6> lung_box(int side) const;

 private:
  Sample eval(double x, double y, double z, double half_dz, const int* act, int nact) const;
  struct Impl;
  Impl* p_;
};

// HU volume of a scan in a geometry (convenience wrapper around Phantom::render).
std::vector<std::int16_t> render_hu(const Scan& scan, const Geometry& g, double noise_hu, std::uint64_t noise_key,
                                    int threads = 1);
// Converts HU in place to the stored values of `v` (v1: (HU - intercept) / slope; v2: unchanged).
void to_stored(std::vector<std::int16_t>& data, const VolumeSpec& v);

// Text fields of a scan (filled by plan_patient; exposed for tests).
Report write_report(const Scan& scan, std::uint64_t seed);
// Truth record (one JSON object) of a volume, as written to truth.jsonl.
std::string truth_json(const Patient& p, const VolumeSpec& v);

// --- the tool -----------------------------------------------------------------

// splitmix64 mixer (used for seeds and per-voxel noise).
std::uint64_t mix64(std::uint64_t x);

}  // namespace hse::synth
