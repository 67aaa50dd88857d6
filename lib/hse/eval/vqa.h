// hse::eval VQA metrics: HSENet's location-VQA scoring
// (Preprint/Bench/eval/eval_HSENet_Rad_Geome_VQA.py), as pure functions.
//
//   acc_class(pred, answer) = pred.strip().split("/")[0].lower() in answer.lower()
//                             (substring test; an empty or whitespace-only prediction, or one
//                             starting with "/", is therefore correct)
//   acc_text(pred, answer)  = pred.strip().lower() == answer.strip().lower()
//   major_class(text)       = the first of kMajorClasses[0..9] that is a case-insensitive substring
//                             of text, else "Others"
//
// strip(): Python's str.strip() with no argument. Handled: ASCII whitespace (space, \t \n \v \f \r)
// and \x1c-\x1f, which Python also strips, plus the UTF-8 encodings of U+0085, U+00A0, U+1680,
// U+2000-U+200A, U+2028, U+2029, U+202F, U+205F and U+3000. lower(): ASCII letters only (Python
// lowers every cased Unicode letter; the RadGenome answers are ASCII).
//
// score_vqa(preds, answers), one item per question:
//   * group = major_class(answer) (HSENet groups by the item's "anatomy" field, which is the
//     answer). acc_class / acc_text are averaged
//       micro: over all items (HSENet's "Micro-avg"),
//       macro: per group, then the unweighted mean over groups with at least one item
//              (HSENet's "Macro-avg").
//   * region classification: y_true = major_class(answer), y_pred = major_class(pred), scored like
//     sklearn classification_report(y_true, y_pred, zero_division=0): per class P = TP/(TP+FP),
//     R = TP/(TP+FN), F1 = 2PR/(P+R), support = TP+FN, every 0/0 = 0.
//     The macro and weighted averages run over the classes that occur in y_true or y_pred
//     (sklearn's labels=None: unique_labels of both), `present[c]` marks them. HSENet passes
//     target_names with all 11 names, so its script raises ValueError unless all 11 classes
//     occur; whenever it does run, its averages equal ours. micro P = R = F1 = accuracy (single
//     label, every item counted).
#pragma once

#include <array>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace hse::eval {

constexpr int kNumMajorClasses = 11;
// HSENet's anatomy list, in its order; the last is "Others".
extern const std::array<const char*, kNumMajorClasses> kMajorClasses;

std::string py_strip(const std::string& s);
std::string ascii_lower(std::string s);

bool acc_class(const std::string& pred, const std::string& answer);
bool acc_text(const std::string& pred, const std::string& answer);
std::string major_class(const std::string& anatomy);
int major_class_index(const std::string& anatomy);  // index into kMajorClasses

struct VqaScores {
  std::size_t n = 0;
  // accuracy
  double acc_class = 0, acc_text = 0;              // micro (all items)
  double acc_class_macro = 0, acc_text_macro = 0;  // mean over groups with items
  std::array<long, kNumMajorClasses> group_n{};
  std::array<double, kNumMajorClasses> group_acc_class{}, group_acc_text{};  // 0 for empty groups
  // region classification (classification_report)
  std::array<bool, kNumMajorClasses> present{};  // class occurs in y_true or y_pred
  std::array<double, kNumMajorClasses> precision{}, recall{}, f1{};
  std::array<long, kNumMajorClasses> support{}, predicted{}, tp{};
  double accuracy = 0;  // = micro P = micro R = micro F1
  double macro_precision = 0, macro_recall = 0, macro_f1 = 0;
  double weighted_precision = 0, weighted_recall = 0, weighted_f1 = 0;
  int n_present = 0;
};

// Throws cli::Error (incompatible input) when the lists differ in length.
VqaScores score_vqa(const std::vector<std::string>& preds, const std::vector<std::string>& answers);

// Item ids of VQA rows, one rule for hse-generate and hse-eval so that a tool's
// output scores against the CSV it came from: "VolumeName|Abnormality" (or the
// VolumeName alone for free questions), and "#2", "#3", ... on repeats, in file
// order (RadGenome lists a finding once per anatomy it names).
class VqaIds {
 public:
  std::string next(const std::string& volume, const std::string& abnormality);

 private:
  std::map<std::string, int> seen_;
};

}  // namespace hse::eval
