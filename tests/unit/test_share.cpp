// share/hse data files agree with the library's own tables.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "hse/synth/synth.h"

TEST_CASE("share/hse/labels/ct-rate-abnormalities.txt lists the 18 labels in CT-RATE's order") {
  const char* src = std::getenv("HSE_SOURCE_DIR");
  REQUIRE(src != nullptr);
  std::ifstream f(std::string(src) + "/share/hse/labels/ct-rate-abnormalities.txt");
  REQUIRE(f.good());
  std::vector<std::string> lines;
  for (std::string l; std::getline(f, l);)
    if (!l.empty()) lines.push_back(l);
  REQUIRE(lines.size() == hse::synth::kLabels.size());
  for (std::size_t i = 0; i < lines.size(); ++i) CHECK(lines[i] == hse::synth::kLabels[i]);
}

TEST_CASE("share/hse/prompts/caption.txt trains on HSENet's evaluation prompt") {
  const char* src = std::getenv("HSE_SOURCE_DIR");
  REQUIRE(src != nullptr);
  std::ifstream f(std::string(src) + "/share/hse/prompts/caption.txt");
  REQUIRE(f.good());
  bool found = false;
  for (std::string l; std::getline(f, l);) found = found || l == "Can you summarize with findings the images presented?";
  CHECK(found);
}
