// The text inputs of hse-eval, parsed in libhse without LibTorch (so that the fuzz targets of
// tests/fuzz reach them): JSONL lines, and the rankings TSV of hse-retrieve. Every error names the file and the line (exit 3).
#pragma once

#include <cstddef>
#include <functional>
#include <istream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace hse::eval {

// Calls fn(object, line number) for every non-blank line of JSONL; a line that is not a JSON
// object is refused, naming the line.
void for_each_jsonl(std::istream& in, const std::string& name,
                    const std::function<void(const nlohmann::json&, std::size_t)>& fn);

// A rankings TSV: query_id<TAB>rank<TAB>item_id[<TAB>score] lines, an optional header line starting
// with "query_id". `queries` in order of first appearance; `items[q]` sorted by rank (stable).
struct Rankings {
  std::vector<std::string> queries;
  std::vector<std::vector<std::string>> items;
};
Rankings read_rankings(std::istream& in, const std::string& name);

// The true pairs of hse-eval retrieval --pairs: query_id<TAB>item_id lines (the last pair of a
// query wins).
std::map<std::string, std::string> read_pairs(std::istream& in, const std::string& name);

// HSENet's reference cleaning: removes ", ', ( and ).
std::string clean_hsenet(const std::string& s);
// Python's str.strip() for ASCII whitespace.
std::string strip(const std::string& s);

struct Prediction {
  std::string id, prediction, reference;
  bool has_reference = false;
  std::size_t line = 0;
};
// Reads predictions JSONL ({"id", "prediction", "reference"?}); errors name the file and line.
std::vector<Prediction> read_predictions(std::istream& in, const std::string& name);

}  // namespace hse::eval
