#include "hse/image/png.h"

#include <libdeflate.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "hse/cli/cli.h"
#include "hse/io/atomic.h"

namespace hse::image {

namespace {

void put_u32(std::string& s, std::uint32_t v) {
  for (int k = 3; k >= 0; --k) s.push_back(static_cast<char>((v >> (8 * k)) & 0xFF));
}

void chunk(std::string& out, const char type[4], const std::string& data) {
  put_u32(out, static_cast<std::uint32_t>(data.size()));
  std::string td(type, 4);
  td += data;
  out += td;
  put_u32(out, libdeflate_crc32(0, td.data(), td.size()));
}

}  // namespace

std::string encode_png(int width, int height, int channels, const std::uint8_t* pixels, int level) {
  if (width <= 0 || height <= 0 || (channels != 1 && channels != 3 && channels != 4))
    throw cli::Error(cli::Exit::runtime, "", "PNG: bad image shape");
  const std::size_t row = static_cast<std::size_t>(width) * static_cast<std::size_t>(channels);
  std::string raw;
  raw.reserve((row + 1) * static_cast<std::size_t>(height));
  for (int y = 0; y < height; ++y) {
    raw.push_back('\0');  // filter type 0
    raw.append(reinterpret_cast<const char*>(pixels) + static_cast<std::size_t>(y) * row, row);
  }
  std::unique_ptr<libdeflate_compressor, void (*)(libdeflate_compressor*)> c(
      libdeflate_alloc_compressor(std::clamp(level, 1, 12)), libdeflate_free_compressor);
  if (!c) throw cli::Error(cli::Exit::runtime, "", "PNG: out of memory");
  std::string z(libdeflate_zlib_compress_bound(c.get(), raw.size()), '\0');
  z.resize(libdeflate_zlib_compress(c.get(), raw.data(), raw.size(), z.data(), z.size()));
  if (z.empty()) throw cli::Error(cli::Exit::runtime, "", "PNG: compression failed");

  std::string out("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  put_u32(ihdr, static_cast<std::uint32_t>(width));
  put_u32(ihdr, static_cast<std::uint32_t>(height));
  ihdr.push_back(8);                                                          // bit depth
  ihdr.push_back(static_cast<char>(channels == 1 ? 0 : channels == 3 ? 2 : 6));  // colour type
  ihdr.append(3, '\0');  // compression, filter, interlace
  chunk(out, "IHDR", ihdr);
  chunk(out, "IDAT", z);
  chunk(out, "IEND", std::string());
  return out;
}

void write_png(const std::string& path, int width, int height, int channels, const std::uint8_t* pixels, int level) {
  const std::string bytes = encode_png(width, height, channels, pixels, level);
  io::AtomicFile f(path, true);
  f.stream().write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f.stream()) cli::fail(cli::Exit::runtime, path, "cannot write output");
  f.commit();
}

std::vector<std::uint8_t> patch_score_montage(const float* volume, int D, int X, int Y, const float* scores, int gd,
                                              int gx, int gy, int& width) {
  if (gd <= 0 || gx <= 0 || gy <= 0 || D % gd || X % gx || Y % gy)
    throw cli::Error(cli::Exit::runtime, "", "the patch grid does not divide the volume");
  const int pd = D / gd, px = X / gx, py = Y / gy;
  const std::size_t T = static_cast<std::size_t>(gd) * gx * gy;
  const float lo = *std::min_element(scores, scores + T), hi = *std::max_element(scores, scores + T);
  const float span = hi > lo ? hi - lo : 1.f;
  width = gd * X;
  std::vector<std::uint8_t> out(static_cast<std::size_t>(width) * Y * 3);
  for (int t = 0; t < gd; ++t) {
    const int z = t * pd + pd / 2;
    for (int x = 0; x < X; ++x)
      for (int y = 0; y < Y; ++y) {
        const float g = std::clamp(volume[(static_cast<std::size_t>(z) * X + x) * Y + y], 0.f, 1.f);
        const float s = (scores[(static_cast<std::size_t>(t) * gx + x / px) * gy + y / py] - lo) / span;
        const float r = std::clamp(3 * s, 0.f, 1.f), gr = std::clamp(3 * s - 1, 0.f, 1.f),
                    b = std::clamp(3 * s - 2, 0.f, 1.f);
        const float a = 0.55f * s;
        std::uint8_t* p = &out[(static_cast<std::size_t>(y) * width + static_cast<std::size_t>(t) * X + x) * 3];
        p[0] = static_cast<std::uint8_t>(std::lround(255 * ((1 - a) * g + a * r)));
        p[1] = static_cast<std::uint8_t>(std::lround(255 * ((1 - a) * g + a * gr)));
        p[2] = static_cast<std::uint8_t>(std::lround(255 * ((1 - a) * g + a * b)));
      }
  }
  return out;
}

}  // namespace hse::image
