// HSENet location-VQA metrics (see vqa.h).
#include "hse/eval/vqa.h"

#include "hse/cli/cli.h"

namespace hse::eval {

const std::array<const char*, kNumMajorClasses> kMajorClasses = {
    "Lung", "Trachea and Bronchie", "Mediastinum", "Heart", "Esophagus", "Pleura",
    "Bone", "Thyroid",              "Breast",      "Abdomen", "Others"};

namespace {

// Length of the Python whitespace character starting at s[i] (0: none).
std::size_t space_at(const std::string& s, std::size_t i) {
  const auto u = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const std::size_t n = s.size();
  const unsigned char c = u(i);
  if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) return 1;
  if (c == 0xc2 && i + 1 < n && (u(i + 1) == 0x85 || u(i + 1) == 0xa0)) return 2;
  if (i + 2 < n) {
    const unsigned char b = u(i + 1), d = u(i + 2);
    if (c == 0xe1 && b == 0x9a && d == 0x80) return 3;                           // U+1680
    if (c == 0xe2 && b == 0x80 && ((d >= 0x80 && d <= 0x8a) || d == 0xa8 || d == 0xa9 || d == 0xaf))
      return 3;                                                                  // U+2000-200A, 2028, 2029, 202F
    if (c == 0xe2 && b == 0x81 && d == 0x9f) return 3;                           // U+205F
    if (c == 0xe3 && b == 0x80 && d == 0x80) return 3;                           // U+3000
  }
  return 0;
}

// Length of a Python whitespace character ending at s[j - 1] (0: none).
std::size_t space_before(const std::string& s, std::size_t j) {
  for (std::size_t len = 1; len <= 3 && len <= j; ++len)
    if (space_at(s, j - len) == len) return len;
  return 0;
}

}  // namespace

std::string py_strip(const std::string& s) {
  std::size_t a = 0, b = s.size();
  while (a < b) {
    const std::size_t k = space_at(s, a);
    if (k == 0 || a + k > b) break;
    a += k;
  }
  while (b > a) {
    const std::size_t k = space_before(s, b);
    if (k == 0 || b - k < a) break;
    b -= k;
  }
  return s.substr(a, b - a);
}

std::string ascii_lower(std::string s) {
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

bool acc_class(const std::string& pred, const std::string& answer) {
  const std::string p = py_strip(pred);
  const std::string head = ascii_lower(p.substr(0, p.find('/')));
  return ascii_lower(answer).find(head) != std::string::npos;
}

bool acc_text(const std::string& pred, const std::string& answer) {
  return ascii_lower(py_strip(pred)) == ascii_lower(py_strip(answer));
}

int major_class_index(const std::string& anatomy) {
  const std::string a = ascii_lower(anatomy);
  for (int i = 0; i + 1 < kNumMajorClasses; ++i)
    if (a.find(ascii_lower(kMajorClasses[static_cast<std::size_t>(i)])) != std::string::npos) return i;
  return kNumMajorClasses - 1;
}

std::string major_class(const std::string& anatomy) {
  return kMajorClasses[static_cast<std::size_t>(major_class_index(anatomy))];
}

VqaScores score_vqa(const std::vector<std::string>& preds, const std::vector<std::string>& answers) {
  if (preds.size() != answers.size())
    cli::fail_input({}, "VQA scores: {} predictions but {} answers", preds.size(), answers.size());
  VqaScores s;
  s.n = preds.size();
  std::array<long, kNumMajorClasses> g_class{}, g_text{};
  long correct = 0, a_class = 0, a_text = 0;
  for (std::size_t i = 0; i < preds.size(); ++i) {
    const int t = major_class_index(answers[i]);
    const int p = major_class_index(preds[i]);
    const auto ti = static_cast<std::size_t>(t), pi = static_cast<std::size_t>(p);
    const bool ac = acc_class(preds[i], answers[i]), at = acc_text(preds[i], answers[i]);
    s.group_n[ti] += 1;
    g_class[ti] += ac;
    g_text[ti] += at;
    a_class += ac;
    a_text += at;
    s.support[ti] += 1;
    s.predicted[pi] += 1;
    if (t == p) s.tp[ti] += 1, ++correct;
  }
  const double n = static_cast<double>(s.n);
  if (s.n > 0) {
    s.acc_class = static_cast<double>(a_class) / n;
    s.acc_text = static_cast<double>(a_text) / n;
    s.accuracy = static_cast<double>(correct) / n;
  }
  int groups = 0;
  for (std::size_t c = 0; c < static_cast<std::size_t>(kNumMajorClasses); ++c) {
    if (s.group_n[c] > 0) {
      s.group_acc_class[c] = static_cast<double>(g_class[c]) / static_cast<double>(s.group_n[c]);
      s.group_acc_text[c] = static_cast<double>(g_text[c]) / static_cast<double>(s.group_n[c]);
      s.acc_class_macro += s.group_acc_class[c];
      s.acc_text_macro += s.group_acc_text[c];
      ++groups;
    }
    const double tp = static_cast<double>(s.tp[c]);
    s.precision[c] = s.predicted[c] > 0 ? tp / static_cast<double>(s.predicted[c]) : 0.0;
    s.recall[c] = s.support[c] > 0 ? tp / static_cast<double>(s.support[c]) : 0.0;
    s.f1[c] = s.precision[c] + s.recall[c] > 0 ? 2 * s.precision[c] * s.recall[c] / (s.precision[c] + s.recall[c]) : 0.0;
    s.present[c] = s.support[c] > 0 || s.predicted[c] > 0;
    if (s.present[c]) {
      ++s.n_present;
      s.macro_precision += s.precision[c];
      s.macro_recall += s.recall[c];
      s.macro_f1 += s.f1[c];
      s.weighted_precision += s.precision[c] * static_cast<double>(s.support[c]);
      s.weighted_recall += s.recall[c] * static_cast<double>(s.support[c]);
      s.weighted_f1 += s.f1[c] * static_cast<double>(s.support[c]);
    }
  }
  if (groups > 0) {
    s.acc_class_macro /= groups;
    s.acc_text_macro /= groups;
  }
  if (s.n_present > 0) {
    s.macro_precision /= s.n_present;
    s.macro_recall /= s.n_present;
    s.macro_f1 /= s.n_present;
  }
  if (s.n > 0) {
    s.weighted_precision /= n;
    s.weighted_recall /= n;
    s.weighted_f1 /= n;
  }
  return s;
}

std::string VqaIds::next(const std::string& volume, const std::string& abnormality) {
  std::string id = abnormality.empty() ? volume : volume + "|" + abnormality;
  if (const int n = ++seen_[id]; n > 1) id += "#" + std::to_string(n);
  return id;
}

}  // namespace hse::eval
