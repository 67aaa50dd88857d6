// Unit tests for hse::eval's rule-based CT-RATE labeler and the multi-label scores:
// hand-written negation / uncertainty / list cases, and agreement with hse-synth
// reports whose labels are known.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "hse/cli/cli.h"
#include "hse/eval/labeler.h"
#include "hse/synth/synth.h"

using namespace hse::eval;
namespace sy = hse::synth;

namespace {

std::string names(const Labels& l) {
  std::string s;
  for (int i = 0; i < kNumLabels; ++i)
    if (l[static_cast<std::size_t>(i)]) s += std::string(s.empty() ? "" : ", ") + kLabelNames[static_cast<std::size_t>(i)];
  return s.empty() ? "(none)" : s;
}

Labels make(std::initializer_list<int> pos) {
  Labels l{};
  for (int p : pos) l[static_cast<std::size_t>(p)] = 1;
  return l;
}

struct Case {
  const char* text;
  std::vector<int> positive;
};

}  // namespace

TEST_CASE("labeler: label names are CT-RATE's, in order") {
  for (int i = 0; i < kNumLabels; ++i)
    CHECK(std::string(kLabelNames[static_cast<std::size_t>(i)]) == sy::kLabels[static_cast<std::size_t>(i)]);
}

TEST_CASE("labeler: hand-written sentences (negation, lists, synonyms, disambiguation)") {
  using namespace hse::synth;  // Label enum
  const std::vector<Case> cases = {
      // normal statements
      {"Trachea and both main bronchi are open.", {}},
      {"Heart size is within normal limits.", {}},
      {"Heart contour and size are normal.", {}},
      {"The heart is of normal size.", {}},
      {"Thoracic aorta diameter is normal.", {}},
      {"When examined in the lung parenchyma window, both lungs are clear.", {}},
      {"Thoracic esophagus calibration was normal and no significant tumoral wall thickening was detected.", {}},
      // pre-negation and lists
      {"No pleural effusion.", {}},
      {"No pleural or pericardial effusion.", {}},
      {"No nodule, consolidation or effusion.", {}},
      {"No pleural effusion or pneumothorax was detected.", {}},
      {"There is no evidence of consolidation, atelectasis or ground-glass opacity.", {}},
      {"Lung parenchyma is normal; no nodule, mass or consolidation is seen.", {}},
      {"No pathologically enlarged mediastinal or hilar lymph node is seen.", {}},
      {"No lymph node was detected in mediastinal and bilateral hilar levels in pathological size and appearance.", {}},
      {"Without emphysema or bronchiectasis.", {}},
      {"The lungs are free of nodules.", {}},
      {"Negative for hiatal hernia.", {}},
      {"No calcified plaque in the aorta or coronary arteries.", {}},
      {"No catheter or other medical material is present.", {}},
      // negation inside the keyword phrase
      {"The heart is not enlarged.", {}},
      {"Heart size is not increased.", {}},
      {"Mediastinal and hilar lymph nodes are not enlarged.", {}},
      // post-negation
      {"Pericardial effusion-thickening was not observed.", {}},
      {"Mosaic attenuation pattern was not observed.", {}},
      {"Consolidation and atelectasis were not detected.", {}},
      {"Septal thickening is not seen.", {}},
      {"Pleural effusion is absent.", {}},
      // scope stops at clause breaks and assertions
      {"No pleural effusion, but a 5 mm nodule is seen in the right upper lobe.", {kLungNodule}},
      {"No pleural effusion; bilateral atelectasis.", {kAtelectasis}},
      {"No consolidation is seen, a ground-glass opacity is observed in the left lower lobe.", {kLungOpacity}},
      {"There is no consolidation. However, peribronchial thickening is present.", {kPeribronchialThickening}},
      {"No right pleural effusion. Small left pleural effusion.", {kPleuralEffusion}},
      {"A nodule is seen in the right lung and pleural effusion was not observed.", {kLungNodule}},
      // positives and synonyms
      {"Cardiomegaly is observed.", {kCardiomegaly}},
      {"The heart is enlarged.", {kCardiomegaly}},
      {"Increased cardiac size.", {kCardiomegaly}},
      {"Cardiothoracic ratio is increased.", {kCardiomegaly}},
      {"Fluid in the pleural space on the right.", {kPleuralEffusion}},
      {"Bilateral effusions.", {kPleuralEffusion}},
      {"There is pericardial fluid measuring up to 8 mm.", {kPericardialEffusion}},
      {"Pleural and pericardial effusions are present.", {kPleuralEffusion, kPericardialEffusion}},
      {"A pericardial effusion with a thickness of 9 mm is seen around the heart.", {kPericardialEffusion}},
      {"Multiple micronodules in both lungs.", {kLungNodule}},
      {"A central venous catheter is seen with its tip in the superior vena cava.", {kMedicalMaterial}},
      {"Pacemaker leads are in the right ventricle; sternotomy wires are noted.", {kMedicalMaterial}},
      {"Surgical clips in the mediastinum.", {kMedicalMaterial}},
      {"Calcific atheroma plaques are present in the aortic wall.", {kArterialCalcification}},
      {"Atherosclerotic calcifications are observed in the wall of the thoracic aorta.", {kArterialCalcification}},
      {"Calcified plaques are observed in the coronary arteries.", {kCoronaryCalcification}},
      {"Coronary artery wall calcifications are present.", {kCoronaryCalcification}},
      {"Calcific atheroma plaques are observed in the aorta and coronary arteries.",
       {kArterialCalcification, kCoronaryCalcification}},
      {"Aortic calcifications are present, no coronary calcification.", {kArterialCalcification}},
      {"Calcified pleural plaques.", {}},
      {"Sliding type hiatal hernia measuring about 35 mm is present.", {kHiatalHernia}},
      {"The gastric fundus herniates through the esophageal hiatus.", {kHiatalHernia}},
      {"Pathologically enlarged lymph nodes are observed in the mediastinum.", {kLymphadenopathy}},
      {"Mediastinal lymphadenopathy.", {kLymphadenopathy}},
      {"Paraseptal and centrilobular emphysema in both upper lobes.", {kEmphysema}},
      {"Subcutaneous emphysema in the chest wall.", {}},
      {"Bullous changes in the right apex.", {kEmphysema}},
      {"Subsegmental atelectasis in the left lower lobe.", {kAtelectasis}},
      {"Fibroatelectasis in the lingula.", {kAtelectasis, kFibroticSequela}},
      {"Compression collapse of the T8 vertebral body.", {}},
      {"Patchy ground-glass opacities and infiltrates in both lungs.", {kLungOpacity}},
      {"Fatty infiltration of the liver.", {}},
      {"A 12 mm nodule in the right lobe of the thyroid gland.", {}},
      {"Fibrotic sequelae changes in the right middle lobe.", {kFibroticSequela}},
      {"Heterogeneous lung parenchyma with mosaic attenuation is noted.", {kMosaicAttenuation}},
      {"Bronchial wall thickening is noted bilaterally.", {kPeribronchialThickening}},
      {"There is a consolidated area in the left lower lobe.", {kConsolidation}},
      {"Varicose bronchiectatic changes in the left lower lobe.", {kBronchiectasis}},
      {"Smooth interlobular septal thickening is present bilaterally.", {kSeptalThickening}},
      // CT-RATE-style wording
      {"Calcific atheromatous plaques were observed in the aortic arch and coronary arteries.",
       {kArterialCalcification, kCoronaryCalcification}},
      {"Ground glass densities were observed in both lungs, which may be compatible with viral pneumonia.",
       {kLungOpacity}},
      {"No pleural effusion or thickening was observed, and pericardial effusion is seen.", {kPericardialEffusion}},
      {"Mediastinal structures could not be evaluated optimally because contrast material was not given.", {}},
  };
  int failed = 0;
  for (const auto& c : cases) {
    Labels want{};
    for (int p : c.positive) want[static_cast<std::size_t>(p)] = 1;
    const Labels got = extract_labels(c.text);
    if (got != want) ++failed;
    CHECK_MESSAGE(got == want, std::string(c.text), " -> got [", names(got), "], want [", names(want), "]");
  }
  CHECK(cases.size() >= 40);
  MESSAGE(cases.size(), " sentences, ", failed, " wrong");
}

TEST_CASE("labeler: mention states and the uncertainty policy") {
  using namespace hse::synth;
  struct U {
    const char* text;
    int label;
    Mention want;
  };
  const std::vector<U> cases = {
      {"Pleural effusion cannot be excluded.", kPleuralEffusion, Mention::uncertain},
      {"Atelectasis cannot be ruled out.", kAtelectasis, Mention::uncertain},
      {"Possible consolidation in the right lower lobe.", kConsolidation, Mention::uncertain},
      {"Findings suspicious for lymphadenopathy.", kLymphadenopathy, Mention::uncertain},
      {"Nodule versus atelectasis in the lingula.", kLungNodule, Mention::uncertain},
      {"Ground-glass opacity, likely infectious.", kLungOpacity, Mention::uncertain},
      {"Minimal bronchiectasis is suspected.", kBronchiectasis, Mention::uncertain},
      {"No pleural effusion.", kPleuralEffusion, Mention::negative},
      {"Heart size is within normal limits.", kCardiomegaly, Mention::absent},
      {"Emphysema is present.", kEmphysema, Mention::positive},
      {"No definite nodule is seen, possible nodule in the left lower lobe.", kLungNodule, Mention::uncertain},
      {"No effusion on the right. Small effusion on the left may be present.", kPleuralEffusion, Mention::uncertain},
      {"Small left pleural effusion. Pleural effusion on the right cannot be excluded.", kPleuralEffusion,
       Mention::positive},
      {"The heart isn't enlarged.", kCardiomegaly, Mention::negative},
  };
  for (const auto& c : cases) {
    const auto m = label_mentions(c.text);
    CHECK_MESSAGE(m[static_cast<std::size_t>(c.label)] == c.want, std::string(c.text));
    const Labels pos = extract_labels(c.text, Uncertain::positive);
    const Labels neg = extract_labels(c.text, Uncertain::negative);
    const int want_pos = c.want == Mention::positive || c.want == Mention::uncertain;
    const int want_neg = c.want == Mention::positive;
    CHECK_MESSAGE(pos[static_cast<std::size_t>(c.label)] == want_pos, std::string(c.text));
    CHECK_MESSAGE(neg[static_cast<std::size_t>(c.label)] == want_neg, std::string(c.text));
  }
}

TEST_CASE("labeler: hse-synth reports agree with their drawn labels") {
  const int n_patients = 200;
  std::array<long, kNumLabels> agree{}, total{};
  long reports = 0, exact = 0;
  std::vector<Labels> pred, ref;
  int shown = 0;
  for (int n = 1; n <= n_patients; ++n) {
    const sy::Patient p = sy::plan_patient(20240607, n % 2 ? "train" : "valid", n, sy::Size::tiny);
    for (const auto& scan : p.scans) {
      const Labels got = extract_labels(scan.report.findings);
      ++reports;
      exact += got == scan.labels;
      for (std::size_t l = 0; l < static_cast<std::size_t>(kNumLabels); ++l) {
        ++total[l];
        agree[l] += got[l] == scan.labels[l];
      }
      pred.push_back(got);
      ref.push_back(scan.labels);
      if (got != scan.labels && shown++ < 5)
        MESSAGE("mismatch: ", scan.report.findings, "\n  got [", names(got), "]\n  want [", names(scan.labels), "]");
    }
  }
  double worst = 1;
  for (std::size_t l = 0; l < static_cast<std::size_t>(kNumLabels); ++l) {
    const double a = static_cast<double>(agree[l]) / static_cast<double>(total[l]);
    worst = std::min(worst, a);
    CHECK_MESSAGE(a >= 0.95, kLabelNames[l], " agreement ", a);
  }
  const double em = static_cast<double>(exact) / static_cast<double>(reports);
  const LabelScores s = score_labels(pred, ref);
  MESSAGE(reports, " synth reports: exact match ", em, ", worst per-label agreement ", worst, ", micro F1 ",
          s.micro_f1, ", macro F1 ", s.macro_f1);
  CHECK(em >= 0.95);
  CHECK(std::abs(s.exact_match - em) < 1e-12);
  // impressions plus findings give the same labels (the impressions only repeat findings)
  long exact_both = 0;
  for (int n = 1; n <= 50; ++n) {
    const sy::Patient p = sy::plan_patient(7, "valid", n, sy::Size::tiny);
    for (const auto& scan : p.scans)
      exact_both += extract_labels(scan.report.findings + " " + scan.report.impressions) == scan.labels;
  }
  CHECK(exact_both >= 45);
}

TEST_CASE("labeler: score_labels follows sklearn (zero_division=0)") {
  using namespace hse::synth;
  // 4 reports. Label 0: pred 1,1,0,0 ref 1,0,1,0 -> tp1 fp1 fn1: P=R=F1=0.5.
  // Label 2: pred 1,0,0,0 ref 0,0,0,0 -> tp0 fp1: P=0 (0/1), R=0/0=0, F1=0.
  // Label 7: pred 0 everywhere, ref 1,1,0,0 -> P=0/0=0, R=0, support 2.
  // Label 9: pred = ref = 1,1,1,0 -> 1,1,1.
  std::vector<Labels> pred = {make({0, 2, 9}), make({0, 9}), make({9}), make({})};
  std::vector<Labels> ref = {make({0, 7, 9}), make({7, 9}), make({0, 9}), make({})};
  const LabelScores s = score_labels(pred, ref);
  CHECK(s.n == 4);
  CHECK(s.precision[0] == doctest::Approx(0.5));
  CHECK(s.recall[0] == doctest::Approx(0.5));
  CHECK(s.f1[0] == doctest::Approx(0.5));
  CHECK(s.precision[2] == 0.0);
  CHECK(s.recall[2] == 0.0);
  CHECK(s.support[2] == 0);
  CHECK(s.precision[7] == 0.0);
  CHECK(s.support[7] == 2);
  CHECK(s.f1[9] == doctest::Approx(1.0));
  // micro: tp = 1 + 3 = 4, fp = 1 + 1 = 2, fn = 1 + 2 = 3
  CHECK(s.micro_precision == doctest::Approx(4.0 / 6));
  CHECK(s.micro_recall == doctest::Approx(4.0 / 7));
  CHECK(s.micro_f1 == doctest::Approx(8.0 / 13));
  // macro over the 4 labels that occur (0, 2, 7, 9): P = (0.5 + 0 + 0 + 1) / 4, R and F1 likewise
  CHECK(s.n_present == 4);
  CHECK(s.macro_precision == doctest::Approx(1.5 / 4));
  CHECK(s.macro_recall == doctest::Approx(1.5 / 4));
  CHECK(s.macro_f1 == doctest::Approx(1.5 / 4));
  // weighted by support (2, 2, 3): F1 = (0.5*2 + 0*2 + 1*3) / 7
  CHECK(s.weighted_precision == doctest::Approx(4.0 / 7));
  CHECK(s.weighted_recall == doctest::Approx(4.0 / 7));
  CHECK(s.weighted_f1 == doctest::Approx(4.0 / 7));
  CHECK(s.exact_match == doctest::Approx(0.25));
  // Checked with scikit-learn 1.x: precision_recall_fscore_support(ref, pred, average=..., zero_division=0)
  // on these 4x18 indicator matrices gives micro (0.6667, 0.5714, 0.6154), macro with labels=[0,2,7,9]
  // (0.375, 0.375, 0.375) (over all 18 columns: 0.0833),
  // weighted (0.5714, 0.5714, 0.5714); accuracy_score (subset accuracy) 0.25.
  CHECK_THROWS_AS(score_labels(pred, {}), hse::cli::Error);
  const LabelScores e = score_labels({}, {});
  CHECK(e.micro_f1 == 0.0);
  CHECK(e.exact_match == 0.0);
}
