#include "hse/eval/inputs.h"

#include <algorithm>
#include <map>
#include <sstream>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

#include "hse/cli/cli.h"
#include "hse/eval/inputs.h"
#include "hse/eval/vqa.h"

namespace hse::eval {

std::string clean_hsenet(const std::string& s) {
  std::string o;
  for (char c : s)
    if (c != '"' && c != '\'' && c != '(' && c != ')') o += c;
  return o;
}

std::string strip(const std::string& s) { return py_strip(s); }

void for_each_jsonl(std::istream& in, const std::string& name,
                    const std::function<void(const nlohmann::json&, std::size_t)>& fn) {
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (strip(line).empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception&) {
      cli::fail_input(name, "line {}: malformed JSON", n);
    }
    if (!j.is_object()) cli::fail_input(name, "line {}: expected a JSON object", n);
    fn(j, n);
  }
}

std::vector<Prediction> read_predictions(std::istream& in, const std::string& name) {
  std::vector<Prediction> out;
  for_each_jsonl(in, name, [&](const nlohmann::json& j, std::size_t n) {
    Prediction p;
    p.line = n;
    if (!j.contains("id") || !(j["id"].is_string() || j["id"].is_number()))
      cli::fail_input(name, "line {}: no \"id\"", n);
    p.id = j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump();
    if (!j.contains("prediction") || !j["prediction"].is_string())
      cli::fail_input(name, "line {}: no \"prediction\" string", n);
    p.prediction = j["prediction"].get<std::string>();
    if (j.contains("reference") && !j["reference"].is_null()) {
      if (!j["reference"].is_string()) cli::fail_input(name, "line {}: \"reference\" is not a string", n);
      p.reference = j["reference"].get<std::string>();
      p.has_reference = true;
    }
    out.push_back(std::move(p));
  });
  if (out.empty()) cli::fail_input(name, "no predictions (empty input)");
  return out;
}

Rankings read_rankings(std::istream& in, const std::string& name) {
  std::map<std::string, std::vector<std::pair<long, std::string>>> by_query;
  Rankings r;
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string x; std::getline(ss, x, '\t');) f.push_back(x);
    if (n == 1 && !f.empty() && f[0] == "query_id") continue;
    if (f.size() < 3 || f.size() > 4) cli::fail_input(name, "line {}: expected query_id<TAB>rank<TAB>item_id<TAB>score", n);
    long rank = 0;
    try {
      std::size_t p = 0;
      rank = std::stol(f[1], &p);
      if (p != f[1].size() || rank < 1) throw std::invalid_argument("rank");
    } catch (const std::exception&) {
      cli::fail_input(name, "line {}: rank '{}' is not a positive integer", n, f[1]);
    }
    if (!by_query.count(f[0])) r.queries.push_back(f[0]);
    by_query[f[0]].emplace_back(rank, f[2]);
  }
  if (r.queries.empty()) cli::fail_input(name, "no rankings (empty input)");
  for (const auto& q : r.queries) {
    auto& v = by_query[q];
    std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> items;
    for (auto& [rank, it] : v) items.push_back(std::move(it));
    r.items.push_back(std::move(items));
  }
  return r;
}

std::map<std::string, std::string> read_pairs(std::istream& in, const std::string& name) {
  std::map<std::string, std::string> truth;
  std::string line;
  std::size_t m = 0;
  while (std::getline(in, line)) {
    ++m;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const auto tab = line.find('\t');
    if (tab == std::string::npos) cli::fail_input(name, "line {}: expected query_id<TAB>item_id", m);
    truth[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return truth;
}

}  // namespace hse::eval
