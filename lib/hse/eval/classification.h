// Binary classification metrics of one label (zero-shot abnormality detection, hse-classify ->
// hse-eval classification), as CT-CLIP's evaluation computes them (scripts/eval.py,
// scripts/bootstrap_values.py) and scikit-learn defines them:
//   auroc              roc_curve + auc (trapezoids over the distinct scores; ties count one half)
//   average_precision  average_precision_score: sum over distinct scores, descending, of
//                      (R_n - R_{n-1}) P_n
//   threshold          CT-CLIP's find_threshold: of t in numpy.linspace(0, 1, 100), predicting
//                      positive when p > t, the t whose (FPR, TPR) is nearest to (0, 1); on equal
//                      distances the larger t. Chosen on the data it is scored on, as CT-CLIP does.
//   at that threshold: f1_weighted (f1_score average="weighted": the F1 of each class weighted by
//                      its support, CT-CLIP's "F1"), f1 (of the positive class), accuracy,
//                      precision (of the positive class, 0 with no predicted positive), recall
//                      (sensitivity) and specificity (not in CT-CLIP's tables).
#pragma once

#include <cstddef>
#include <vector>

namespace hse::eval {

struct BinaryScores {
  std::size_t positives = 0, negatives = 0;
  double auroc = 0, average_precision = 0, threshold = 0;
  double f1_weighted = 0, f1 = 0, accuracy = 0, precision = 0, recall = 0, specificity = 0;
};

// Throws std::invalid_argument when the sizes differ, a label is not 0/1, or one class is
// absent (AUROC and the threshold are undefined then).
BinaryScores score_binary(const std::vector<double>& probability, const std::vector<int>& label);

}  // namespace hse::eval
