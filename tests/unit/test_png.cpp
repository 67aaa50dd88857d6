// hse::image PNG encoder and the patch-score montage. The encoder is checked by
// decoding its chunks here (CRC, IHDR, zlib stream); tests/cli/test_pretrain.sh
// also opens hse-embed --patch-png files with Pillow.
#include <libdeflate.h>

#include <cstring>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "hse/image/png.h"

namespace {
std::uint32_t be32(const std::string& s, std::size_t at) {
  return (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at])) << 24) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 1])) << 16) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 2])) << 8) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 3]));
}
}  // namespace

TEST_CASE("png: chunks, CRCs and the decompressed rows") {
  const int w = 5, h = 3;
  std::vector<std::uint8_t> px(w * h * 3);
  for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<std::uint8_t>(i * 7);
  const std::string png = hse::image::encode_png(w, h, 3, px.data());
  REQUIRE(png.size() > 8);
  CHECK(png.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) == 0);
  std::size_t at = 8;
  std::vector<std::string> types;
  std::string idat, ihdr;
  while (at + 12 <= png.size()) {
    const std::uint32_t len = be32(png, at);
    const std::string type = png.substr(at + 4, 4);
    const std::string data = png.substr(at + 8, len);
    const std::uint32_t crc = be32(png, at + 8 + len);
    CHECK(crc == libdeflate_crc32(0, png.data() + at + 4, len + 4));
    types.push_back(type);
    if (type == "IHDR") ihdr = data;
    if (type == "IDAT") idat += data;
    at += 12 + len;
  }
  CHECK(at == png.size());
  CHECK(types == std::vector<std::string>{"IHDR", "IDAT", "IEND"});
  REQUIRE(ihdr.size() == 13);
  CHECK(be32(ihdr, 0) == static_cast<std::uint32_t>(w));
  CHECK(be32(ihdr, 4) == static_cast<std::uint32_t>(h));
  CHECK(ihdr[8] == 8);
  CHECK(ihdr[9] == 2);  // RGB
  std::vector<char> raw(static_cast<std::size_t>((w * 3 + 1) * h));
  auto* d = libdeflate_alloc_decompressor();
  std::size_t got = 0;
  CHECK(libdeflate_zlib_decompress(d, idat.data(), idat.size(), raw.data(), raw.size(), &got) == LIBDEFLATE_SUCCESS);
  libdeflate_free_decompressor(d);
  CHECK(got == raw.size());
  for (int y = 0; y < h; ++y) {
    CHECK(raw[static_cast<std::size_t>(y * (w * 3 + 1))] == 0);  // filter none
    CHECK(std::memcmp(raw.data() + y * (w * 3 + 1) + 1, px.data() + y * w * 3, w * 3) == 0);
  }
  CHECK_THROWS(hse::image::encode_png(0, 3, 3, px.data()));
  CHECK_THROWS(hse::image::encode_png(5, 3, 2, px.data()));
}

TEST_CASE("png: patch-score montage layout and colours") {
  // Volume [D=4, X=4, Y=2] in two slabs of 2 slices; grid [gd=2, gx=2, gy=1].
  const int D = 4, X = 4, Y = 2;
  std::vector<float> vol(D * X * Y, 0.5f);
  vol[(1 * X + 3) * Y + 1] = 1.0f;  // slab 0's middle slice is z = 1: voxel (x 3, y 1)
  const std::vector<float> scores = {0.2f, 0.2f, 0.2f, 0.9f};  // slab 1, x >= 2 scores highest
  int width = 0;
  const auto px = hse::image::patch_score_montage(vol.data(), D, X, Y, scores.data(), 2, 2, 1, width);
  CHECK(width == 2 * X);
  REQUIRE(px.size() == static_cast<std::size_t>(width * Y * 3));
  auto at = [&](int row, int col, int c) { return static_cast<int>(px[(row * width + col) * 3 + c]); };
  // lowest score: grey unchanged (128 for 0.5); the bright voxel in tile 0 at row y=1, column x=3
  CHECK(at(0, 0, 0) == 128);
  CHECK(at(0, 0, 2) == 128);
  CHECK(at(1, 3, 0) == 255);
  // highest score (normalised 1): 0.45 * grey + 0.55 * white
  CHECK(at(0, X + 2, 0) == 198);
  CHECK(at(1, X + 3, 2) == 198);
  CHECK(at(0, X + 1, 0) == 128);  // slab 1, x < 2: lowest score
  CHECK_THROWS(hse::image::patch_score_montage(vol.data(), D, X, Y, scores.data(), 3, 2, 1, width));
}
