// The flag table: every flag that more than one tool takes is declared here, once — its name,
// value type, value name and checks. A tool passes the help text of its role (what its --volumes
// are for) and, where tools differ, the default. Flags of one tool are declared by that tool;
// cli::add_common (cli.h) holds -o, --device, --threads, --seed, --shard, -v/-q and --progress,
// and train::add_loop_options (train/loop_options.h) the training loop's.
#pragma once

#include <array>
#include <string>
#include <vector>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace hse::cli::flags {

// Inputs in hse's HDF5 formats (shards in order).
CLI::Option* volumes(CLI::App& app, std::vector<std::string>& out, const std::string& help);
CLI::Option* slice_features(CLI::App& app, std::vector<std::string>& out, const std::string& help);
// A CT-RATE reports CSV (VolumeName + text columns).
CLI::Option* reports(CLI::App& app, std::string& out, const std::string& help);
// --text-columns COL[,COL...]: report columns joined as the text.
void text_columns(CLI::App& app, std::vector<std::string>& out);
// --max-length N: a token budget (its meaning is the tool's).
CLI::Option* max_length(CLI::App& app, int& out, const std::string& help);
// --truncation sentences|cut: reports longer than --max-length.
CLI::Option* truncation(CLI::App& app, std::string& out, const std::string& help);
// --model DIR: a model directory (which kind is the tool's).
CLI::Option* model(CLI::App& app, std::string& out, const std::string& help);
// --batch-size N (with older_alias: also --batch, the name before hse 0.2).
CLI::Option* batch_size(CLI::App& app, int& out, const std::string& help, bool older_alias = false);
// --dtype float32|float16: the stored type of an output array.
CLI::Option* storage_dtype(CLI::App& app, std::string& out);
// --compression CODEC: HDF5 filters on an output's arrays (h5::Codec).
CLI::Option* compression(CLI::App& app, std::string& out);
// --data-workers N: threads that prepare the next batches while the current one computes
// (-1, the default: train::data_workers(), prefetch.h).
CLI::Option* data_workers(CLI::App& app, int& out, const std::string& help);
// CT geometry of the preprocessing and slice recipes.
void hu_window(CLI::App& app, std::array<double, 2>& out, const std::string& help);
void spacing(CLI::App& app, std::array<double, 2>& out);
// --no-resample: sets `resample` to false.
CLI::Option* no_resample(CLI::App& app, bool& resample);

// The VLM tools (hse-finetune, hse-generate).
CLI::Option* task(CLI::App& app, std::string& out, const std::string& help);
CLI::Option* clip(CLI::App& app, std::string& out, const std::string& help);
CLI::Option* llm(CLI::App& app, std::string& out, const std::string& help);
CLI::Option* tokenizer(CLI::App& app, std::string& out, const std::string& help);
CLI::Option* tokenizer_mode(CLI::App& app, std::string& out, const std::string& help);
CLI::Option* questions(CLI::App& app, std::string& out, const std::string& help);
CLI::Option* prompts(CLI::App& app, std::string& out, const std::string& help);

}  // namespace hse::cli::flags
