// CSV (RFC 4180: quoted fields, doubled quotes, embedded newlines) and TSV helpers.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hse::io {

struct Table {
  std::string path;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::size_t> lines;  // 1-based line number where each row starts

  // Column index by name; throws an input error naming the file when absent.
  std::size_t col(const std::string& name) const;
  std::optional<std::size_t> find_col(const std::string& name) const;
  // The first of `names` present as a column, compared ASCII-case-insensitively
  // (RadGenome writes "Volumename", CT-RATE "VolumeName").
  std::optional<std::size_t> find_col_ci(const std::vector<std::string>& names) const;
};

// Parses CSV text; errors name `path` and the line.
Table parse_csv(const std::string& text, const std::string& path);
Table read_csv(const std::string& path);

// Quotes a field when it holds a comma, quote or newline.
std::string csv_field(const std::string& s);
std::string csv_row(const std::vector<std::string>& fields);

}  // namespace hse::io
