#include "hse/cli/flags.h"

#include <CLI/CLI.hpp>

#include "hse/cli/cli.h"

namespace hse::cli::flags {

CLI::Option* volumes(CLI::App& app, std::vector<std::string>& out, const std::string& help) {
  return app.add_option("--volumes", out, help)->type_name("H5...");
}
CLI::Option* slice_features(CLI::App& app, std::vector<std::string>& out, const std::string& help) {
  return app.add_option("--slice-features", out, help)->type_name("H5...");
}
CLI::Option* reports(CLI::App& app, std::string& out, const std::string& help) {
  return app.add_option("--reports", out, help)->type_name("CSV");
}
void text_columns(CLI::App& app, std::vector<std::string>& out) {
  add_list(app, "--text-columns", out, 0, "report columns joined as the text", "COL[,COL...]");
}
CLI::Option* max_length(CLI::App& app, int& out, const std::string& help) {
  return app.add_option("--max-length", out, help)->check(CLI::PositiveNumber);
}
CLI::Option* truncation(CLI::App& app, std::string& out, const std::string& help) {
  return app.add_option("--truncation", out, help)->check(CLI::IsMember({"sentences", "cut"}));
}
CLI::Option* model(CLI::App& app, std::string& out, const std::string& help) {
  return app.add_option("--model", out, help)->type_name("DIR");
}
CLI::Option* batch_size(CLI::App& app, int& out, const std::string& help, bool older_alias) {
  return app.add_option(older_alias ? "--batch-size,--batch" : "--batch-size", out,
                        older_alias ? help + " (--batch: the older name)" : help);
}
CLI::Option* compression(CLI::App& app, std::string& out) {
  return app.add_option("--compression", out,
                        "compress the stored arrays, losslessly: none, gzip (built into HDF5), lz4, blosc or "
                        "bitshuffle (HDF5 filter plugins, which readers need too: see hse-formats(5))")
      ->default_val("none")
      ->check(CLI::IsMember({"none", "gzip", "lz4", "blosc", "bitshuffle"}));
}
CLI::Option* data_workers(CLI::App& app, int& out, const std::string& help) {
  return app.add_option("--data-workers", out,
                        help + " (0: on the main thread; default: half the cores, 1 to 4); the results are the "
                               "same for any number")
      ->check(CLI::Range(0, 64));
}
CLI::Option* storage_dtype(CLI::App& app, std::string& out) {
  return app.add_option("--dtype", out, "stored type: float32 or float16")
      ->default_val("float32")
      ->check(CLI::IsMember({"float32", "float16"}));
}
void hu_window(CLI::App& app, std::array<double, 2>& out, const std::string& help) {
  add_list(app, "--window", out, help, "LO,HI");
}
void spacing(CLI::App& app, std::array<double, 2>& out) { add_list(app, "--spacing", out, "target spacing in mm", "Z,XY"); }
CLI::Option* no_resample(CLI::App& app, bool& resample) {
  return app.add_flag_callback("--no-resample", [&resample] { resample = false; }, "do not resample to --spacing");
}

CLI::Option* task(CLI::App& app, std::string& out, const std::string& help) {
  return app.add_option("--task", out, help)->default_val("mrg")->check(CLI::IsMember({"mrg", "vqa"}));
}
CLI::Option* clip(CLI::App& app, std::string& out, const std::string& help) {
  return app.add_option("--clip", out, help)->type_name("DIR");
}
CLI::Option* llm(CLI::App& app, std::string& out, const std::string& help) {
  return app.add_option("--llm", out, help)->type_name("DIR");
}
CLI::Option* tokenizer(CLI::App& app, std::string& out, const std::string& help) {
  return app.add_option("--tokenizer", out, help)->type_name("JSON");
}
CLI::Option* tokenizer_mode(CLI::App& app, std::string& out, const std::string& help) {
  return app.add_option("--tokenizer-mode", out, help)->check(CLI::IsMember({"fast", "slow"}));
}
CLI::Option* questions(CLI::App& app, std::string& out, const std::string& help) {
  return app.add_option("--questions", out, help)->type_name("CSV");
}
CLI::Option* prompts(CLI::App& app, std::string& out, const std::string& help) {
  return app.add_option("--prompts", out, help)->type_name("TXT");
}

}  // namespace hse::cli::flags
