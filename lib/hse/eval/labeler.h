// hse::eval labeler: clinical-efficacy labels. Extracts CT-RATE's 18
// abnormality labels from free report text with keyword and negation rules
// (NegEx/CheXpert style), and scores predicted against reference label sets.
//
// This is a transparent rule-based labeler, NOT the RadBERT classifier that
// produced CT-RATE's *_predicted_labels.csv. Numbers from it are comparable
// with each other and with other runs of this labeler only.
//
// Text processing
//   * Lower-cased ASCII; every other byte separates words. Hyphens separate
//     words ("ground-glass" = "ground glass", "effusion-thickening" = "effusion
//     thickening"); "n't" becomes a separate "not" ("isn't" = "is not").
//   * Sentences end at . ! ? (a '.' between digits is a decimal point) and at
//     newlines; sentences are cut into clauses at ; : and at the words but,
//     however, although, though, whereas, except, nevertheless, nonetheless.
//     Commas and '/' are kept as tokens: keyword gaps never cross a comma, but
//     negation scope does (so "No nodule, consolidation or effusion" negates
//     all three).
//
// Keywords (see labeler.cpp for the full lists; '*' = any word ending, "~N" =
// up to N other words, no comma):
//   Medical material         catheter, pacemaker, stent, port, tube, cannula, clip(s), prosthesis,
//                            sternotomy/sternal wires, cerclage, defibrillator, coil, drain, implant, ...
//   Arterial wall calcif.    atherosclerosis/atherosclerotic, atheroma, calcified/calcific plaque, mural
//                            calcification; "calcif*" together with aorta/carotid/subclavian/... in the
//                            clause. Vascular wording whose clause names only coronary arteries (and no
//                            aortic vessel) is NOT arterial: it belongs to the coronary label.
//   Cardiomegaly             cardiomegaly, enlarged heart, heart ~3 enlarged, heart ~3 increased,
//                            cardiac enlargement, increased cardiac size, cardiothoracic ratio ~3 increased
//   Pericardial effusion     effusion qualified by "pericardial" (also inside lists: "pleural or
//                            pericardial effusion" is both), pericardial fluid, hemopericardium
//   Coronary wall calcif.    calcif*/plaque/atherosclero*/atheroma with coronary (LAD, circumflex) in the clause
//   Hiatal hernia            hiatal/hiatus hernia, herni* ~5 hiatus, paraesophageal hernia
//   Lymphadenopathy          lymphadenopathy, adenopathy, enlarged ~4 (lymph) node(s), lymph node(s) ~4
//                            enlarged/enlargement, lymph node(s) ~8 pathologic*, pathologic* ~4 lymph node
//   Emphysema                emphysema/emphysematous (not subcutaneous/mediastinal), bulla(e), bullous, bleb
//   Atelectasis              atelectasis/atelectatic, fibroatelectasis, collapse (not vertebral)
//   Lung nodule              nodule/nodular/micronodule (not thyroid, adrenal, liver, breast, ...)
//   Lung opacity             opacity/opacities, ground glass, GGO, infiltrate/infiltration (not fatty or
//                            hepatic), increased density, density increase, haziness, crazy paving
//   Pulm. fibrotic sequela   fibrotic, fibrosis, fibrous, sequela(e), fibroatelectasis, scar(ring),
//                            honeycombing, traction bronchiectasis, parenchymal band
//   Pleural effusion         effusion (unqualified effusions are pleural unless the clause names only the
//                            pericardium), pleural fluid, fluid ~3 pleural, hydro-/hemothorax
//   Mosaic attenuation       mosaic*
//   Peribronchial thick.     peribronchial ~2 thickening, bronchial wall ~2 thickening, thickening ~4
//                            bronchial wall, thickened ~2 bronch*, peribronchial cuffing
//   Consolidation            consolidation/consolidated/consolidative, air bronchogram
//   Bronchiectasis           bronchiectasis/bronchiectatic, bronchial dilatation, dilated ~3 bronch*
//   Interlobular septal th.  septal thickening, interlobular septa ~3 thickened, thickened ~4 interlobular
//                            septa, Kerley lines, crazy paving (not interatrial/interventricular septum)
//   "fibroatelectasis" counts as both atelectasis and fibrotic sequela; "crazy paving" as both opacity
//   and septal thickening; "traction bronchiectasis" as bronchiectasis and fibrotic sequela.
//
// Negation (clause scope)
//   * Pre-negation cues (scope runs forward to the end of the clause): no, not, without, absence of,
//     negative for, free of, clear of, lack of, neither, nor, none, resolution of. A cue inside a
//     keyword match negates it ("heart is not enlarged", "lymph nodes are not enlarged").
//   * Post-negation cues (scope runs backward to the start of the clause): not observed / seen /
//     detected / identified / present / evident / noted / visualized / found / demonstrated /
//     appreciated / visible / shown / depicted / apparent, absent, is/are/was/were excluded, ruled out,
//     resolved, disappeared.
//   * Scope stops at a terminator between cue and finding: positive assertions (there is/are/was/were,
//     seen, observed, noted, detected, identified, present, visualized, demonstrated, found, evident,
//     shown), relative "which", and apart from / aside from / other than / besides / with the
//     exception of. So "No effusion is seen, a nodule is observed" negates only the effusion.
//   * Normal statements ("heart size is within normal limits", "heart contour and size are normal")
//     match no keyword: the label is absent (0) without any negation rule being needed.
//   * Known limit: a post-negation after a conjunction ("There is a nodule and effusion is not seen")
//     also negates the earlier finding of the same clause.
//
// Uncertainty (scope both ways in the clause, same terminators): possible/possibly, probable/
// probably, likely, suspicious, suspicion, suspect(ed), questionable, question of, equivocal,
// may, might, could, cannot/can not/could not be excluded/ruled out, not excluded, not ruled out,
// cannot exclude, rule out, differential diagnosis, concern for, suggestive of, suggest(s/ing),
// versus, vs. Uncertainty wins over negation for the same mention ("cannot be ruled out").
// POLICY: by default an uncertain mention counts as POSITIVE (CheXpert's "U-Ones" mapping; the
// reference labels come from a classifier trained on report text where hedged findings are
// usually labelled present). Pass Uncertain::negative to map them to 0 instead.
//
// Per label the mentions of a report combine as positive > uncertain > negated > absent: one
// affirmed mention anywhere makes the label present ("No right effusion. Small left effusion.").
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

namespace hse::eval {

constexpr int kNumLabels = 18;
// CT-RATE's labels, in the order of its label CSV columns (= hse::synth::kLabels).
extern const std::array<const char*, kNumLabels> kLabelNames;

enum class Mention : int { absent = 0, negative = 1, uncertain = 2, positive = 3 };
enum class Uncertain { positive, negative };

using Labels = std::array<int, kNumLabels>;

// Strongest mention of each label in the report (see the combination rule above).
std::array<Mention, kNumLabels> label_mentions(const std::string& report);
// 1 = present, 0 = absent or negated; uncertain mentions follow `policy` (default: present).
Labels extract_labels(const std::string& report, Uncertain policy = Uncertain::positive);

// Multi-label scores of predicted against reference label vectors (1 = positive, anything else
// = negative), as sklearn's precision_recall_fscore_support on the 18 indicator columns with
// zero_division=0: every 0/0 (no predicted positives, no reference positives, P+R = 0) is 0.
//   per label: precision, recall, f1, support (= reference positives), tp/fp/fn
//   micro: pooled tp/fp/fn over all labels
//   macro: unweighted mean of the per-label values over the labels that occur in the reference
//          or the prediction (n_present; sklearn with labels= restricted to those), so a perfect
//          prediction scores 1 (macro F1 is the mean of per-label F1s, not the F1 of macro P and R)
//   weighted: support-weighted mean (0 when there is no support at all)
//   exact_match: fraction of reports whose 18 labels all agree (sklearn's subset accuracy)
struct LabelScores {
  std::size_t n = 0;
  std::array<double, kNumLabels> precision{}, recall{}, f1{};
  std::array<long, kNumLabels> support{}, tp{}, fp{}, fn{};
  double micro_precision = 0, micro_recall = 0, micro_f1 = 0;
  double macro_precision = 0, macro_recall = 0, macro_f1 = 0;
  double weighted_precision = 0, weighted_recall = 0, weighted_f1 = 0;
  double exact_match = 0;
  int n_present = 0;
};
// Throws cli::Error (incompatible input) when the two lists differ in length.
LabelScores score_labels(const std::vector<Labels>& pred, const std::vector<Labels>& ref);

}  // namespace hse::eval
