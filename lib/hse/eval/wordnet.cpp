// WordNet 3.0 database reader: the parts of nltk's WordNetCorpusReader that
// nltk.translate.meteor_score uses (synsets() with morphy, Synset.lemmas() names).
#include "hse/eval/wordnet.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string_view>

#include "hse/cli/cli.h"
#include "hse/eval/porter.h"

namespace hse::eval {

namespace {

constexpr const char* kFileNames[4] = {"noun", "verb", "adj", "adv"};

int pos_slot(char pos) {
  switch (pos) {
    case 'n': return 0;
    case 'v': return 1;
    case 'a': return 2;
    case 'r': return 3;
    default: return -1;
  }
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    cli::fail_input(path, "cannot read the WordNet database file (Debian/Ubuntu: apt-get install wordnet-base)");
  std::string s;
  f.seekg(0, std::ios::end);
  const auto size = f.tellg();
  if (size > 0) {
    s.resize(static_cast<std::size_t>(size));
    f.seekg(0);
    f.read(s.data(), size);
  }
  if (!f) cli::fail_input(path, "error while reading the WordNet database file");
  return s;
}

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Python's str.split() on an ASCII line.
void split_ws(std::string_view line, std::vector<std::string_view>& out) {
  out.clear();
  std::size_t i = 0;
  const std::size_t n = line.size();
  while (i < n) {
    while (i < n && is_ws(line[i])) ++i;
    if (i == n) break;
    std::size_t j = i;
    while (j < n && !is_ws(line[j])) ++j;
    out.push_back(line.substr(i, j - i));
    i = j;
  }
}

// Calls fn(line, line_number) for each line (without its '\n').
template <typename F>
void for_each_line(const std::string& text, F&& fn) {
  std::size_t pos = 0;
  std::size_t number = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    fn(std::string_view(text).substr(pos, end - pos), ++number);
    pos = end + 1;
  }
}

bool parse_int(std::string_view s, long long& v, int base = 10) {
  if (s.empty()) return false;
  const char* b = s.data();
  if (*b == '+') ++b;  // Python's int() accepts a sign
  auto [p, ec] = std::from_chars(b, s.data() + s.size(), v, base);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

const WordNet& WordNet::load(const std::string& dir) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<WordNet>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[dir];
  if (!slot) {
    try {
      slot = std::make_unique<WordNet>(dir);
    } catch (...) {
      cache.erase(dir);
      throw;
    }
  }
  return *slot;
}

WordNet::WordNet(const std::string& dir) : dir_(dir) {
  // Every file is checked before any is parsed, so a missing file is named at once.
  std::array<std::string, 4> index_text, exc_text;
  for (int p = 0; p < 4; ++p) {
    index_text[p] = read_file(dir + "/index." + kFileNames[p]);
    data_[p] = read_file(dir + "/data." + kFileNames[p]);
    exc_text[p] = read_file(dir + "/" + kFileNames[p] + ".exc");
  }

  index_.reserve(160000);
  std::vector<std::string_view> tok;
  for (int p = 0; p < 4; ++p) {
    const std::string file = dir + "/index." + kFileNames[p];
    for_each_line(index_text[p], [&](std::string_view line, std::size_t number) {
      if (line.empty() || line[0] == ' ') return;  // the licence header
      split_ws(line, tok);
      // lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt synset_offset...
      auto bad = [&](const char* what) {
        cli::fail_input(file, "line {}: malformed index entry ({})", number, what);
      };
      std::size_t k = 0;
      auto next = [&]() -> std::string_view {
        if (k >= tok.size()) bad("too few fields");
        return tok[k++];
      };
      const std::string_view lemma = next();
      const std::string_view pos = next();
      long long n_synsets = 0, n_pointers = 0, n_senses = 0, scratch = 0;
      if (!parse_int(next(), n_synsets) || n_synsets <= 0) bad("synset count");
      if (!parse_int(next(), n_pointers) || n_pointers < 0) bad("pointer count");
      for (long long i = 0; i < n_pointers; ++i) next();
      if (!parse_int(next(), n_senses) || n_senses != n_synsets) bad("sense count");
      next();  // tagsense_cnt
      std::vector<std::uint32_t> offs;
      offs.reserve(static_cast<std::size_t>(n_synsets));
      for (long long i = 0; i < n_synsets; ++i) {
        if (!parse_int(next(), scratch) || scratch < 0) bad("synset offset");
        offs.push_back(static_cast<std::uint32_t>(scratch));
      }
      const int slot = pos.size() == 1 ? pos_slot(pos[0]) : -1;
      if (slot < 0) return;  // not reachable through synsets() with pos=None
      Entry& e = index_[std::string(lemma)];
      e.offsets[slot] = std::move(offs);
      e.mask |= static_cast<std::uint8_t>(1u << slot);
    });
  }

  for (int p = 0; p < 4; ++p) {
    for_each_line(exc_text[p], [&](std::string_view line, std::size_t) {
      split_ws(line, tok);
      if (tok.empty()) return;
      std::vector<std::string> bases(tok.begin() + 1, tok.end());
      exceptions_[p][std::string(tok[0])] = std::move(bases);  // a later line wins, as in nltk's dict
    });
  }
}

const std::vector<std::uint32_t>& WordNet::offsets(const std::string& lemma, char pos) const {
  static const std::vector<std::uint32_t> none;
  const int slot = pos_slot(pos);
  if (slot < 0) return none;
  auto it = index_.find(lemma);
  if (it == index_.end()) return none;
  return it->second.offsets[slot];
}

std::vector<std::string> WordNet::morphy(const std::string& form, char pos) const {
  static const std::vector<std::pair<std::string, std::string>> kSubs[4] = {
      {{"s", ""},
       {"ses", "s"},
       {"ves", "f"},
       {"xes", "x"},
       {"zes", "z"},
       {"ches", "ch"},
       {"shes", "sh"},
       {"men", "man"},
       {"ies", "y"}},
      {{"s", ""}, {"ies", "y"}, {"es", "e"}, {"es", ""}, {"ed", "e"}, {"ed", ""}, {"ing", "e"}, {"ing", ""}},
      {{"er", ""}, {"est", ""}, {"er", "e"}, {"est", "e"}},
      {},
  };
  const int slot = pos_slot(pos);
  if (slot < 0) return {};
  std::vector<std::string> forms{form};
  if (auto it = exceptions_[slot].find(form); it != exceptions_[slot].end()) {
    forms.insert(forms.end(), it->second.begin(), it->second.end());
  } else {
    for (const auto& [old, repl] : kSubs[slot]) {
      if (form.size() >= old.size() && form.compare(form.size() - old.size(), old.size(), old) == 0)
        forms.push_back(form.substr(0, form.size() - old.size()) + repl);
    }
  }
  std::vector<std::string> result;
  for (auto& f : forms) {
    auto it = index_.find(f);
    if (it == index_.end() || !(it->second.mask & (1u << slot))) continue;
    if (std::find(result.begin(), result.end(), f) == result.end()) result.push_back(std::move(f));
  }
  return result;
}

std::vector<std::string> WordNet::lemma_names(char pos, std::uint32_t offset) const {
  const int slot = pos_slot(pos);
  if (slot < 0) return {};
  const std::string& data = data_[slot];
  if (offset >= data.size()) return {};
  std::size_t end = data.find('\n', offset);
  if (end == std::string::npos) end = data.size();
  std::string_view line = std::string_view(data).substr(offset, end - offset);
  // nltk checks that the line starts with the 8-digit offset.
  char expect[16];
  std::snprintf(expect, sizeof expect, "%08u", offset);
  if (line.substr(0, 8) != expect) return {};
  line = line.substr(0, line.find('|'));
  std::vector<std::string_view> tok;
  split_ws(line, tok);
  std::vector<std::string> names;
  long long n = 0;
  if (tok.size() < 4 || !parse_int(tok[3], n, 16)) return names;
  for (long long i = 0; i < n && 4 + 2 * i < static_cast<long long>(tok.size()); ++i) {
    std::string_view name = tok[4 + 2 * i];
    // nltk: re.match(r"(.*?)(\([^()]*\))?$", name) keeps group 1 — a trailing
    // parenthesised syntactic marker without nested parentheses is dropped.
    if (!name.empty() && name.back() == ')') {
      const std::size_t open = name.rfind('(');
      if (open != std::string_view::npos && name.substr(open + 1, name.size() - open - 2).find(')') == std::string_view::npos)
        name = name.substr(0, open);
    }
    names.emplace_back(name);
  }
  return names;
}

std::vector<std::string> WordNet::synonyms(const std::string& word) const {
  const std::string lemma = py_lower(word);
  std::set<std::string> out;
  for (char pos : kPos)
    for (const std::string& form : morphy(lemma, pos))
      for (std::uint32_t off : offsets(form, pos))
        for (auto& name : lemma_names(pos, off)) out.insert(std::move(name));
  return {out.begin(), out.end()};
}

}  // namespace hse::eval
