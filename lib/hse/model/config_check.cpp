#include "hse/model/config_check.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "hse/cli/cli.h"

namespace hse::model {

void check_config_against(const io::SafeTensorsSet& ckpt, const std::string& prefix,
                          const std::vector<ExpectedShape>& expected, const std::string& config_source,
                          long double estimate, long double max_params) {
  if (!(estimate <= max_params))
    throw cli::Error(cli::Exit::incompatible, config_source,
                     fmt::format("the config's sizes imply about {:.3g} parameters (more than {:.3g}): not a model "
                                 "hse can build", static_cast<double>(estimate), static_cast<double>(max_params)));
  for (const auto& e : expected) {
    const std::string key = prefix + e.name;
    if (!ckpt.contains(key)) continue;
    const auto& got = ckpt.info(key).shape;
    if (got != e.shape)
      throw cli::Error(cli::Exit::incompatible, config_source,
                       fmt::format("the config gives {} [{}] ({}), but the weights hold [{}]", key, fmt::join(e.shape, ","),
                                   e.because, fmt::join(got, ",")),
                       "the config.json and the weights must come from the same model");
  }
}

void check_vocab_fits(std::int64_t vocab_entries, std::int64_t embedding_rows, const std::string& vocab_source,
                      const std::string& model_source) {
  if (vocab_entries > embedding_rows)
    throw cli::Error(cli::Exit::incompatible, vocab_source,
                     fmt::format("the vocabulary has {} entries, more than the {} embedding rows of the model's embedding table ({})",
                                 vocab_entries, embedding_rows, model_source),
                     "use the vocabulary the model was trained with");
}

void check_patch_guide(const std::string& file_guide, const std::string& model_guide, const std::string& file,
                       const std::string& model_source) {
  const std::string g = file_guide.empty() ? std::string("slices") : file_guide;
  if (g != model_guide)
    throw cli::Error(cli::Exit::incompatible, file,
                     fmt::format("holds {} guide features, but {} scores its patches by {} guides (hse-embed {} "
                                 "writes those)",
                                 g, model_source.empty() ? std::string("the model") : model_source, model_guide,
                                 model_guide == "slices" ? std::string("--slices") : "--reports --guide " + model_guide));
}

}  // namespace hse::model
