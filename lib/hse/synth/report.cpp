// Report text: CT-RATE-like Findings_EN / Impressions_EN describing exactly the
// findings drawn for a scan, with several phrasings per sentence.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "hse/synth/internal.h"

namespace hse::synth {

namespace {

std::string lobe_text(Rng& rng, int lobe) {
  static const char* side[] = {"", "right", "right", "right", "left", "left"};
  static const char* part[] = {"", "upper", "middle", "lower", "upper", "lower"};
  const std::string sd = side[lobe], pt = part[lobe];
  switch (rng.range(0, 2)) {
    case 0: return sd + " " + pt + " lobe";
    case 1: return pt + " lobe of the " + sd + " lung";
    default: return sd + " lung " + pt + " lobe";
  }
}

std::string mm(double v) { return fmt::format("{}", static_cast<long>(std::lround(v))); }

std::string cap(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

template <typename... S>
std::string one(Rng& rng, const S&... s) {
  const std::vector<std::string> v = {std::string(s)...};
  return rng.pick(v);
}

}  // namespace

Report write_report(const Scan& scan, std::uint64_t seed) {
  Rng rng(seed);
  Report r;
  r.clinical = one(rng, "Not given.", "Not given.", "Cough.", "Shortness of breath.", "Chest pain.",
                   "Fever and cough.", "Follow-up.", "Dyspnea.", "Lung cancer screening.", "Trauma.");
  r.technique = one(rng, "Not given.",
                    "Non-contrast thin-section axial images of the chest were obtained from the thoracic inlet to the "
                    "upper abdomen.",
                    "Axial images of the thorax were obtained without intravenous contrast; multiplanar reformats were "
                    "reviewed.",
                    "Non-contrast chest CT in mediastinal and parenchymal windows.");
  std::vector<const Finding*> by[kNumLabels];
  for (const auto& f : scan.findings) by[f.label].push_back(&f);
  auto has = [&](int l) { return !by[l].empty(); };

  std::vector<std::string> airway, medi, eso, lymph, lung, pleura, abdomen, bones;
  std::vector<std::string> impressions;

  // --- airways ---
  airway.push_back(one(rng, "Trachea and both main bronchi are open.",
                       "Trachea and both main bronchi are in normal calibre and open.",
                       "The trachea and main bronchi are patent; no occlusive pathology was detected."));
  // --- heart and vessels ---
  if (has(kCardiomegaly)) {
    const Finding& f = *by[kCardiomegaly][0];
    medi.push_back(one(rng, "The heart is enlarged.", "Cardiomegaly is observed.",
                       "Heart size is increased, with a transverse cardiac diameter of about " + mm(f.size_mm) + " mm."));
    impressions.push_back("Cardiomegaly.");
  } else if (rng.chance(0.85)) {
    medi.push_back(one(rng, "Heart contour and size are normal.", "Heart size is within normal limits.",
                       "The heart is of normal size."));
  }
  if (has(kPericardialEffusion)) {
    const Finding& f = *by[kPericardialEffusion][0];
    medi.push_back(one(rng, "Pericardial effusion reaching " + mm(f.size_mm) + " mm in thickness is observed.",
                       "There is pericardial fluid measuring up to " + mm(f.size_mm) + " mm.",
                       "A pericardial effusion with a thickness of " + mm(f.size_mm) + " mm is seen around the heart."));
    impressions.push_back("Pericardial effusion.");
  } else if (rng.chance(0.8)) {
    medi.push_back(one(rng, "Pericardial effusion-thickening was not observed.",
                       "No pericardial effusion or thickening was observed.", "The pericardium is unremarkable."));
  }
  if (rng.chance(0.75))
    medi.push_back(one(rng, "Thoracic aorta diameter is normal.", "The calibre of the thoracic aorta is normal.",
                       "Mediastinal main vascular structures are of normal calibre."));
  if (has(kArterialCalcification)) {
    medi.push_back(one(rng, "Atherosclerotic calcifications are observed in the wall of the thoracic aorta.",
                       "Calcific atheroma plaques are present in the aortic wall.",
                       "The thoracic aorta shows mural calcified plaques."));
    impressions.push_back("Aortic atherosclerosis.");
  }
  if (has(kCoronaryCalcification)) {
    medi.push_back(one(rng, "Calcified plaques are observed in the coronary arteries.",
                       "Coronary artery wall calcifications are present.",
                       "There are calcifications along the course of the left anterior descending coronary artery."));
    impressions.push_back("Coronary artery calcification.");
  }
  if (has(kMedicalMaterial)) {
    const Finding& f = *by[kMedicalMaterial][0];
    medi.push_back(one(rng, "A central venous catheter is seen with its tip in the " + f.detail + ".",
                       "Central venous catheter tip is located at the " + f.detail + ".",
                       "A right-sided venous catheter extends into the " + f.detail + "."));
    impressions.push_back("Central venous catheter in place.");
  }
  // --- esophagus ---
  if (has(kHiatalHernia)) {
    const Finding& f = *by[kHiatalHernia][0];
    eso.push_back(one(rng, "A hiatal hernia is observed at the lower end of the esophagus.",
                      "Sliding type hiatal hernia measuring about " + mm(f.size_mm) + " mm is present.",
                      "The gastric fundus herniates through the esophageal hiatus (hiatal hernia)."));
    impressions.push_back("Hiatal hernia.");
  } else if (rng.chance(0.7)) {
    eso.push_back(one(rng,
                      "Thoracic esophagus calibration was normal and no significant tumoral wall thickening was "
                      "detected.",
                      "The thoracic esophagus is unremarkable.", "No wall thickening was seen in the esophagus."));
  }
  // --- lymph nodes ---
  if (has(kLymphadenopathy)) {
    const Finding& f = *by[kLymphadenopathy][0];
    const std::size_t n = f.points.size();
    lymph.push_back(
        n > 1 ? one(rng, "Pathologically enlarged lymph nodes are observed in the mediastinum, the largest measuring " +
                             mm(f.size_mm) + " mm in short axis in the " + f.detail + " region.",
                    "Multiple enlarged mediastinal lymph nodes are present; the largest, in the " + f.detail +
                        " station, measures " + mm(f.size_mm) + " mm in short axis.")
              : one(rng, "An enlarged lymph node measuring " + mm(f.size_mm) + " mm in short axis is observed in the " +
                             f.detail + " region.",
                    "A pathologically enlarged " + f.detail + " lymph node of " + mm(f.size_mm) + " mm is seen."));
    impressions.push_back("Mediastinal lymphadenopathy.");
  } else if (rng.chance(0.85)) {
    lymph.push_back(one(rng,
                        "No lymph node was detected in mediastinal and bilateral hilar levels in pathological size and "
                        "appearance.",
                        "No pathologically enlarged mediastinal or hilar lymph node is seen.",
                        "Mediastinal and hilar lymph nodes are not enlarged."));
  }
  // --- lungs ---
  if (has(kEmphysema)) {
    const Finding& f = *by[kEmphysema][0];
    const std::string where = f.side == "bilateral" ? "the upper lobes of both lungs"
                                                    : "the upper lobe of the " + f.side + " lung";
    lung.push_back(one(rng, "Centrilobular emphysematous changes are observed in " + where + ".",
                       "Emphysema is present in " + where + ".",
                       "Low-attenuation areas consistent with centrilobular emphysema are seen in " + where + "."));
    impressions.push_back("Emphysema.");
  }
  for (const Finding* f : by[kLungNodule]) {
    const std::string lt = lobe_text(rng, f->lobe);
    const std::string kind = f->detail.empty() ? "" : f->detail + " ";
    lung.push_back(one(rng, "A " + mm(f->size_mm) + " mm " + kind + "nodule is observed in the " + lt + ".",
                       "There is a " + kind + "nodule measuring " + mm(f->size_mm) + " mm in the " + lt + ".",
                       cap("in the " + lt + ", a nodule of " + mm(f->size_mm) + " mm in diameter was detected.")));
    impressions.push_back(fmt::format("Nodule of {} mm in the {}.", mm(f->size_mm), lobe_text(rng, f->lobe)));
  }
  for (const Finding* f : by[kLungOpacity]) {
    const std::string lt = lobe_text(rng, f->lobe);
    lung.push_back(one(rng, "Ground-glass opacity is observed in the " + lt + ".",
                       "A ground-glass density area about " + mm(f->size_mm) + " mm in size is seen in the " + lt + ".",
                       "There is a patchy ground-glass opacity in the " + lt + "."));
  }
  if (has(kLungOpacity)) impressions.push_back("Ground-glass opacity.");
  for (const Finding* f : by[kConsolidation]) {
    const std::string lt = lobe_text(rng, f->lobe);
    lung.push_back(one(rng, "Consolidation is observed in the " + lt + ".",
                       "An area of consolidation measuring approximately " + mm(f->size_mm) + " mm is seen in the " +
                           lt + ".",
                       "There is a consolidated area in the " + lt + "."));
    impressions.push_back("Consolidation in the " + lobe_text(rng, f->lobe) + ".");
  }
  for (const Finding* f : by[kFibroticSequela]) {
    const std::string lt = lobe_text(rng, f->lobe);
    lung.push_back(one(rng, "Fibrotic sequelae changes are observed in the " + lt + ".",
                       "Linear fibrotic bands are present in the " + lt + ".",
                       "Parenchymal fibrotic sequela densities are seen in the " + lt + "."));
    impressions.push_back("Fibrotic sequelae.");
  }
  if (has(kAtelectasis)) {
    const Finding& f = *by[kAtelectasis][0];
    const std::string where = f.side == "bilateral" ? "the posterobasal segments of both lower lobes"
                                                    : "the posterobasal segment of the " + f.side + " lower lobe";
    lung.push_back(one(rng, "Subsegmental atelectasis is observed in " + where + ".",
                       "Linear atelectasis is present in " + where + ".",
                       "Band-like atelectatic changes are seen in " + where + "."));
    impressions.push_back("Atelectasis.");
  }
  if (has(kMosaicAttenuation)) {
    lung.push_back(one(rng, "A mosaic attenuation pattern is observed in both lungs.",
                       "Heterogeneous lung parenchyma with mosaic attenuation is noted.",
                       "There is mosaic attenuation in both lungs."));
    impressions.push_back("Mosaic attenuation pattern.");
  }
  if (has(kPeribronchialThickening)) {
    lung.push_back(one(rng, "Peribronchial thickening is observed in both lungs.",
                       "Bronchial wall thickening is noted bilaterally.",
                       "Peribronchial thickening is present."));
    impressions.push_back("Peribronchial thickening.");
  }
  if (has(kBronchiectasis)) {
    const Finding& f = *by[kBronchiectasis][0];
    lung.push_back(one(rng, cap(f.detail) + " bronchiectasis is observed in the " + lobe_text(rng, f.lobe) + ".",
                       "There are " + f.detail + " bronchiectatic changes in the " + lobe_text(rng, f.lobe) + "."));
    impressions.push_back("Bronchiectasis.");
  }
  if (has(kSeptalThickening)) {
    lung.push_back(one(rng, "Interlobular septal thickening is observed in both lungs.",
                       "Smooth interlobular septal thickening is present bilaterally."));
    impressions.push_back("Interlobular septal thickening.");
  }
  rng.shuffle(lung);
  if (lung.empty()) {
    lung.push_back(one(rng, "No mass or infiltrative lesion was detected in both lungs.",
                       "When examined in the lung parenchyma window, both lungs are clear.",
                       "Lung parenchyma is normal; no nodule, mass or consolidation is seen."));
  } else if (rng.chance(0.4)) {
    lung.insert(lung.begin(), "When examined in the lung parenchyma window:");
  }
  // --- pleura ---
  if (has(kPleuralEffusion)) {
    const auto& v = by[kPleuralEffusion];
    if (v.size() == 2) {
      pleura.push_back(one(rng, "Bilateral pleural effusion is observed, measuring " + mm(v[0]->size_mm) +
                                    " mm on the right and " + mm(v[1]->size_mm) + " mm on the left.",
                           "There is pleural effusion on both sides, " + mm(v[0]->size_mm) + " mm thick on the right and " +
                               mm(v[1]->size_mm) + " mm on the left."));
      impressions.push_back("Bilateral pleural effusion.");
    } else {
      const std::string sd = v[0]->side;
      pleura.push_back(one(rng, cap(sd) + "-sided pleural effusion measuring " + mm(v[0]->size_mm) +
                                    " mm in thickness is observed.",
                           "There is pleural effusion on the " + sd + ", with a thickness of " + mm(v[0]->size_mm) +
                               " mm.",
                           "A " + mm(v[0]->size_mm) + " mm " + sd + " pleural effusion is seen."));
      impressions.push_back(cap(sd) + " pleural effusion.");
    }
  } else if (rng.chance(0.8)) {
    pleura.push_back(one(rng, "No pleural effusion was detected.", "Pleural spaces are clear.",
                         "No pleural effusion or thickening was observed."));
  }
  // --- abdomen, bones ---
  if (rng.chance(0.8))
    abdomen.push_back(one(rng, "Upper abdominal organs included in the sections are normal.",
                          "No space-occupying lesion was detected in the liver that entered the cross-sectional area.",
                          "The visualised upper abdominal organs are unremarkable."));
  bones.push_back(one(rng, "Bone structures in the study area are normal.", "Vertebral corpus heights are preserved.",
                      "No lytic-destructive lesion was detected in the bone structures."));
  if (rng.chance(0.4)) bones.push_back("Degenerative changes are observed in the thoracic vertebrae.");

  std::string text;
  for (const auto* sec : {&airway, &medi, &eso, &lymph, &lung, &pleura, &abdomen, &bones})
    for (const auto& s : *sec) text += (text.empty() ? "" : " ") + s;
  r.findings = text;
  if (impressions.empty()) {
    r.impressions = one(rng, "No significant pathology was detected.", "Normal chest CT.",
                        "No acute cardiopulmonary pathology.");
  } else {
    std::string imp;
    for (const auto& s : impressions) imp += (imp.empty() ? "" : " ") + s;
    r.impressions = imp;
  }
  return r;
}

}  // namespace hse::synth
