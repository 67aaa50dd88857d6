#include "hse/io/csv.h"

#include <cctype>

#include "hse/cli/cli.h"
#include "hse/io/atomic.h"

namespace hse::io {

std::optional<std::size_t> Table::find_col_ci(const std::vector<std::string>& names) const {
  auto lower = [](std::string x) {
    for (auto& c : x) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return x;
  };
  for (const auto& n : names)
    for (std::size_t i = 0; i < header.size(); ++i)
      if (lower(header[i]) == lower(n)) return i;
  return std::nullopt;
}

std::optional<std::size_t> Table::find_col(const std::string& name) const {
  for (std::size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return i;
  return std::nullopt;
}

std::size_t Table::col(const std::string& name) const {
  if (auto c = find_col(name)) return *c;
  cli::fail_input(path, "no column '{}'", name);
}

Table parse_csv(const std::string& text, const std::string& path) {
  Table t;
  t.path = path;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::size_t> lines;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, field_started = false;
  std::size_t line = 1, row_line = 1;
  std::size_t i = 0;
  if (text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;  // BOM
  auto end_row = [&] {
    row.push_back(field);
    field.clear();
    field_started = false;
    if (!(row.size() == 1 && row[0].empty())) {
      rows.push_back(std::move(row));
      lines.push_back(row_line);
    }
    row.clear();
  };
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == '"' && !field_started) {
      quoted = true;
      field_started = true;
    } else if (c == ',') {
      row.push_back(field);
      field.clear();
      field_started = false;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_row();
      ++line;
      row_line = line;
    } else {
      field += c;
      field_started = true;
    }
  }
  if (quoted) cli::fail_input(path, "line {}: unterminated quoted field", row_line);
  if (field_started || !row.empty()) end_row();
  if (rows.empty()) cli::fail_input(path, "empty CSV file (no header)");
  t.header = rows[0];
  for (std::size_t r = 1; r < rows.size(); ++r) {
    if (rows[r].size() != t.header.size())
      cli::fail_input(path, "line {}: {} fields, the header has {}", lines[r], rows[r].size(), t.header.size());
    t.rows.push_back(std::move(rows[r]));
    t.lines.push_back(lines[r]);
  }
  return t;
}

Table read_csv(const std::string& path) { return parse_csv(read_file(path), path); }

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) {
    if (c == '"') o += '"';
    o += c;
  }
  return o + '"';
}

std::string csv_row(const std::vector<std::string>& fields) {
  std::string o;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i) o += ',';
    o += csv_field(fields[i]);
  }
  return o + '\n';
}

}  // namespace hse::io
