#include "hse/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>
#include <utility>

#include "hse/cli/cli.h"
#include "hse/io/atomic.h"
#include "hse/io/failpoint.h"
#include "hse/io/h5.h"

namespace fs = std::filesystem;

namespace hse::io {
namespace {

constexpr std::uint64_t kMaxHeader = 100'000'000;  // the crate's MAX_HEADER_SIZE
constexpr int kMaxDepth = 128;                     // serde_json's recursion limit

struct DtypeRow {
  Dtype t;
  const char* name;
  std::size_t bits;
};
constexpr DtypeRow kDtypes[] = {
    {Dtype::BOOL, "BOOL", 8},
    {Dtype::F4, "F4", 4},
    {Dtype::F6_E2M3, "F6_E2M3", 6},
    {Dtype::F6_E3M2, "F6_E3M2", 6},
    {Dtype::U8, "U8", 8},
    {Dtype::I8, "I8", 8},
    {Dtype::F8_E5M2, "F8_E5M2", 8},
    {Dtype::F8_E4M3, "F8_E4M3", 8},
    {Dtype::F8_E8M0, "F8_E8M0", 8},
    {Dtype::F8_E4M3FNUZ, "F8_E4M3FNUZ", 8},
    {Dtype::F8_E5M2FNUZ, "F8_E5M2FNUZ", 8},
    {Dtype::I16, "I16", 16},
    {Dtype::U16, "U16", 16},
    {Dtype::F16, "F16", 16},
    {Dtype::BF16, "BF16", 16},
    {Dtype::I32, "I32", 32},
    {Dtype::U32, "U32", 32},
    {Dtype::F32, "F32", 32},
    {Dtype::C64, "C64", 64},
    {Dtype::F64, "F64", 64},
    {Dtype::I64, "I64", 64},
    {Dtype::U64, "U64", 64},
};

// A name as it may appear inside a one-line message: control characters and
// backslashes escaped, everything else (UTF-8 included) kept.
std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f || c == '\\') {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string shape_str(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Position of the first invalid UTF-8 byte (overlong forms, surrogates and
// code points above U+10FFFF are invalid, as in Rust's str::from_utf8), or npos.
std::size_t utf8_error(const std::uint8_t* s, std::size_t n) {
  std::size_t i = 0;
  while (i < n) {
    const std::uint8_t c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    std::uint8_t lo = 0x80, hi = 0xbf;  // bounds of the second byte
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return i;
    }
    if (n - i < len) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (std::size_t k = 2; k < len; ++k)
      if (s[i + k] < 0x80 || s[i + k] > 0xbf) return i;
    i += len;
  }
  return std::string::npos;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

struct RawTensor {
  std::string name;
  Dtype dtype;
  std::vector<std::int64_t> shape;
  std::uint64_t begin, end;
};

// A strict parser for the header's JSON subset: the grammar of RFC 8259 (as
// serde_json reads it), no duplicate keys, nesting limited to 128 levels.
class HeaderParser {
 public:
  HeaderParser(const std::string& file, const char* s, std::size_t n) : file_(file), s_(s), n_(n) {}

  void parse(std::vector<RawTensor>& tensors, std::map<std::string, std::string>& metadata) {
    if (n_ == 0 || s_[0] != '{') cli::fail_input(file_, "header does not start with '{{'");
    ++i_;
    std::set<std::string> seen;
    ws();
    if (peek() == '}') {
      ++i_;
    } else {
      for (;;) {
        ws();
        if (peek() != '"') bad("expected a string key");
        std::string key = string();
        if (!seen.insert(key).second) cli::fail_input(file_, "duplicate key '{}' in header", printable(key));
        colon();
        if (key == "__metadata__") {
          parse_metadata(metadata);
        } else {
          tensors.push_back(parse_tensor(std::move(key)));
        }
        if (closed('}')) break;
      }
    }
    ws();
    if (i_ != n_) bad("trailing characters after the header object");
  }

 private:
  [[noreturn]] void bad(const char* what) { cli::fail_input(file_, "malformed header JSON at byte {}: {}", i_, what); }
  char peek() const { return i_ < n_ ? s_[i_] : '\0'; }
  bool at_end() const { return i_ >= n_; }
  void ws() {
    while (i_ < n_ && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  void colon() {
    ws();
    if (peek() != ':') bad("expected ':'");
    ++i_;
    ws();
  }
  void expect(char c, const char* what) {
    ws();
    if (at_end() || s_[i_] != c) bad(what);
    ++i_;
  }

  std::uint32_t hex4() {
    if (n_ - i_ < 4) bad("truncated \\u escape");
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<std::uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<std::uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<std::uint32_t>(c - 'A' + 10);
      } else {
        --i_;
        bad("invalid \\u escape");
      }
    }
    return v;
  }

  // At '"': reads a string (the header is already known to be valid UTF-8).
  std::string string() {
    ++i_;
    std::string out;
    for (;;) {
      if (at_end()) bad("unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return out;
      }
      if (c < 0x20) bad("control character in string");
      if (c != '\\') {
        out += static_cast<char>(c);
        ++i_;
        continue;
      }
      ++i_;
      if (at_end()) bad("unterminated string");
      const char e = s_[i_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          std::uint32_t cp = hex4();
          if (cp >= 0xdc00 && cp <= 0xdfff) bad("lone trailing surrogate in \\u escape");
          if (cp >= 0xd800 && cp <= 0xdbff) {
            if (n_ - i_ < 2 || s_[i_] != '\\' || s_[i_ + 1] != 'u') bad("lone leading surrogate in \\u escape");
            i_ += 2;
            const std::uint32_t lo = hex4();
            if (lo < 0xdc00 || lo > 0xdfff) bad("lone leading surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          append_utf8(out, cp);
          break;
        }
        default:
          --i_;
          bad("invalid escape");
      }
    }
  }

  // A JSON number token. Sets `integer` to its value when it is a
  // non-negative integer that fits in 63 bits; returns false otherwise.
  bool number(std::uint64_t& integer) {
    bool ok = true;
    if (peek() == '-') {
      ok = false;
      ++i_;
    }
    if (peek() == '0') {
      ++i_;
      integer = 0;
    } else if (peek() >= '1' && peek() <= '9') {
      std::uint64_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        const auto d = static_cast<std::uint64_t>(peek() - '0');
        if (v > (static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) - d) / 10) ok = false;
        v = v * 10 + d;
        ++i_;
      }
      integer = v;
    } else {
      bad("invalid number");
    }
    if (peek() == '.') {
      ok = false;
      ++i_;
      if (!(peek() >= '0' && peek() <= '9')) bad("invalid number");
      while (peek() >= '0' && peek() <= '9') ++i_;
    }
    if (peek() == 'e' || peek() == 'E') {
      ok = false;
      ++i_;
      if (peek() == '+' || peek() == '-') ++i_;
      if (!(peek() >= '0' && peek() <= '9')) bad("invalid number");
      while (peek() >= '0' && peek() <= '9') ++i_;
    }
    return ok;
  }

  void literal(const char* word) {
    const std::size_t len = std::strlen(word);
    if (n_ - i_ < len || std::memcmp(s_ + i_, word, len) != 0) bad("invalid literal");
    i_ += len;
  }

  // After a member or element: consumes ',' (false: more follow) or `close` (true: done).
  bool closed(char close) {
    ws();
    if (peek() == ',') {
      ++i_;
      return false;
    }
    if (peek() != close) bad(close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
    ++i_;
    return true;
  }

  // Skips any JSON value (unknown fields are ignored, as serde does).
  void skip_value(int depth) {
    if (depth > kMaxDepth) bad("nesting too deep");
    ws();
    const char c = peek();
    if (c == '"') {
      string();
    } else if (c == '{') {
      ++i_;
      std::set<std::string> seen;
      ws();
      if (peek() == '}') {
        ++i_;
        return;
      }
      for (;;) {
        ws();
        if (peek() != '"') bad("expected a string key");
        const std::string key = string();
        if (!seen.insert(key).second) cli::fail_input(file_, "duplicate key '{}' in header", printable(key));
        colon();
        skip_value(depth + 1);
        if (closed('}')) return;
      }
    } else if (c == '[') {
      ++i_;
      ws();
      if (peek() == ']') {
        ++i_;
        return;
      }
      for (;;) {
        skip_value(depth + 1);
        if (closed(']')) return;
      }
    } else if (c == 't') {
      literal("true");
    } else if (c == 'f') {
      literal("false");
    } else if (c == 'n') {
      literal("null");
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      std::uint64_t ignored;
      number(ignored);
    } else {
      bad("expected a value");
    }
  }

  void parse_metadata(std::map<std::string, std::string>& metadata) {
    if (peek() == 'n') {  // "__metadata__": null is None to serde
      literal("null");
      return;
    }
    if (peek() != '{') cli::fail_input(file_, "__metadata__ must be an object of strings");
    ++i_;
    ws();
    if (peek() == '}') {
      ++i_;
      return;
    }
    for (;;) {
      ws();
      if (peek() != '"') bad("expected a string key");
      std::string key = string();
      colon();
      if (peek() != '"') cli::fail_input(file_, "__metadata__ value for '{}' is not a string", printable(key));
      std::string value = string();
      if (metadata.count(key)) cli::fail_input(file_, "duplicate key '{}' in __metadata__", printable(key));
      metadata.emplace(std::move(key), std::move(value));
      if (closed('}')) return;
    }
  }

  // An array of non-negative integers; `what` names it in errors.
  std::vector<std::uint64_t> uint_array(const std::string& tensor, const char* what) {
    if (peek() != '[')
      cli::fail_input(file_, "tensor '{}': '{}' must be an array of non-negative integers", printable(tensor), what);
    ++i_;
    std::vector<std::uint64_t> v;
    ws();
    if (peek() == ']') {
      ++i_;
      return v;
    }
    for (;;) {
      ws();
      const char c = peek();
      if (!(c == '-' || (c >= '0' && c <= '9')))
        cli::fail_input(file_, "tensor '{}': '{}' must be an array of non-negative integers", printable(tensor), what);
      std::uint64_t x = 0;
      if (!number(x))
        cli::fail_input(file_, "tensor '{}': '{}' must be an array of non-negative integers below 2^63",
                        printable(tensor), what);
      if (v.size() >= 4096) cli::fail_input(file_, "tensor '{}': '{}' has too many entries", printable(tensor), what);
      v.push_back(x);
      if (closed(']')) return v;
    }
  }

  RawTensor parse_tensor(std::string name) {
    const std::string p = printable(name);
    if (peek() != '{') cli::fail_input(file_, "tensor '{}': expected an object with dtype, shape, data_offsets", p);
    ++i_;
    std::set<std::string> seen;
    RawTensor t{std::move(name), Dtype::F32, {}, 0, 0};
    bool have_dtype = false, have_shape = false, have_offsets = false;
    ws();
    if (peek() == '}') {
      ++i_;
    } else {
      for (;;) {
        ws();
        if (peek() != '"') bad("expected a string key");
        const std::string key = string();
        if (!seen.insert(key).second) cli::fail_input(file_, "tensor '{}': duplicate field '{}'", p, printable(key));
        colon();
        if (key == "dtype") {
          if (peek() != '"') cli::fail_input(file_, "tensor '{}': 'dtype' must be a string", p);
          const std::string d = string();
          const auto dt = parse_dtype_name(d);
          if (!dt) cli::fail_input(file_, "tensor '{}': unknown dtype '{}'", p, printable(d));
          t.dtype = *dt;
          have_dtype = true;
        } else if (key == "shape") {
          for (std::uint64_t d : uint_array(t.name, "shape")) t.shape.push_back(static_cast<std::int64_t>(d));
          have_shape = true;
        } else if (key == "data_offsets") {
          const auto o = uint_array(t.name, "data_offsets");
          if (o.size() != 2)
            cli::fail_input(file_, "tensor '{}': 'data_offsets' must hold 2 integers, not {}", p, o.size());
          t.begin = o[0];
          t.end = o[1];
          have_offsets = true;
        } else {
          skip_value(1);
        }
        if (closed('}')) break;
      }
    }
    if (!have_dtype) cli::fail_input(file_, "tensor '{}': missing field 'dtype'", p);
    if (!have_shape) cli::fail_input(file_, "tensor '{}': missing field 'shape'", p);
    if (!have_offsets) cli::fail_input(file_, "tensor '{}': missing field 'data_offsets'", p);
    return t;
  }

  const std::string& file_;
  const char* s_;
  std::size_t n_;
  std::size_t i_ = 0;
};

// numel * bits / 8 with overflow checks; false on overflow.
bool byte_size(Dtype t, const std::vector<std::int64_t>& shape, std::uint64_t& bytes, bool& whole) {
  std::uint64_t n = 1;
  for (std::int64_t d : shape) {
    const auto u = static_cast<std::uint64_t>(d);
    if (u != 0 && n > std::numeric_limits<std::uint64_t>::max() / u) return false;
    n *= u;
  }
  const std::uint64_t bits = dtype_bits(t);
  if (n > std::numeric_limits<std::uint64_t>::max() / bits) return false;
  whole = (n * bits) % 8 == 0;
  bytes = n * bits / 8;
  return true;
}

// serde_json's string escaping: '"', '\\' and control characters only.
void json_string(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void put_le64(std::string& out, std::uint64_t v) {
  for (int k = 0; k < 8; ++k) out += static_cast<char>((v >> (8 * k)) & 0xff);
}

}  // namespace

// ----------------------------------------------------------------------------- dtypes

const char* dtype_name(Dtype t) {
  for (const auto& r : kDtypes)
    if (r.t == t) return r.name;
  return "?";
}

std::optional<Dtype> parse_dtype_name(std::string_view s) {
  for (const auto& r : kDtypes)
    if (s == r.name) return r.t;
  return std::nullopt;
}

std::size_t dtype_bits(Dtype t) {
  for (const auto& r : kDtypes)
    if (r.t == t) return r.bits;
  return 8;
}

bool is_float_dtype(Dtype t) { return t == Dtype::F32 || t == Dtype::F16 || t == Dtype::BF16 || t == Dtype::F64; }

std::uint16_t float_to_bf16(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
  const std::uint32_t bias = ((u >> 16) & 1u) + 0x7fffu;
  return static_cast<std::uint16_t>((u + bias) >> 16);
}

float bf16_to_float(std::uint16_t b) {
  const std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

std::uint16_t float_to_f16(float f) { return h5::float_to_half(f); }
float f16_to_float(std::uint16_t h) { return h5::half_to_float(h); }

bool convert_to_float(Dtype t, const void* bytes, std::size_t count, float* out) {
  const auto* p = static_cast<const std::uint8_t*>(bytes);
  switch (t) {
    case Dtype::F32:
      if (count) std::memcpy(out, p, count * 4);
      return true;
    case Dtype::F64:
      for (std::size_t i = 0; i < count; ++i) {
        double d;
        std::memcpy(&d, p + 8 * i, 8);
        out[i] = static_cast<float>(d);
      }
      return true;
    case Dtype::F16:
      for (std::size_t i = 0; i < count; ++i)
        out[i] = h5::half_to_float(static_cast<std::uint16_t>(p[2 * i] | (p[2 * i + 1] << 8)));
      return true;
    case Dtype::BF16:
      for (std::size_t i = 0; i < count; ++i)
        out[i] = bf16_to_float(static_cast<std::uint16_t>(p[2 * i] | (p[2 * i + 1] << 8)));
      return true;
    default:
      return false;
  }
}

bool convert_from_float(Dtype t, const float* values, std::size_t count, std::string& out) {
  switch (t) {
    case Dtype::F32:
      out.append(reinterpret_cast<const char*>(values), count * 4);
      return true;
    case Dtype::F64:
      for (std::size_t i = 0; i < count; ++i) {
        const double d = values[i];
        out.append(reinterpret_cast<const char*>(&d), 8);
      }
      return true;
    case Dtype::F16:
    case Dtype::BF16:
      for (std::size_t i = 0; i < count; ++i) {
        const std::uint16_t h = t == Dtype::F16 ? h5::float_to_half(values[i]) : float_to_bf16(values[i]);
        out += static_cast<char>(h & 0xff);
        out += static_cast<char>(h >> 8);
      }
      return true;
    default:
      return false;
  }
}

std::int64_t TensorInfo::numel() const {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

// ----------------------------------------------------------------------------- reader

SafeTensors::SafeTensors(const std::string& path) : path_(path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) cli::fail_input(path, "is a directory, expected a .safetensors file");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    if (e == ENOENT) cli::fail_input(path, "no such file");
    cli::fail_input(path, "cannot open: {}", std::strerror(e));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    cli::fail_input(path, "not a regular file");
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size >= 8) {
    void* m = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      cli::fail_input(path, "cannot map: {}", std::strerror(e));
    }
    map_ = m;
    map_size_ = size;
  }
  ::close(fd);
  try {
    parse(static_cast<const std::uint8_t*>(map_), size);
  } catch (...) {
    if (map_) ::munmap(map_, map_size_);
    map_ = nullptr;
    throw;
  }
}

SafeTensors SafeTensors::from_bytes(std::string bytes, const std::string& label) {
  SafeTensors st;
  st.path_ = label;
  st.owned_ = std::make_unique<std::string>(std::move(bytes));
  st.parse(reinterpret_cast<const std::uint8_t*>(st.owned_->data()), st.owned_->size());
  return st;
}

SafeTensors::~SafeTensors() {
  if (map_) ::munmap(map_, map_size_);
}

SafeTensors::SafeTensors(SafeTensors&& o) noexcept { *this = std::move(o); }

SafeTensors& SafeTensors::operator=(SafeTensors&& o) noexcept {
  if (this != &o) {
    if (map_) ::munmap(map_, map_size_);
    path_ = std::move(o.path_);
    map_ = std::exchange(o.map_, nullptr);
    map_size_ = std::exchange(o.map_size_, 0);
    owned_ = std::move(o.owned_);
    header_len_ = o.header_len_;
    names_ = std::move(o.names_);
    tensors_ = std::move(o.tensors_);
    metadata_ = std::move(o.metadata_);
  }
  return *this;
}

void SafeTensors::parse(const std::uint8_t* p, std::size_t size) {
  if (size < 8) cli::fail_input(path_, "not a safetensors file: {} bytes, shorter than the 8-byte header length", size);
  std::uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | p[k];
  if (n > size - 8) cli::fail_input(path_, "header length {} exceeds file size {}", n, size);
  if (n > kMaxHeader) cli::fail_input(path_, "header length {} exceeds the limit of {} bytes", n, kMaxHeader);
  const std::uint8_t* h = p + 8;
  const std::size_t bad = utf8_error(h, n);
  if (bad != std::string::npos) cli::fail_input(path_, "header is not valid UTF-8 (byte {})", bad);

  std::vector<RawTensor> raw;
  HeaderParser(path_, reinterpret_cast<const char*>(h), n).parse(raw, metadata_);

  // Validate as the crate does: sorted by offsets, contiguous from 0, sizes
  // matching the shapes, the data buffer covered exactly.
  std::sort(raw.begin(), raw.end(), [](const RawTensor& a, const RawTensor& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  const std::uint64_t data_size = size - 8 - n;
  const std::uint8_t* data = h + n;
  std::uint64_t start = 0;
  for (RawTensor& t : raw) {
    const std::string pn = printable(t.name);
    if (t.end < t.begin) cli::fail_input(path_, "tensor '{}': data offsets [{}, {}] are reversed", pn, t.begin, t.end);
    if (t.begin < start)
      cli::fail_input(path_, "tensor '{}': data offsets [{}, {}] overlap the previous tensor, which ends at {}", pn,
                      t.begin, t.end, start);
    if (t.begin > start)
      cli::fail_input(path_, "tensor '{}': data offsets [{}, {}] leave a hole after byte {}", pn, t.begin, t.end,
                      start);
    std::uint64_t bytes = 0;
    bool whole = true;
    if (!byte_size(t.dtype, t.shape, bytes, whole))
      cli::fail_input(path_, "tensor '{}': shape {} overflows", pn, shape_str(t.shape));
    if (!whole)
      cli::fail_input(path_, "tensor '{}': shape {} of {} is not a whole number of bytes", pn, shape_str(t.shape),
                      dtype_name(t.dtype));
    if (t.end - t.begin != bytes)
      cli::fail_input(path_, "tensor '{}': shape {} of {} needs {} bytes, data offsets [{}, {}] hold {}", pn,
                      shape_str(t.shape), dtype_name(t.dtype), bytes, t.begin, t.end, t.end - t.begin);
    if (t.end > data_size)
      cli::fail_input(path_,
                      "tensor '{}': data offsets [{}, {}] run past the end of the data ({} bytes; truncated file?)", pn,
                      t.begin, t.end, data_size);
    start = t.end;
  }
  if (start != data_size)
    cli::fail_input(path_, "{} bytes of data after the last tensor (the data must be covered exactly)",
                    data_size - start);

  header_len_ = n;
  for (RawTensor& t : raw) {
    TensorInfo info;
    info.dtype = t.dtype;
    info.shape = std::move(t.shape);
    info.begin = t.begin;
    info.end = t.end;
    info.bytes = data + t.begin;
    names_.push_back(t.name);
    tensors_.emplace(std::move(t.name), std::move(info));
  }
  std::sort(names_.begin(), names_.end());
}

bool SafeTensors::contains(const std::string& name) const { return tensors_.count(name) != 0; }

const TensorInfo& SafeTensors::info(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) cli::fail_input(path_, "no tensor named '{}'", printable(name));
  return it->second;
}

std::vector<float> SafeTensors::to_float(const std::string& name) const {
  const TensorInfo& t = info(name);
  if (!is_float_dtype(t.dtype))
    cli::fail_input(path_, "tensor '{}' has dtype {}, expected F32, F16, BF16 or F64", printable(name),
                    dtype_name(t.dtype));
  std::vector<float> out(static_cast<std::size_t>(t.numel()));
  convert_to_float(t.dtype, t.bytes, out.size(), out.data());
  return out;
}

// ----------------------------------------------------------------------------- sharded sets

SafeTensorsSet::SafeTensorsSet(const std::string& path) : path_(path) {
  std::error_code ec;
  std::string index;
  if (fs::is_directory(path, ec)) {
    const fs::path single = fs::path(path) / "model.safetensors";
    const fs::path idx = fs::path(path) / "model.safetensors.index.json";
    if (fs::exists(single, ec)) {
      shards_.push_back(std::make_unique<SafeTensors>(single.string()));
    } else if (fs::exists(idx, ec)) {
      index = idx.string();
    } else {
      cli::fail_input(path, "no model.safetensors or model.safetensors.index.json in this directory");
    }
  } else if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0) {
    index = path;
  } else {
    shards_.push_back(std::make_unique<SafeTensors>(path));
  }

  if (index.empty()) {
    const SafeTensors& st = *shards_[0];
    names_ = st.names();
    for (const auto& n : names_) where_.emplace(n, 0);
    metadata_ = st.metadata();
    return;
  }

  const nlohmann::json j = nlohmann::json::parse(read_file(index), nullptr, false);
  if (j.is_discarded()) cli::fail_input(index, "malformed JSON");
  if (!j.is_object()) cli::fail_input(index, "expected a JSON object with 'weight_map'");
  auto wm = j.find("weight_map");
  if (wm == j.end() || !wm->is_object()) cli::fail_input(index, "missing 'weight_map' object");
  auto md = j.find("metadata");
  if (md != j.end() && !md->is_null()) {
    if (!md->is_object()) cli::fail_input(index, "'metadata' must be an object");
    for (auto it = md->begin(); it != md->end(); ++it)
      metadata_[it.key()] = it->is_string() ? it->get<std::string>() : it->dump();
  }
  const fs::path dir = fs::path(index).parent_path();
  std::map<std::string, std::size_t> shard_index;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it->is_string()) cli::fail_input(index, "weight_map entry for '{}' is not a file name", printable(it.key()));
    const std::string file = it->get<std::string>();
    const fs::path rel(file);
    bool escapes = file.empty() || rel.is_absolute();
    for (const auto& part : rel)
      if (part == "..") escapes = true;
    if (escapes) cli::fail_input(index, "shard '{}' is not a file inside the checkpoint directory", printable(file));
    auto s = shard_index.find(file);
    if (s == shard_index.end()) {
      const fs::path full = dir / rel;
      if (!fs::exists(full, ec))
        cli::fail_input(index, "shard '{}' listed in weight_map does not exist", printable(file));
      shards_.push_back(std::make_unique<SafeTensors>(full.string()));
      s = shard_index.emplace(file, shards_.size() - 1).first;
    }
    if (!shards_[s->second]->contains(it.key()))
      cli::fail_input(index, "tensor '{}' is mapped to shard '{}', which does not contain it", printable(it.key()),
                      printable(file));
    where_.emplace(it.key(), s->second);
    names_.push_back(it.key());
  }
  std::sort(names_.begin(), names_.end());
}

const SafeTensors& SafeTensorsSet::shard_of(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) cli::fail_input(path_, "no tensor named '{}'", printable(name));
  return *shards_[it->second];
}

// ----------------------------------------------------------------------------- writer

SafeTensorsWriter::Entry& SafeTensorsWriter::prepare(const std::string& name, Dtype dtype,
                                                     const std::vector<std::int64_t>& shape) {
  const std::string p = printable(name);
  if (name == "__metadata__") cli::fail(cli::Exit::runtime, {}, "safetensors: '__metadata__' is not a tensor name");
  if (utf8_error(reinterpret_cast<const std::uint8_t*>(name.data()), name.size()) != std::string::npos)
    cli::fail(cli::Exit::runtime, {}, "safetensors: tensor name '{}' is not valid UTF-8", p);
  if (index_.count(name)) cli::fail(cli::Exit::runtime, {}, "safetensors: duplicate tensor name '{}'", p);
  for (std::int64_t d : shape)
    if (d < 0)
      cli::fail(cli::Exit::runtime, {}, "safetensors: tensor '{}' has a negative dimension in {}", p, shape_str(shape));
  std::uint64_t bytes = 0;
  bool whole = true;
  if (!byte_size(dtype, shape, bytes, whole) || bytes > std::numeric_limits<std::size_t>::max() / 2)
    cli::fail(cli::Exit::runtime, {}, "safetensors: tensor '{}' shape {} is too large", p, shape_str(shape));
  if (!whole)
    cli::fail(cli::Exit::runtime, {}, "safetensors: tensor '{}' shape {} of {} is not a whole number of bytes", p,
              shape_str(shape), dtype_name(dtype));
  index_.emplace(name, tensors_.size());
  tensors_.push_back(Entry{name, dtype, shape, static_cast<std::size_t>(bytes), nullptr, nullptr});
  return tensors_.back();
}

void SafeTensorsWriter::add(const std::string& name, Dtype dtype, const std::vector<std::int64_t>& shape,
                            const void* bytes) {
  Entry& e = prepare(name, dtype, shape);
  e.owned = std::make_shared<std::string>(static_cast<const char*>(bytes), e.nbytes);
  e.bytes = e.owned->data();
}

void SafeTensorsWriter::add_borrowed(const std::string& name, Dtype dtype, const std::vector<std::int64_t>& shape,
                                     const void* bytes) {
  prepare(name, dtype, shape).bytes = bytes;
}

void SafeTensorsWriter::add_float(const std::string& name, Dtype dtype, const std::vector<std::int64_t>& shape,
                                  const float* values) {
  if (!is_float_dtype(dtype))
    cli::fail(cli::Exit::runtime, {}, "safetensors: tensor '{}': cannot convert floats to {}", printable(name),
              dtype_name(dtype));
  Entry& e = prepare(name, dtype, shape);
  e.owned = std::make_shared<std::string>();
  e.owned->reserve(e.nbytes);
  convert_from_float(dtype, values, e.nbytes / (dtype_bits(dtype) / 8), *e.owned);
  e.bytes = e.owned->data();
}

void SafeTensorsWriter::set_metadata(const std::string& key, const std::string& value) {
  for (const std::string* s : {&key, &value})
    if (utf8_error(reinterpret_cast<const std::uint8_t*>(s->data()), s->size()) != std::string::npos)
      cli::fail(cli::Exit::runtime, {}, "safetensors: metadata '{}' is not valid UTF-8", printable(key));
  metadata_[key] = value;
}

std::vector<const SafeTensorsWriter::Entry*> SafeTensorsWriter::ordered() const {
  std::vector<const Entry*> v;
  for (const Entry& e : tensors_) v.push_back(&e);
  // As the crate's prepare(): descending dtype (alignment), then name.
  std::sort(v.begin(), v.end(), [](const Entry* a, const Entry* b) {
    if (a->dtype != b->dtype) return a->dtype > b->dtype;
    return a->name < b->name;
  });
  return v;
}

std::string SafeTensorsWriter::header() const {
  std::string h = "{";
  bool first = true;
  if (!metadata_.empty()) {
    h += "\"__metadata__\":{";
    for (const auto& [k, v] : metadata_) {
      if (!first) h += ',';
      first = false;
      json_string(h, k);
      h += ':';
      json_string(h, v);
    }
    h += '}';
    first = false;
  }
  std::uint64_t offset = 0;
  for (const Entry* e : ordered()) {
    if (!first) h += ',';
    first = false;
    json_string(h, e->name);
    h += ":{\"dtype\":\"";
    h += dtype_name(e->dtype);
    h += "\",\"shape\":[";
    for (std::size_t i = 0; i < e->shape.size(); ++i) {
      if (i) h += ',';
      h += std::to_string(e->shape[i]);
    }
    h += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + e->nbytes) + "]}";
    offset += e->nbytes;
  }
  h += '}';
  h.resize((h.size() + 7) / 8 * 8, ' ');
  if (h.size() > kMaxHeader)
    cli::fail(cli::Exit::runtime, {}, "safetensors: header of {} bytes exceeds the limit of {} bytes", h.size(),
              kMaxHeader);
  return h;
}

std::string SafeTensorsWriter::serialize() const {
  const std::string h = header();
  std::string out;
  put_le64(out, h.size());
  out += h;
  for (const Entry* e : ordered()) out.append(static_cast<const char*>(e->bytes), e->nbytes);
  return out;
}

void SafeTensorsWriter::write(const std::string& path) const {
  const std::string h = header();
  AtomicFile f(path, /*binary=*/true);
  std::string prefix;
  put_le64(prefix, h.size());
  f.stream().write(prefix.data(), 8);
  f.stream().write(h.data(), static_cast<std::streamsize>(h.size()));
  const auto entries = ordered();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (i == entries.size() / 2 && !entries.empty()) {
      f.stream().flush();
      failpoint("safetensors-mid-write");
    }
    const Entry* e = entries[i];
    if (e->nbytes) f.stream().write(static_cast<const char*>(e->bytes), static_cast<std::streamsize>(e->nbytes));
  }
  f.commit();
}

}  // namespace hse::io
