#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "hse/cli/cli.h"
#include "hse/io/atomic.h"
#include "hse/io/safetensors.h"

using namespace hse;
using io::Dtype;
namespace fs = std::filesystem;

namespace {
std::string tmpdir() {
  auto d = fs::temp_directory_path() / ("hse_st_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d.string();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string le64(std::uint64_t v) {
  std::string s;
  for (int k = 0; k < 8; ++k) s += static_cast<char>((v >> (8 * k)) & 0xff);
  return s;
}

// A file image from a header text and a data buffer.
std::string image(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

// The error message (without the file) that loading `bytes` throws, or "" when it loads.
std::string load_error(const std::string& bytes, const std::string& label = "m.safetensors") {
  try {
    io::SafeTensors::from_bytes(bytes, label);
  } catch (const cli::Error& e) {
    CHECK(e.code() == cli::Exit::incompatible);
    CHECK(e.file() == label);
    return e.what();
  }
  return "";
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const cli::Error& e) {
    return e.line();
  }
  return "";
}

std::string hexdecode(const std::string& h) {
  std::string out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}

std::string hexencode(const void* p, std::size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  const auto* b = static_cast<const std::uint8_t*>(p);
  for (std::size_t i = 0; i < n; ++i) {
    s += d[b[i] >> 4];
    s += d[b[i] & 15];
  }
  return s;
}

std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float float_of(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

const std::string kTensor = R"("dtype":"F32","shape":[2],"data_offsets":[0,8])";
const std::string kEight(8, '\0');
}  // namespace

TEST_CASE("safetensors: dtype names and sizes") {
  for (const char* n : {"BOOL",    "F4",          "F6_E2M3",     "F6_E3M2", "U8",  "I8",  "F8_E5M2", "F8_E4M3",
                        "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16",     "U16", "F16", "BF16",    "I32",
                        "U32",     "F32",         "C64",         "F64",     "I64", "U64"}) {
    auto t = io::parse_dtype_name(n);
    REQUIRE(t);
    CHECK(std::string(io::dtype_name(*t)) == n);
  }
  CHECK(!io::parse_dtype_name("f32"));
  CHECK(!io::parse_dtype_name("F128"));
  CHECK(io::dtype_bits(Dtype::F4) == 4);
  CHECK(io::dtype_bits(Dtype::BF16) == 16);
  CHECK(io::dtype_bits(Dtype::C64) == 64);
  CHECK(io::is_float_dtype(Dtype::BF16));
  CHECK(!io::is_float_dtype(Dtype::I64));
}

TEST_CASE("safetensors: bf16 and f16 conversions") {
  CHECK(io::float_to_bf16(1.0f) == 0x3f80);
  CHECK(io::float_to_bf16(-2.0f) == 0xc000);
  CHECK(io::float_to_bf16(float_of(0x3f808000u)) == 0x3f80);  // tie, to even (down)
  CHECK(io::float_to_bf16(float_of(0x3f818000u)) == 0x3f82);  // tie, to even (up)
  CHECK(io::float_to_bf16(float_of(0x3f808001u)) == 0x3f81);  // above the tie
  CHECK(io::float_to_bf16(INFINITY) == 0x7f80);
  CHECK(io::float_to_bf16(-INFINITY) == 0xff80);
  CHECK(io::float_to_bf16(float_of(0x7f7fffffu)) == 0x7f80);  // FLT_MAX rounds to inf
  CHECK(io::float_to_bf16(NAN) == 0x7fc0);
  CHECK(io::float_to_bf16(float_of(0xffc00001u)) == 0x7fc0);
  CHECK(io::float_to_bf16(float_of(0x00000001u)) == 0x0000);  // smallest subnormal
  CHECK(bits_of(io::bf16_to_float(0x3f80)) == 0x3f800000u);
  CHECK(bits_of(io::bf16_to_float(0x8001)) == 0x80010000u);
  for (std::uint32_t b = 0; b < 0x10000; ++b) {  // every finite bf16 survives the round trip
    const float f = io::bf16_to_float(static_cast<std::uint16_t>(b));
    if (!std::isnan(f)) REQUIRE(io::float_to_bf16(f) == b);
  }
  CHECK(io::float_to_f16(1.0f) == 0x3c00);
  CHECK(io::f16_to_float(0x3c00) == 1.0f);
  CHECK(io::f16_to_float(0x0001) == std::ldexp(1.0f, -24));
  CHECK(io::float_to_f16(65520.0f) == 0x7c00);

  std::string bytes;
  const float v[3] = {1.0f, -0.5f, 3.0f};
  REQUIRE(io::convert_from_float(Dtype::BF16, v, 3, bytes));
  CHECK(hexencode(bytes.data(), bytes.size()) == "803f00bf4040");
  float back[3];
  REQUIRE(io::convert_to_float(Dtype::BF16, bytes.data(), 3, back));
  CHECK(back[1] == -0.5f);
  CHECK(!io::convert_to_float(Dtype::I32, bytes.data(), 1, back));
  CHECK(!io::convert_from_float(Dtype::U8, v, 1, bytes));
}

TEST_CASE("safetensors: layout matches safetensors.numpy.save byte for byte") {
  // safetensors.numpy.save({'b': uint8 [1,2], 'a': float32 [1.5], 'c': float64 zeros (0,3),
  //   'z': int64 -3 (0-d), 'é"\n\x01': float16 [1.0], 'bb': bool [True, False]}, metadata={'format': 'np'})
  const std::string expected = hexdecode(
      "78010000000000007b225f5f6d657461646174615f5f223a7b22666f726d6174223a226e70227d2c227a223a7b226474797065223a2249"
      "3634222c227368617065223a5b5d2c22646174615f6f666673657473223a5b302c385d7d2c2263223a7b226474797065223a2246363422"
      "2c227368617065223a5b302c335d2c22646174615f6f666673657473223a5b382c385d7d2c2261223a7b226474797065223a2246333222"
      "2c227368617065223a5b315d2c22646174615f6f666673657473223a5b382c31325d7d2c22c3a95c225c6e5c7530303031223a7b226474"
      "797065223a22463136222c227368617065223a5b315d2c22646174615f6f666673657473223a5b31322c31345d7d2c2262223a7b226474"
      "797065223a225538222c227368617065223a5b325d2c22646174615f6f666673657473223a5b31342c31365d7d2c226262223a7b226474"
      "797065223a22424f4f4c222c227368617065223a5b325d2c22646174615f6f666673657473223a5b31362c31385d7d7d202020202020fd"
      "ffffffffffffff0000c03f003c01020100");
  io::SafeTensorsWriter w;
  const std::uint8_t b[2] = {1, 2}, bb[2] = {1, 0};
  const float a = 1.5f;
  const std::int64_t z = -3;
  const std::uint16_t h = 0x3c00;
  w.add("b", Dtype::U8, {2}, b);
  w.add("a", Dtype::F32, {1}, &a);
  w.add("c", Dtype::F64, {0, 3}, nullptr);
  w.add("z", Dtype::I64, {}, &z);
  w.add("\xc3\xa9\"\n\x01", Dtype::F16, {1}, &h);
  w.add("bb", Dtype::BOOL, {2}, bb);
  w.set_metadata("format", "np");
  CHECK(w.size() == 6);
  const std::string got = w.serialize();
  CHECK(hexencode(got.data(), got.size()) == hexencode(expected.data(), expected.size()));
  // safetensors.numpy.save({}) == b'\x08\0..\0{}      '
  CHECK(io::SafeTensorsWriter().serialize() == le64(8) + "{}      ");
}

TEST_CASE("safetensors: round trip through a file") {
  const std::string dir = tmpdir();
  const std::string path = dir + "/rt.safetensors";
  io::SafeTensorsWriter w;
  std::vector<float> f32{1.0f, -2.5f, 3.25f, 1e-30f, -0.0f, INFINITY};
  std::vector<double> f64{1.0 / 3.0, -1e300, 2.0};
  std::vector<std::int64_t> i64{-1, 0, 1LL << 62};
  std::vector<std::int32_t> i32{7, -7};
  std::vector<std::uint8_t> u8{0, 128, 255};
  std::vector<float> half_src{0.5f, -65504.0f, 6e-8f, 1.0f / 3.0f};
  w.add("enc.weight", Dtype::F32, {2, 3}, f32.data());
  w.add("enc.f64", Dtype::F64, {3}, f64.data());
  w.add("ids", Dtype::I64, {3, 1}, i64.data());
  w.add_borrowed("i32", Dtype::I32, {2}, i32.data());
  w.add("mask", Dtype::U8, {3}, u8.data());
  w.add_float("half", Dtype::F16, {2, 2}, half_src.data());
  w.add_float("brain", Dtype::BF16, {4}, half_src.data());
  w.add("scalar", Dtype::F32, {}, &f32[1]);
  w.add("empty", Dtype::F32, {0, 4}, nullptr);
  w.add("größe/日本", Dtype::F32, {1}, &f32[2]);
  w.set_metadata("format", "pt");
  w.set_metadata("note", "ünïcode \"quoted\"\n");
  w.write(path);
  CHECK(fs::exists(path));
  for (const auto& e : fs::directory_iterator(dir))
    CHECK(e.path().filename().string().find(".tmp") == std::string::npos);

  io::SafeTensors st(path);
  CHECK(st.path() == path);
  CHECK(st.header_length() % 8 == 0);
  CHECK(st.names() == std::vector<std::string>{"brain", "empty", "enc.f64", "enc.weight", "größe/日本", "half", "i32",
                                               "ids", "mask", "scalar"});
  CHECK(st.metadata() == std::map<std::string, std::string>{{"format", "pt"}, {"note", "ünïcode \"quoted\"\n"}});
  const io::TensorInfo& wi = st.info("enc.weight");
  CHECK(wi.dtype == Dtype::F32);
  CHECK(wi.shape == std::vector<std::int64_t>{2, 3});
  CHECK(wi.nbytes() == 24);
  CHECK(wi.numel() == 6);
  CHECK(std::memcmp(st.data("enc.weight"), f32.data(), 24) == 0);
  const auto wv = st.to_float("enc.weight");
  for (std::size_t i = 0; i < 6; ++i) CHECK(bits_of(wv[i]) == bits_of(f32[i]));
  const auto dv = st.to_float("enc.f64");
  CHECK(dv[0] == static_cast<float>(1.0 / 3.0));
  CHECK(std::isinf(dv[1]));
  CHECK(std::memcmp(st.data("ids"), i64.data(), 24) == 0);
  CHECK(std::memcmp(st.data("i32"), i32.data(), 8) == 0);
  CHECK(std::memcmp(st.data("mask"), u8.data(), 3) == 0);
  const auto hv = st.to_float("half");
  for (std::size_t i = 0; i < 4; ++i) CHECK(hv[i] == io::f16_to_float(io::float_to_f16(half_src[i])));
  const auto bv = st.to_float("brain");
  for (std::size_t i = 0; i < 4; ++i) CHECK(bv[i] == io::bf16_to_float(io::float_to_bf16(half_src[i])));
  CHECK(st.info("scalar").shape.empty());
  CHECK(st.to_float("scalar") == std::vector<float>{-2.5f});
  CHECK(st.info("empty").nbytes() == 0);
  CHECK(st.to_float("empty").empty());
  CHECK(st.to_float("größe/日本") == std::vector<float>{3.25f});
  CHECK(error_of([&] { st.info("nope"); }) == path + ": no tensor named 'nope'");
  CHECK(error_of([&] { st.to_float("ids"); }) == path + ": tensor 'ids' has dtype I64, expected F32, F16, BF16 or F64");

  // Moving keeps the mapping valid.
  io::SafeTensors moved = std::move(st);
  CHECK(moved.to_float("scalar") == std::vector<float>{-2.5f});

  // The set view of a single file.
  io::SafeTensorsSet set(path);
  CHECK(set.shard_count() == 1);
  CHECK(set.names() == moved.names());
  CHECK(set.metadata().at("format") == "pt");
  CHECK(set.to_float("half") == hv);
  fs::remove_all(dir);
}

TEST_CASE("safetensors: writer rejects bad tensors") {
  io::SafeTensorsWriter w;
  const float x[2] = {1, 2};
  w.add("a", Dtype::F32, {2}, x);
  CHECK(error_of([&] { w.add("a", Dtype::F32, {2}, x); }) == "safetensors: duplicate tensor name 'a'");
  CHECK(error_of([&] { w.add("__metadata__", Dtype::F32, {2}, x); }) ==
        "safetensors: '__metadata__' is not a tensor name");
  CHECK(error_of([&] {
          w.add("n", Dtype::F32, {2, -1}, x);
        }) == "safetensors: tensor 'n' has a negative dimension in [2, -1]");
  CHECK(error_of([&] { w.add("f4", Dtype::F4, {3}, x); }) ==
        "safetensors: tensor 'f4' shape [3] of F4 is not a whole number of bytes");
  CHECK(error_of([&] { w.add("\xff", Dtype::F32, {1}, x); }) == "safetensors: tensor name '\xff' is not valid UTF-8");
  CHECK(error_of([&] { w.add_float("i", Dtype::I32, {1}, x); }) ==
        "safetensors: tensor 'i': cannot convert floats to I32");
  w.add("f4ok", Dtype::F4, {4}, x);  // two nibbles a byte
  CHECK(w.size() == 2);
  const auto st = io::SafeTensors::from_bytes(w.serialize(), "mem");
  CHECK(st.info("f4ok").nbytes() == 2);
  // The output directory must exist.
  CHECK(error_of([&] { w.write("/nonexistent-dir/x.safetensors"); }).find("cannot write output") != std::string::npos);
}

TEST_CASE("safetensors: validation errors") {
  const std::string one = "{\"a\":{" + kTensor + "}}";
  CHECK(load_error(image(one, kEight)) == "");
  CHECK(load_error(image(one + "   ", kEight)) == "");      // padded with spaces
  CHECK(load_error(image(one + "\n\t \r", kEight)) == "");  // any JSON whitespace
  CHECK(load_error(image("{}", "")) == "");                 // no tensors at all
  CHECK(load_error(image("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8],\"dtype\":\"F32\",\"extra\":[1,{\"x\":null}]}}",
                         kEight)) == "");  // fields in any order, unknown fields ignored
  CHECK(load_error(image("{\"__metadata__\":null,\"a\":{" + kTensor + "}}", kEight)) == "");

  // Sizes.
  CHECK(load_error("") == "not a safetensors file: 0 bytes, shorter than the 8-byte header length");
  CHECK(load_error("1234567") == "not a safetensors file: 7 bytes, shorter than the 8-byte header length");
  CHECK(load_error(le64(100) + "{}") == "header length 100 exceeds file size 10");
  CHECK(load_error(le64(~0ULL) + "{}") == "header length 18446744073709551615 exceeds file size 10");
  {
    std::string big = le64(100000001) + "{}";
    big.resize(100000009 + 8, ' ');
    CHECK(load_error(big) == "header length 100000001 exceeds the limit of 100000000 bytes");
  }
  // Header text.
  CHECK(load_error(image("", "")) == "header does not start with '{'");
  CHECK(load_error(image(" {}", "")) == "header does not start with '{'");
  CHECK(load_error(image("{\"a\xff\":1}", "")) == "header is not valid UTF-8 (byte 3)");
  CHECK(load_error(image("{\"\xed\xa0\x80\":1}", "")) == "header is not valid UTF-8 (byte 2)");  // UTF-8 surrogate
  CHECK(load_error(image("{\"\xc0\xaf\":1}", "")) == "header is not valid UTF-8 (byte 2)");      // overlong
  CHECK(load_error(image("{\"a\":{" + kTensor + "}", kEight)) ==
        "malformed header JSON at byte 53: expected ',' or '}'");
  CHECK(load_error(image("{\"a\":{" + kTensor + "},}", kEight)) ==
        "malformed header JSON at byte 54: expected a string key");
  CHECK(load_error(image(one + "x", kEight)) ==
        "malformed header JSON at byte 54: trailing characters after the header object");
  CHECK(load_error(image(one + std::string(1, '\0'), kEight)) ==
        "malformed header JSON at byte 54: trailing characters after the header object");
  CHECK(load_error(image("{a:1}", "")) == "malformed header JSON at byte 1: expected a string key");
  CHECK(load_error(image("{\"a\"1}", "")) == "malformed header JSON at byte 4: expected ':'");
  CHECK(load_error(image("{\"a\":{\"x\":tru}}", "")) == "malformed header JSON at byte 10: invalid literal");
  CHECK(load_error(image("{\"a\":{\"x\":01}}", "")) == "malformed header JSON at byte 11: expected ',' or '}'");
  CHECK(load_error(image("{\"a\":{\"x\":1.}}", "")) == "malformed header JSON at byte 12: invalid number");
  CHECK(load_error(image("{\"a\":{\"x\":\"\\q\"}}", "")) == "malformed header JSON at byte 12: invalid escape");
  CHECK(load_error(image("{\"a\":{\"x\":\"\\ud800\"}}", "")) ==
        "malformed header JSON at byte 17: lone leading surrogate in \\u escape");
  CHECK(load_error(image("{\"a\":{\"x\":\"\\udc00\"}}", "")) ==
        "malformed header JSON at byte 17: lone trailing surrogate in \\u escape");
  CHECK(load_error(image("{\"a\":{\"x\":\"\t\"}}", "")) ==
        "malformed header JSON at byte 11: control character in string");
  CHECK(load_error(image("{\"a", "")) == "malformed header JSON at byte 3: unterminated string");
  CHECK(load_error(image("{\"a\":{\"x\":" + std::string(200, '[') + std::string(200, ']') + "}}", "")) ==
        "malformed header JSON at byte 138: nesting too deep");
  // Keys.
  CHECK(load_error(image("{\"a\":{" + kTensor + "},\"a\":{" + kTensor + "}}", kEight)) ==
        "duplicate key 'a' in header");
  CHECK(load_error(image("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\"}}", "")) ==
        "tensor 'a': duplicate field 'dtype'");
  CHECK(load_error(image("{\"a\":{\"x\":{\"k\":1,\"k\":2}," + kTensor + "}}", kEight)) ==
        "duplicate key 'k' in header");
  CHECK(load_error(image("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", "")) == "duplicate key 'k' in __metadata__");
  CHECK(load_error(image("{\"__metadata__\":[]}", "")) == "__metadata__ must be an object of strings");
  CHECK(load_error(image("{\"__metadata__\":{\"total\":12}}", "")) == "__metadata__ value for 'total' is not a string");
  // Fields.
  CHECK(load_error(image("{\"a\":[]}", "")) == "tensor 'a': expected an object with dtype, shape, data_offsets");
  CHECK(load_error(image("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", kEight)) ==
        "tensor 'a': missing field 'dtype'");
  CHECK(load_error(image("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", kEight)) ==
        "tensor 'a': missing field 'shape'");
  CHECK(load_error(image("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", kEight)) ==
        "tensor 'a': missing field 'data_offsets'");
  CHECK(load_error(image("{\"a\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}}", kEight)) ==
        "tensor 'a': 'dtype' must be a string");
  CHECK(load_error(image("{\"a\":{\"dtype\":\"F128\",\"shape\":[2],\"data_offsets\":[0,8]}}", kEight)) ==
        "tensor 'a': unknown dtype 'F128'");
  CHECK(load_error(image("{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", kEight)) ==
        "tensor 'a': 'shape' must be an array of non-negative integers");
  CHECK(load_error(image("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", kEight)) ==
        "tensor 'a': 'shape' must be an array of non-negative integers");
  CHECK(load_error(image("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", kEight)) ==
        "tensor 'a': 'shape' must be an array of non-negative integers below 2^63");
  CHECK(load_error(image("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", kEight)) ==
        "tensor 'a': 'shape' must be an array of non-negative integers below 2^63");
  CHECK(load_error(image("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99999999999999999999]}}",
                         kEight)) == "tensor 'a': 'data_offsets' must be an array of non-negative integers below 2^63");
  CHECK(load_error(image("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", kEight)) ==
        "tensor 'a': 'data_offsets' must hold 2 integers, not 3");
  CHECK(load_error(image("{\"a\\n\":{\"dtype\":\"F32\",\"shape\":[2]}}", kEight)) ==
        "tensor 'a\\x0a': missing field 'data_offsets'");  // names stay on one line
  // Offsets.
  const auto two = [](const std::string& a, const std::string& b) {
    return "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":" + a +
           "},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":" + b + "}}";
  };
  CHECK(load_error(image(two("[0,8]", "[8,16]"), kEight + kEight)) == "");
  CHECK(load_error(image(two("[8,16]", "[0,8]"), kEight + kEight)) == "");  // any order in the header
  CHECK(load_error(image(two("[0,8]", "[4,12]"), kEight + kEight)) ==
        "tensor 'b': data offsets [4, 12] overlap the previous tensor, which ends at 8");
  CHECK(load_error(image(two("[0,8]", "[0,8]"), kEight)) ==
        "tensor 'b': data offsets [0, 8] overlap the previous tensor, which ends at 8");
  CHECK(load_error(image(two("[0,8]", "[12,20]"), kEight + kEight + "1234")) ==
        "tensor 'b': data offsets [12, 20] leave a hole after byte 8");
  CHECK(load_error(image(two("[4,12]", "[12,20]"), kEight + kEight + "1234")) ==
        "tensor 'a': data offsets [4, 12] leave a hole after byte 0");
  CHECK(load_error(image("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", kEight)) ==
        "tensor 'a': data offsets [8, 0] are reversed");
  CHECK(load_error(image("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", kEight)) ==
        "tensor 'a': shape [3] of F32 needs 12 bytes, data offsets [0, 8] hold 8");
  CHECK(load_error(image("{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", "12")) ==
        "tensor 'a': shape [3] of F4 is not a whole number of bytes");
  CHECK(load_error(image("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,8],\"data_offsets\":[0,8]}}",
                         kEight)) == "tensor 'a': shape [4611686018427387904, 8] overflows");
  CHECK(load_error(image(one, "1234")) ==
        "tensor 'a': data offsets [0, 8] run past the end of the data (4 bytes; truncated file?)");
  CHECK(load_error(image(one, kEight + "x")) ==
        "1 bytes of data after the last tensor (the data must be covered exactly)");
  CHECK(load_error(image("{}", "x")) == "1 bytes of data after the last tensor (the data must be covered exactly)");
  // Empty tensors share an offset.
  CHECK(load_error(image("{\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[8,8]},\"a\":{" + kTensor +
                             "},\"s\":{\"dtype\":\"I8\",\"shape\":[],\"data_offsets\":[8,9]}}",
                         kEight + "z")) == "");
}

TEST_CASE("safetensors: file errors") {
  const std::string dir = tmpdir();
  CHECK(error_of([&] { io::SafeTensors st(dir + "/missing.safetensors"); }) ==
        dir + "/missing.safetensors: no such file");
  CHECK(error_of([&] { io::SafeTensors st(dir); }) == dir + ": is a directory, expected a .safetensors file");
  write_bytes(dir + "/empty.safetensors", "");
  CHECK(error_of([&] { io::SafeTensors st(dir + "/empty.safetensors"); }) ==
        dir + "/empty.safetensors: not a safetensors file: 0 bytes, shorter than the 8-byte header length");
  write_bytes(dir + "/short.safetensors", le64(64) + "{}");
  CHECK(error_of([&] { io::SafeTensors st(dir + "/short.safetensors"); }) ==
        dir + "/short.safetensors: header length 64 exceeds file size 10");
  CHECK(error_of([&] { io::SafeTensorsSet s(dir); }) ==
        dir + ": no model.safetensors or model.safetensors.index.json in this directory");
  fs::remove_all(dir);
}

TEST_CASE("safetensors: sharded checkpoints") {
  const std::string dir = tmpdir() + "/ckpt";
  fs::create_directories(dir);
  const float a[2] = {1, 2}, b[3] = {3, 4, 5};
  const std::uint16_t c[1] = {0x3f80};
  {
    io::SafeTensorsWriter w1, w2;
    w1.add("layer.0.w", Dtype::F32, {2}, a);
    w1.add("unlisted", Dtype::F32, {2}, a);
    w2.add("layer.1.w", Dtype::F32, {3}, b);
    w2.add("layer.1.b", Dtype::BF16, {1}, c);
    w1.set_metadata("format", "pt");
    w1.write(dir + "/model-00001-of-00002.safetensors");
    w2.write(dir + "/model-00002-of-00002.safetensors");
  }
  const std::string index = dir + "/model.safetensors.index.json";
  const auto write_index = [&](const nlohmann::json& wm) {
    nlohmann::json j;
    j["metadata"] = {{"total_size", 22}, {"format", "pt"}};
    j["weight_map"] = wm;
    write_bytes(index, j.dump(2));
  };
  write_index({{"layer.0.w", "model-00001-of-00002.safetensors"},
               {"layer.1.w", "model-00002-of-00002.safetensors"},
               {"layer.1.b", "model-00002-of-00002.safetensors"}});
  for (const std::string& p : {dir, index}) {
    io::SafeTensorsSet set(p);
    CHECK(set.shard_count() == 2);
    CHECK(set.names() == std::vector<std::string>{"layer.0.w", "layer.1.b", "layer.1.w"});
    CHECK(set.contains("layer.1.b"));
    CHECK(!set.contains("unlisted"));
    CHECK(set.metadata() == std::map<std::string, std::string>{{"format", "pt"}, {"total_size", "22"}});
    CHECK(set.to_float("layer.1.w") == std::vector<float>{3, 4, 5});
    CHECK(set.to_float("layer.1.b") == std::vector<float>{1});
    CHECK(set.info("layer.0.w").shape == std::vector<std::int64_t>{2});
    CHECK(std::memcmp(set.data("layer.0.w"), a, 8) == 0);
    CHECK(set.shard_of("layer.0.w").path() == dir + "/model-00001-of-00002.safetensors");
    CHECK(error_of([&] { set.info("nope"); }) == p + ": no tensor named 'nope'");
  }
  write_index({{"layer.0.w", "model-00001-of-00002.safetensors"}, {"layer.9.w", "model-00003-of-00003.safetensors"}});
  CHECK(error_of([&] { io::SafeTensorsSet s(dir); }) ==
        index + ": shard 'model-00003-of-00003.safetensors' listed in weight_map does not exist");
  write_index({{"layer.0.w", "model-00001-of-00002.safetensors"}, {"layer.1.w", "model-00001-of-00002.safetensors"}});
  CHECK(error_of([&] { io::SafeTensorsSet s(dir); }) ==
        index +
            ": tensor 'layer.1.w' is mapped to shard 'model-00001-of-00002.safetensors', which does not contain it");
  write_index({{"layer.0.w", "../model-00001-of-00002.safetensors"}});
  CHECK(error_of([&] { io::SafeTensorsSet s(dir); }) ==
        index + ": shard '../model-00001-of-00002.safetensors' is not a file inside the checkpoint directory");
  write_index({{"layer.0.w", 3}});
  CHECK(error_of([&] { io::SafeTensorsSet s(dir); }) ==
        index + ": weight_map entry for 'layer.0.w' is not a file name");
  write_bytes(index, "{\"metadata\": {}}");
  CHECK(error_of([&] { io::SafeTensorsSet s(dir); }) == index + ": missing 'weight_map' object");
  write_bytes(index, "{\"weight_map\": {");
  CHECK(error_of([&] { io::SafeTensorsSet s(dir); }) == index + ": malformed JSON");
  // A corrupt shard is reported under its own name.
  write_index({{"layer.0.w", "model-00001-of-00002.safetensors"}});
  write_bytes(dir + "/model-00001-of-00002.safetensors", le64(1));
  CHECK(error_of([&] { io::SafeTensorsSet s(dir); }) ==
        dir + "/model-00001-of-00002.safetensors: header length 1 exceeds file size 8");
  // model.safetensors wins over the index, as in transformers.
  {
    io::SafeTensorsWriter w;
    w.add("single", Dtype::F32, {2}, a);
    w.write(dir + "/model.safetensors");
  }
  io::SafeTensorsSet single(dir);
  CHECK(single.names() == std::vector<std::string>{"single"});
  fs::remove_all(fs::path(dir).parent_path());
}

TEST_CASE("safetensors: fuzzed files never crash") {
  io::SafeTensorsWriter w;
  const float f[6] = {1, 2, 3, 4, 5, 6};
  const std::int64_t i[2] = {7, 8};
  const std::uint16_t h[3] = {0x3c00, 0x4000, 0x3f80};
  w.add("alpha", Dtype::F32, {2, 3}, f);
  w.add("beta", Dtype::I64, {2}, i);
  w.add("gamma", Dtype::F16, {3}, h);
  w.add("delta", Dtype::BF16, {1, 3}, h);
  w.add("scalar", Dtype::F32, {}, f);
  w.add("empty", Dtype::U8, {0}, nullptr);
  w.set_metadata("format", "pt");
  const std::string valid = w.serialize();
  std::mt19937 rng(1234);
  int loaded = 0, rejected = 0;
  // HSE_ST_FUZZ_ITERS runs a longer loop (e.g. under a sanitizer build).
  const char* iters_env = std::getenv("HSE_ST_FUZZ_ITERS");
  const int iters = iters_env ? std::atoi(iters_env) : 2000;
  for (int it = 0; it < iters; ++it) {
    std::string s = valid;
    const int kind = static_cast<int>(rng() % 5);
    if (kind == 0) {  // truncate
      s.resize(rng() % s.size());
    } else if (kind == 1) {  // flip bytes anywhere
      for (int k = 1 + rng() % 4; k > 0; --k) s[rng() % s.size()] ^= static_cast<char>(1 + rng() % 255);
    } else if (kind == 2) {  // replace header bytes with JSON-ish characters
      static const char kChars[] = "{}[]\",:0123456789-.eE \\u\"aFIB";
      for (int k = 1 + rng() % 3; k > 0; --k) s[8 + rng() % (s.size() - 8)] = kChars[rng() % (sizeof kChars - 1)];
    } else if (kind == 3) {  // corrupt the header length
      const std::uint64_t n = rng() % 2 ? rng() % (s.size() + 16) : (static_cast<std::uint64_t>(rng()) << 32) | rng();
      s.replace(0, 8, le64(n));
    } else {  // delete or insert a byte in the header
      const std::size_t pos = 8 + rng() % (s.size() - 8);
      if (rng() % 2) {
        s.erase(pos, 1);
      } else {
        s.insert(pos, 1, static_cast<char>(rng() % 256));
      }
    }
    try {
      const auto st = io::SafeTensors::from_bytes(s, "fuzz");
      ++loaded;
      double sum = 0;
      for (const auto& n : st.names()) {
        const io::TensorInfo& t = st.info(n);
        REQUIRE(t.end <= s.size());
        const auto* p = static_cast<const std::uint8_t*>(st.data(n));
        for (std::size_t k = 0; k < t.nbytes(); ++k) sum += p[k];
        if (io::is_float_dtype(t.dtype))
          for (float v : st.to_float(n)) sum += v == v ? 0 : 1;
      }
      (void)sum;
    } catch (const cli::Error& e) {
      ++rejected;
      REQUIRE(std::string(e.what()).find('\n') == std::string::npos);
    }
  }
  CHECK(loaded + rejected == iters);
  if (iters >= 2000) {
    CHECK(loaded > 0);
    CHECK(rejected > iters / 2);
  }
  MESSAGE("fuzz: " << loaded << " loaded, " << rejected << " rejected");
}

// A driver for tests/parity/test_safetensors.py; does nothing without its environment.
//   HSE_ST_IN=<file|dir|index.json> HSE_ST_OUT=<json>: describes the checkpoint
//     {"ok": true, "names": [...], "metadata": {...}, "shards": n,
//      "tensors": {name: {"dtype", "shape", "hex", "f32_bits" (float dtypes)}}}
//     or {"ok": false, "error": "<file>: <message>", "code": 3}.
//   HSE_ST_WRITE=<file> HSE_ST_SPEC=<json>: writes {"metadata": {..}, "tensors": [{"name", "dtype",
//     "shape", "hex" | "f32_bits" (converted to dtype by hse)}]}.
TEST_CASE("driver: safetensors") {
  const char* in = std::getenv("HSE_ST_IN");
  const char* write = std::getenv("HSE_ST_WRITE");
  if (write) {
    const char* spec = std::getenv("HSE_ST_SPEC");
    REQUIRE(spec);
    const nlohmann::json j = nlohmann::json::parse(io::read_file(spec));
    io::SafeTensorsWriter w;
    if (j.contains("metadata"))
      for (auto it = j["metadata"].begin(); it != j["metadata"].end(); ++it)
        w.set_metadata(it.key(), it->get<std::string>());
    for (const auto& t : j["tensors"]) {
      const auto dt = io::parse_dtype_name(t["dtype"].get<std::string>());
      REQUIRE(dt);
      const auto shape = t["shape"].get<std::vector<std::int64_t>>();
      if (t.contains("f32_bits")) {
        std::vector<float> v;
        for (std::uint32_t b : t["f32_bits"].get<std::vector<std::uint32_t>>()) v.push_back(float_of(b));
        w.add_float(t["name"].get<std::string>(), *dt, shape, v.data());
      } else {
        const std::string bytes = hexdecode(t["hex"].get<std::string>());
        w.add(t["name"].get<std::string>(), *dt, shape, bytes.data());
      }
    }
    w.write(write);
  }
  if (!in) return;
  const char* out = std::getenv("HSE_ST_OUT");
  REQUIRE(out);
  nlohmann::json r;
  try {
    io::SafeTensorsSet set(in);
    r["ok"] = true;
    r["names"] = set.names();
    r["metadata"] = set.metadata();
    r["shards"] = set.shard_count();
    r["tensors"] = nlohmann::json::object();
    for (const auto& n : set.names()) {
      const io::TensorInfo& t = set.info(n);
      nlohmann::json d;
      d["dtype"] = io::dtype_name(t.dtype);
      d["shape"] = t.shape;
      d["hex"] = hexencode(t.bytes, t.nbytes());
      if (io::is_float_dtype(t.dtype)) {
        std::vector<std::uint32_t> bits;
        for (float v : set.to_float(n)) bits.push_back(bits_of(v));
        d["f32_bits"] = bits;
      }
      r["tensors"][n] = d;
    }
  } catch (const cli::Error& e) {
    r = {{"ok", false}, {"error", e.line()}, {"code", static_cast<int>(e.code())}};
  }
  std::ofstream(out) << r.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
