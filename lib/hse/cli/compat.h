// --compat hsenet: the one preset, in every tool whose HSENet code path differs from hse's default,
// that reproduces HSENet's public code literally (its quirks included). Each tool's man page has
// the table: setting | HSENet code | paper | hse default | --compat hsenet.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace hse::cli {

inline constexpr const char* kCompatHsenet = "hsenet";

// Declares --compat (the only value: hsenet). `effects` lists what it sets in this tool.
void add_compat_option(CLI::App& app, std::string& compat, const std::string& effects);

}  // namespace hse::cli
