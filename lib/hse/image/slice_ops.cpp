#include "hse/image/slice_ops.h"

#include <jpeglib.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

namespace hse::image {

std::vector<std::int64_t> linspace_indices(std::int64_t n, std::int64_t steps) {
  if (steps < 1) return {};
  std::vector<std::int64_t> out(static_cast<std::size_t>(steps));
  if (steps == 1) {  // torch fills `start`
    out[0] = 0;
    return out;
  }
  const std::int64_t start = 0, end = n - 1;
  const double step = (static_cast<double>(end) - static_cast<double>(start)) / static_cast<double>(steps - 1);
  const std::int64_t halfway = steps / 2;
  for (std::int64_t i = 0; i < steps; ++i) {
    const double v = i < halfway ? static_cast<double>(start) + step * static_cast<double>(i)
                                 : static_cast<double>(end) - step * static_cast<double>(steps - i - 1);
    out[static_cast<std::size_t>(i)] = static_cast<std::int64_t>(v);
  }
  return out;
}

Image8 minmax_to_u8(const float* p, std::int64_t h, std::int64_t w) {
  Image8 out{h, w, std::vector<std::uint8_t>(static_cast<std::size_t>(h * w), 0)};
  const std::size_t n = out.v.size();
  if (n == 0) return out;
  double mn = std::numeric_limits<double>::infinity(), mx = -mn;
  for (std::size_t i = 0; i < n; ++i) {
    mn = std::min(mn, static_cast<double>(p[i]));
    mx = std::max(mx, static_cast<double>(p[i]));
  }
  if (!(mx > mn)) return out;
  const double den = mx - mn;
  for (std::size_t i = 0; i < n; ++i) {
    const double t = (static_cast<double>(p[i]) - mn) / den * 255.0;
    out.v[i] = static_cast<std::uint8_t>(static_cast<int>(t));  // t in [0, 255]: truncation
  }
  return out;
}

std::pair<float, float> minmax_f32(const float* p, std::size_t n) {
  float mn = std::numeric_limits<float>::infinity(), mx = -mn;
  for (std::size_t i = 0; i < n; ++i) {
    mn = std::min(mn, p[i]);
    mx = std::max(mx, p[i]);
  }
  return {mn, mx};
}

Image8 minmax_to_u8_f32(const float* p, std::int64_t h, std::int64_t w, float mn, float mx) {
  Image8 out{h, w, std::vector<std::uint8_t>(static_cast<std::size_t>(h * w), 0)};
  if (!(mx > mn)) return out;
  const float den = mx - mn;
  for (std::size_t i = 0; i < out.v.size(); ++i) {
    // Three float32 operations, each rounded, as PyTorch evaluates the expression on float tensors.
    volatile float t = p[i] - mn;
    t = t / den;
    t = t * 255.0f;
    out.v[i] = static_cast<std::uint8_t>(static_cast<int>(t));  // t in [0, 255]: truncation
  }
  return out;
}

Image8 rotate_ccw90(const Image8& in) {
  Image8 out{in.w, in.h, std::vector<std::uint8_t>(in.v.size())};
  for (std::int64_t i = 0; i < out.h; ++i)
    for (std::int64_t j = 0; j < out.w; ++j) out.v[static_cast<std::size_t>(i * out.w + j)] = in.at(j, in.w - 1 - i);
  return out;
}

Image8 rotate_cw90(const Image8& in) {
  Image8 out{in.w, in.h, std::vector<std::uint8_t>(in.v.size())};
  for (std::int64_t i = 0; i < out.h; ++i)
    for (std::int64_t j = 0; j < out.w; ++j) out.v[static_cast<std::size_t>(i * out.w + j)] = in.at(in.h - 1 - j, i);
  return out;
}

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bicubic filter
// over the whole input (box 0..in_size).
struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;           // (xmin, count) per output
  std::vector<std::int32_t> kk;      // ksize per output, fixed point
};

Coeffs precompute_coeffs(int in_size, int out_size) {
  const float in0 = 0.f, in1 = static_cast<float>(in_size);
  double filterscale, scale;
  filterscale = scale = static_cast<double>(in1 - in0) / out_size;
  if (filterscale < 1.0) filterscale = 1.0;
  const double support = 2.0 * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(static_cast<std::size_t>(out_size) * 2);
  c.kk.assign(static_cast<std::size_t>(out_size) * c.ksize, 0);
  std::vector<double> k(static_cast<std::size_t>(c.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    double ww = 0.0;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    int x = 0;
    for (; x < xmax; ++x) {
      const double wv = bicubic_filter((x + xmin - center + 0.5) * ss);
      k[static_cast<std::size_t>(x)] = wv;
      ww += wv;
    }
    for (x = 0; x < xmax; ++x)
      if (ww != 0.0) k[static_cast<std::size_t>(x)] /= ww;
    for (; x < c.ksize; ++x) k[static_cast<std::size_t>(x)] = 0;
    c.bounds[static_cast<std::size_t>(xx) * 2] = xmin;
    c.bounds[static_cast<std::size_t>(xx) * 2 + 1] = xmax;
    for (x = 0; x < c.ksize; ++x) {
      const double v = k[static_cast<std::size_t>(x)];
      c.kk[static_cast<std::size_t>(xx) * c.ksize + x] =
          v < 0 ? static_cast<int>(-0.5 + v * (1 << kPrecisionBits)) : static_cast<int>(0.5 + v * (1 << kPrecisionBits));
    }
  }
  return c;
}

inline std::uint8_t clip8(int in) {
  const int q = in >> kPrecisionBits;  // arithmetic shift, as Pillow's lookup index
  return static_cast<std::uint8_t>(q < 0 ? 0 : q > 255 ? 255 : q);
}

}  // namespace

Image8 resize_bicubic_pil(const Image8& in, std::int64_t out_w, std::int64_t out_h) {
  if (out_w < 1 || out_h < 1) throw std::invalid_argument("resize_bicubic_pil: empty output size");
  const bool need_h = out_w != in.w, need_v = out_h != in.h;
  Image8 cur = in;
  if (need_h) {
    const Coeffs c = precompute_coeffs(static_cast<int>(in.w), static_cast<int>(out_w));
    Image8 t{in.h, out_w, std::vector<std::uint8_t>(static_cast<std::size_t>(in.h * out_w))};
    for (std::int64_t y = 0; y < in.h; ++y) {
      const std::uint8_t* row = in.v.data() + y * in.w;
      for (std::int64_t xx = 0; xx < out_w; ++xx) {
        const int xmin = c.bounds[static_cast<std::size_t>(xx) * 2], xmax = c.bounds[static_cast<std::size_t>(xx) * 2 + 1];
        const std::int32_t* k = c.kk.data() + xx * c.ksize;
        int ss0 = 1 << (kPrecisionBits - 1);
        for (int x = 0; x < xmax; ++x) ss0 += static_cast<int>(row[xmin + x]) * k[x];
        t.v[static_cast<std::size_t>(y * out_w + xx)] = clip8(ss0);
      }
    }
    cur = std::move(t);
  }
  if (need_v) {
    const Coeffs c = precompute_coeffs(static_cast<int>(cur.h), static_cast<int>(out_h));
    Image8 t{out_h, cur.w, std::vector<std::uint8_t>(static_cast<std::size_t>(out_h * cur.w))};
    for (std::int64_t yy = 0; yy < out_h; ++yy) {
      const int ymin = c.bounds[static_cast<std::size_t>(yy) * 2], ymax = c.bounds[static_cast<std::size_t>(yy) * 2 + 1];
      const std::int32_t* k = c.kk.data() + yy * c.ksize;
      for (std::int64_t xx = 0; xx < cur.w; ++xx) {
        int ss0 = 1 << (kPrecisionBits - 1);
        for (int y = 0; y < ymax; ++y) ss0 += static_cast<int>(cur.v[static_cast<std::size_t>((ymin + y) * cur.w + xx)]) * k[y];
        t.v[static_cast<std::size_t>(yy * cur.w + xx)] = clip8(ss0);
      }
    }
    cur = std::move(t);
  }
  return cur;
}

std::pair<std::int64_t, std::int64_t> short_side_size(std::int64_t h, std::int64_t w, std::int64_t size) {
  const bool w_short = w <= h;
  const std::int64_t s = w_short ? w : h, l = w_short ? h : w;
  const std::int64_t new_long = static_cast<std::int64_t>(static_cast<double>(size * l) / static_cast<double>(s));
  return w_short ? std::make_pair(new_long, size) : std::make_pair(size, new_long);
}

std::int64_t center_crop_offset(std::int64_t in, std::int64_t crop) {
  const std::int64_t d = in - crop;
  if (d % 2 == 0) return d / 2;
  // (d / 2.0) is x.5: Python's round() goes to the even neighbour.
  const std::int64_t lo = (d - 1) / 2, hi = lo + 1;
  return lo % 2 == 0 ? lo : hi;
}

Image8 center_crop(const Image8& in, std::int64_t ch, std::int64_t cw) {
  if (ch > in.h || cw > in.w) throw std::invalid_argument("center_crop: crop larger than the image");
  const std::int64_t top = center_crop_offset(in.h, ch), left = center_crop_offset(in.w, cw);
  Image8 out{ch, cw, std::vector<std::uint8_t>(static_cast<std::size_t>(ch * cw))};
  for (std::int64_t r = 0; r < ch; ++r)
    std::memcpy(out.v.data() + r * cw, in.v.data() + (top + r) * in.w + left, static_cast<std::size_t>(cw));
  return out;
}

namespace {

struct JpegError {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

extern "C" void hse_jpeg_error_exit(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegError*>(c->err);
  (*c->err->format_message)(c, e->message);
  std::longjmp(e->jump, 1);
}
extern "C" void hse_jpeg_no_message(j_common_ptr, int) {}

// All state lives here (its address escapes to libjpeg), so nothing read
// after a longjmp sits in a register.
struct JpegState {
  jpeg_compress_struct cc;
  jpeg_decompress_struct dc;
  JpegError err;
  unsigned char* buf;
  unsigned long size;
  volatile int c_created, d_created;
};

// Plain C-style: no objects with destructors between setjmp and longjmp.
bool jpeg_roundtrip_c(JpegState* s, const std::uint8_t* in, int w, int h, int quality, std::uint8_t* out) {
  std::memset(s, 0, sizeof(JpegState));
  if (setjmp(s->err.jump)) {
    if (s->c_created) jpeg_destroy_compress(&s->cc);
    if (s->d_created) jpeg_destroy_decompress(&s->dc);
    std::free(s->buf);
    s->buf = nullptr;
    return false;
  }
  s->cc.err = jpeg_std_error(&s->err.pub);
  s->err.pub.error_exit = hse_jpeg_error_exit;
  s->err.pub.emit_message = hse_jpeg_no_message;
  jpeg_create_compress(&s->cc);
  s->c_created = 1;
  jpeg_mem_dest(&s->cc, &s->buf, &s->size);
  s->cc.image_width = static_cast<JDIMENSION>(w);
  s->cc.image_height = static_cast<JDIMENSION>(h);
  s->cc.input_components = 1;
  s->cc.in_color_space = JCS_GRAYSCALE;
  jpeg_set_defaults(&s->cc);
  jpeg_set_quality(&s->cc, quality, TRUE);
  s->cc.smoothing_factor = 0;
  s->cc.optimize_coding = FALSE;
  jpeg_start_compress(&s->cc, TRUE);
  while (s->cc.next_scanline < s->cc.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(in + static_cast<std::size_t>(s->cc.next_scanline) * w);
    jpeg_write_scanlines(&s->cc, &row, 1);
  }
  jpeg_finish_compress(&s->cc);
  jpeg_destroy_compress(&s->cc);
  s->c_created = 0;

  s->dc.err = jpeg_std_error(&s->err.pub);
  s->err.pub.error_exit = hse_jpeg_error_exit;
  s->err.pub.emit_message = hse_jpeg_no_message;
  jpeg_create_decompress(&s->dc);
  s->d_created = 1;
  jpeg_mem_src(&s->dc, s->buf, s->size);
  jpeg_read_header(&s->dc, TRUE);
  s->dc.out_color_space = JCS_GRAYSCALE;
  jpeg_start_decompress(&s->dc);
  if (s->dc.output_width != static_cast<JDIMENSION>(w) || s->dc.output_height != static_cast<JDIMENSION>(h) ||
      s->dc.output_components != 1) {
    std::snprintf(s->err.message, sizeof(s->err.message), "decoded JPEG has an unexpected shape");
    jpeg_destroy_decompress(&s->dc);
    std::free(s->buf);
    s->buf = nullptr;
    return false;
  }
  while (s->dc.output_scanline < s->dc.output_height) {
    JSAMPROW row = out + static_cast<std::size_t>(s->dc.output_scanline) * w;
    jpeg_read_scanlines(&s->dc, &row, 1);
  }
  jpeg_finish_decompress(&s->dc);
  jpeg_destroy_decompress(&s->dc);
  s->d_created = 0;
  std::free(s->buf);
  s->buf = nullptr;
  return true;
}

}  // namespace

Image8 jpeg_roundtrip(const Image8& in, int quality) {
  if (quality < 1 || quality > 100) throw std::invalid_argument("jpeg_roundtrip: quality must be in 1..100");
  if (in.w < 1 || in.h < 1 || in.w > 65500 || in.h > 65500) throw std::runtime_error("JPEG: image size out of range");
  Image8 out{in.h, in.w, std::vector<std::uint8_t>(in.v.size())};
  auto state = std::make_unique<JpegState>();
  if (!jpeg_roundtrip_c(state.get(), in.v.data(), static_cast<int>(in.w), static_cast<int>(in.h), quality,
                        out.v.data()))
    throw std::runtime_error(std::string("JPEG: ") + state->err.message);
  return out;
}

void to_normalized_rgb(const Image8& in, const std::array<float, 3>& mean, const std::array<float, 3>& stdev,
                       float* out) {
  const std::size_t n = in.v.size();
  for (int c = 0; c < 3; ++c) {
    float* o = out + c * n;
    const float m = mean[static_cast<std::size_t>(c)], s = stdev[static_cast<std::size_t>(c)];
    for (std::size_t i = 0; i < n; ++i) {
      const float x = static_cast<float>(in.v[i]) / 255.0f;
      o[i] = (x - m) / s;
    }
  }
}

std::vector<float> make_slices(const Array3& a, const SliceRecipe& r, int threads) {
  if (r.n_slices < 1) throw std::invalid_argument("make_slices: n_slices must be positive");
  if (a.d < 1 || a.h < 1 || a.w < 1) throw std::invalid_argument("make_slices: empty volume");
  const std::int64_t n = r.n_slices, plane = a.h * a.w, S = r.image_size;
  // Slice selection: [n][X][Y].
  std::vector<float> resized;
  std::vector<const float*> src(static_cast<std::size_t>(n));
  if (a.d >= n || !r.resize_short) {
    const std::vector<std::int64_t> idx = linspace_indices(a.d, n);
    for (std::int64_t i = 0; i < n; ++i) src[static_cast<std::size_t>(i)] = a.v.data() + idx[static_cast<std::size_t>(i)] * plane;
  } else {
    resized.resize(static_cast<std::size_t>(n * plane));
    resize_trilinear(a.v.data(), a.d, a.h, a.w, kernels::Box{0, a.d, 0, a.h, 0, a.w}, resized.data(), n, a.h, a.w,
                     threads);
    for (std::int64_t i = 0; i < n; ++i) src[static_cast<std::size_t>(i)] = resized.data() + i * plane;
  }
  // The rotated slice is Y rows by X columns.
  const auto rhw = short_side_size(a.w, a.h, S);  // not a structured binding: the OpenMP loop below uses them
  const std::int64_t rh = rhw.first, rw = rhw.second;
  if (rh < S || rw < S) throw std::invalid_argument("make_slices: resized slice smaller than the crop");
  std::vector<float> out(static_cast<std::size_t>(n * 3 * S * S));
  std::pair<float, float> global{0.0f, 0.0f};
  if (r.norm == SliceNorm::global_f32) global = minmax_f32(a.v.data(), a.v.size());
  std::string error;
#pragma omp parallel for num_threads(std::max(1, threads)) schedule(dynamic)
  for (std::int64_t i = 0; i < n; ++i) {
    try {
      const float* sp = src[static_cast<std::size_t>(i)];
      Image8 img;
      switch (r.norm) {
        case SliceNorm::per_slice: img = minmax_to_u8(sp, a.h, a.w); break;
        case SliceNorm::global_f32: img = minmax_to_u8_f32(sp, a.h, a.w, global.first, global.second); break;
        case SliceNorm::per_slice_f32: {
          const auto [mn, mx] = minmax_f32(sp, static_cast<std::size_t>(plane));
          img = minmax_to_u8_f32(sp, a.h, a.w, mn, mx);
          break;
        }
      }
      img = r.rotate_ccw ? rotate_ccw90(img) : rotate_cw90(img);
      if (r.jpeg_quality > 0) img = jpeg_roundtrip(img, r.jpeg_quality);
      img = resize_bicubic_pil(img, rw, rh);
      img = center_crop(img, S, S);
      to_normalized_rgb(img, r.mean, r.stdev, out.data() + i * 3 * S * S);
    } catch (const std::exception& e) {
#pragma omp critical(hse_slice_error)
      if (error.empty()) error = e.what();
    }
  }
  if (!error.empty()) throw std::runtime_error(error);
  return out;
}

}  // namespace hse::image
