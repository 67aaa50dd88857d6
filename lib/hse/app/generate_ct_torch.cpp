// hse-generate on CT files: the adapter's inputs record replayed in-process through hse-preprocess,
// hse-slice and hse-embed --slices (app/generate.h).
#include "hse/app/generate.h"

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "hse/app/embed.h"
#include "hse/app/preprocess.h"
#include "hse/app/slice.h"
#include "hse/cli/cli.h"
#include "hse/embed/slice_encoder.h"
#include "hse/io/atomic.h"
#include "hse/preprocess/recipe.h"
#include "hse/slice/recipe.h"
#include "hse/vlm/inputs.h"

namespace fs = std::filesystem;

namespace hse::generate {

namespace {

// What to do about an adapter whose inputs record this hse cannot replay.
constexpr const char* kRecordHint =
    "retrain with this hse (hse-finetune records how its inputs were made), or pass --volumes";

[[noreturn]] void bad_record(const std::string& source, const std::string& what, const std::string& hint) {
  throw cli::Error(cli::Exit::incompatible, source, fmt::format("the inputs record {}", what), hint);
}

}  // namespace

namespace {
// Failed inputs of a --keep-going batch (its --failures TSV: path<TAB>reason).
std::vector<std::pair<std::string, std::string>> read_failures(const std::string& tsv) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!fs::exists(tsv)) return out;
  std::istringstream in(io::read_file(tsv));
  for (std::string line; std::getline(in, line);) {
    const auto tab = line.find('\t');
    if (!line.empty()) out.emplace_back(line.substr(0, tab), tab == std::string::npos ? "" : line.substr(tab + 1));
  }
  return out;
}
}  // namespace

image::CtInputOptions named_ct_inputs(const image::CtInputOptions& o, std::istream& in) {
  const image::Metadata meta = o.metadata.empty() ? image::Metadata() : image::Metadata(o.metadata);
  image::CtInputOptions ct = o;
  ct.inputs = image::collect_inputs(o, meta, in);
  ct.ids = image::input_ids(ct.inputs, o.root);
  return ct;
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path.empty()) fs::remove_all(path, ec);
}

void TempDir::make() {
  std::string t = (fs::temp_directory_path() / (prefix_ + "-XXXXXX")).string();
  if (!::mkdtemp(t.data())) cli::fail(cli::Exit::runtime, t, "cannot create a temporary directory");
  path = t;
}

CtPrepared prepare_ct_inputs(const std::string& inputs_json, const image::CtInputOptions& ct, const CtPrepare& p) {
  const std::string source = (fs::path(p.adapter_dir) / p.record_file).string();
  const std::string hint = p.hint.empty() ? kRecordHint : p.hint;
  if (inputs_json.empty()) bad_record(source, "is missing", hint);
  nlohmann::json rec;
  try {
    rec = nlohmann::json::parse(inputs_json);
  } catch (const nlohmann::json::exception& e) {
    bad_record(source, fmt::format("is not JSON: {}", e.what()), hint);
  }
  if (!rec.is_object() || !rec.contains("volumes") || !rec["volumes"].is_object())
    bad_record(source, "has no volume recipe", hint);
  cli::NestedRun nested;  // the tools' own summary lines would name the temporary files
  cli::Io io = cli::standard_io();
  auto common = [&](const std::string& name) {
    cli::Common c;
    c.output = (fs::path(p.dir) / name).string();
    c.device = p.device;
    c.threads = p.threads;
    c.progress = cli::ProgressMode::never;
    return c;
  };
  CtPrepared out;
  image::CtInputOptions input = ct;
  image::BatchOptions batch;
  batch.keep_going = p.keep_going;
  // Runs one step; failed inputs leave `input` and join out.failed. Errors never name p.dir.
  auto step = [&](const std::string& failures, const std::function<void()>& fn) {
    batch.failures = p.keep_going ? (fs::path(p.dir) / failures).string() : std::string();
    try {
      fn();
    } catch (const cli::Error& e) {
      if (e.file().rfind(p.dir, 0) == 0) throw cli::Error(e.code(), {}, e.what(), e.hint());
      throw;
    }
    const auto failed = read_failures(batch.failures);
    if (failed.empty()) return;
    std::set<std::string> bad;
    for (const auto& f : failed) bad.insert(f.first);
    image::CtInputOptions kept = input;
    kept.inputs.clear();
    kept.ids.clear();
    for (std::size_t i = 0; i < input.inputs.size(); ++i)
      if (!bad.count(input.inputs[i])) {
        kept.inputs.push_back(input.inputs[i]);
        kept.ids.push_back(input.ids[i]);
      }
    input = kept;
    out.failed.insert(out.failed.end(), failed.begin(), failed.end());
  };
  // The recipes are read strictly: a missing, malformed or unknown field is exit 3 naming it.
  const auto volume_recipe = preprocess::Recipe::from_json(rec["volumes"], source, hint);
  const bool with_slices = rec.contains("slices") && rec.contains("slice_encoder");
  const auto slice_recipe = with_slices ? slice::Recipe::from_json(rec["slices"], source, hint) : slice::Recipe{};
  const auto enc = with_slices ? embed::SliceEncoderRecord::from_json(rec["slice_encoder"], source, hint)
                               : embed::SliceEncoderRecord{};
  preprocess::Options po;
  po.common = common("volumes.h5");
  po.input = input;
  po.batch = batch;
  po.recipe = volume_recipe;
  step("preprocess_failures.tsv", [&] {
    po.batch = batch;
    preprocess::run(po, io);
  });
  out.volumes = po.common.output;
  cli::info("preprocessed {} volume{}", input.inputs.size(), input.inputs.size() == 1 ? "" : "s");
  if (!with_slices) return out;

  slice::Options so;
  so.common = common("slices.h5");
  so.recipe = slice_recipe;
  step("slice_failures.tsv", [&] {
    so.input = input;
    so.batch = batch;
    slice::run(so, io);
  });

  embed::Options eo;
  eo.common = common("slice_features.h5");
  eo.slices = {so.common.output};
  eo.model = !p.slice_encoder.empty() ? p.slice_encoder : vlm::resolve_recorded(p.adapter_dir, enc.model);
  eo.random_init = p.slice_encoder.empty() ? enc.random_init : -1;
  eo.vit2d_config = !p.slice_encoder_config.empty() ? p.slice_encoder_config
                                                     : vlm::resolve_recorded(p.adapter_dir, enc.vit2d_config);
  eo.prefix = enc.prefix;
  embed::run(eo, io);
  out.slice_features = eo.common.output;
  return out;
}

}  // namespace hse::generate
