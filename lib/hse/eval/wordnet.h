// hse::eval — a reader of the WordNet 3.0 database files (Debian's wordnet-base,
// /usr/share/wordnet) with just what nltk's METEOR needs: the lemma -> synset
// index, the morphological exception lists, nltk's morphy and the lemma names of
// a synset. It mirrors nltk.corpus.reader.wordnet.WordNetCorpusReader (nltk 3.9/3.10):
// synsets(word) with pos=None tries n, v, a, r; for each part of speech
// _morphy() returns the word itself and either its exception-list base forms or
// the one-step suffix substitutions, keeping those the index lists for that part
// of speech.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace hse::eval {

class WordNet {
 public:
  // The four parts of speech in nltk's POS_LIST order.
  static constexpr std::array<char, 4> kPos = {'n', 'v', 'a', 'r'};

  // Loads the database files from `dir` once per directory (thread-safe) and keeps
  // them for the life of the process. Throws cli::Error (exit 3) naming the missing
  // or malformed file.
  static const WordNet& load(const std::string& dir = "/usr/share/wordnet");

  // Reads the files now (load() caches; use this only for a private instance).
  explicit WordNet(const std::string& dir);

  // The lemma names (syntactic markers such as "(a)" removed, case as in the
  // database, '_' for spaces) of all synsets of `word`, as nltk's
  // wordnet.synsets(word) finds them. Sorted, without duplicates.
  std::vector<std::string> synonyms(const std::string& word) const;

  // nltk's WordNetCorpusReader._morphy(form, pos): the candidate base forms of
  // `form` (already lowercased) that the index lists for `pos` ('n', 'v', 'a', 'r').
  std::vector<std::string> morphy(const std::string& form, char pos) const;

  // The synset offsets the index lists for `lemma` under `pos`, in index order.
  const std::vector<std::uint32_t>& offsets(const std::string& lemma, char pos) const;

  // The lemma names of the synset at byte `offset` of data.<pos>, in database order.
  std::vector<std::string> lemma_names(char pos, std::uint32_t offset) const;

  std::size_t lemma_count() const { return index_.size(); }

 private:
  struct Entry {
    std::array<std::vector<std::uint32_t>, 4> offsets;
    std::uint8_t mask = 0;  // bit p: the index lists this lemma under kPos[p]
  };
  std::string dir_;
  std::unordered_map<std::string, Entry> index_;
  std::array<std::unordered_map<std::string, std::vector<std::string>>, 4> exceptions_;
  std::array<std::string, 4> data_;  // the data.* files, whole
};

}  // namespace hse::eval
