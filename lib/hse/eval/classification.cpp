#include "hse/eval/classification.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace hse::eval {

namespace {
struct Counts {
  double tp = 0, fp = 0, tn = 0, fn = 0;
};
Counts confusion(const std::vector<double>& p, const std::vector<int>& y, double t) {
  Counts c;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const bool pred = p[i] > t;
    if (y[i]) (pred ? c.tp : c.fn) += 1;
    else (pred ? c.fp : c.tn) += 1;
  }
  return c;
}
double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }  // sklearn's zero_division=0
}  // namespace

BinaryScores score_binary(const std::vector<double>& p, const std::vector<int>& y) {
  if (p.size() != y.size()) throw std::invalid_argument("probabilities and labels differ in number");
  BinaryScores s;
  for (int v : y) {
    if (v != 0 && v != 1) throw std::invalid_argument("labels must be 0 or 1");
    (v ? s.positives : s.negatives) += 1;
  }
  if (s.positives == 0 || s.negatives == 0)
    throw std::invalid_argument("only one class present: AUROC and the threshold are undefined");
  const double P = static_cast<double>(s.positives), N = static_cast<double>(s.negatives);

  // Items by score, descending; the ROC and precision-recall curves step at each distinct score.
  std::vector<std::size_t> order(p.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return p[a] > p[b]; });
  double tp = 0, fp = 0, prev_tpr = 0, prev_fpr = 0, prev_recall = 0, auc = 0, ap = 0;
  for (std::size_t i = 0; i < order.size();) {
    const double score = p[order[i]];
    for (; i < order.size() && p[order[i]] == score; ++i) (y[order[i]] ? tp : fp) += 1;
    const double tpr = tp / P, fpr = fp / N;
    auc += (fpr - prev_fpr) * (tpr + prev_tpr) / 2;
    ap += (tpr - prev_recall) * (tp / (tp + fp));
    prev_tpr = tpr, prev_fpr = fpr, prev_recall = tpr;
  }
  s.auroc = auc;
  s.average_precision = ap;

  // CT-CLIP's threshold: nearest to the ROC corner (0, 1) on numpy.linspace(0, 1, 100).
  double best = std::numeric_limits<double>::infinity();
  const double step = 1.0 / 99.0;  // numpy.linspace: k * step, the last value exactly 1
  for (int k = 0; k < 100; ++k) {
    const double t = k == 99 ? 1.0 : static_cast<double>(k) * step;
    const Counts c = confusion(p, y, t);
    const double d = std::sqrt(std::pow(1 - c.tp / P, 2) + std::pow(c.fp / N, 2));
    if (d <= best) {
      best = d;
      s.threshold = t;
    }
  }
  const Counts c = confusion(p, y, s.threshold);
  s.precision = ratio(c.tp, c.tp + c.fp);
  s.recall = c.tp / P;
  s.specificity = c.tn / N;
  s.accuracy = (c.tp + c.tn) / (P + N);
  s.f1 = ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn);
  const double f1_negative = ratio(2 * c.tn, 2 * c.tn + c.fn + c.fp);
  s.f1_weighted = (s.f1 * P + f1_negative * N) / (P + N);
  return s;
}

}  // namespace hse::eval
