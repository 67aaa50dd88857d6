// A minimal PNG encoder (8-bit grayscale, RGB or RGBA; no interlacing; zlib stream
// from libdeflate) and the patch-score overlay montage of hse-embed --patch-png (the
// paper's Figure 3: the 2E3 patch scores over axial slices).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hse::image {

// PNG file bytes of an image of `width` x `height` pixels with `channels` (1 gray,
// 3 RGB, 4 RGBA) interleaved 8-bit samples, rows top to bottom. Every row uses
// filter type 0 (none); the IDAT stream is one zlib stream at `level` (1-12).
std::string encode_png(int width, int height, int channels, const std::uint8_t* pixels, int level = 6);
// Writes encode_png(...) to `path` atomically (temporary file + rename).
void write_png(const std::string& path, int width, int height, int channels, const std::uint8_t* pixels,
               int level = 6);

// An RGB montage of a volume's patch scores: one tile per depth slab of patches, left
// to right, each the middle axial slice of its slab in grey (the preprocessed
// intensities, clamped to [0, 1]) blended with a heat colour (black-red-yellow-white)
// of the slab's scores, min-max normalised over the whole volume; the blend weight is
// 0.55 times the normalised score, so low scores leave the slice visible.
//   volume [D, X, Y] floats (row-major: hse's stored N,1,Z,X,Y layout of one item),
//   scores [gd, gx, gy] floats (row-major: the ViT's patch order),
//   D = gd * pd, X = gx * px, Y = gy * py.
// A tile shows Y down its rows (anterior at the top for CT-RATE volumes) and X across
// its columns. Returns the pixels: height Y, width gd * X (set in `width`), 3 channels.
std::vector<std::uint8_t> patch_score_montage(const float* volume, int D, int X, int Y, const float* scores, int gd,
                                              int gx, int gy, int& width);

}  // namespace hse::image
