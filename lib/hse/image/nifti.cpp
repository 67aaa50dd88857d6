#include <libdeflate.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>

#include "hse/cli/cli.h"
#include "hse/image/volume.h"
#include "hse/io/atomic.h"

namespace hse::image {
namespace {

template <typename T>
T get(const unsigned char* p, bool swap) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  if (swap) {
    unsigned char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    for (std::size_t i = 0; i < sizeof(T) / 2; ++i) std::swap(b[i], b[sizeof(T) - 1 - i]);
    std::memcpy(&v, b, sizeof(T));
  }
  return v;
}

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

struct Header {
  int version = 1;
  bool swap = false;
  std::array<std::int64_t, 8> dim{};
  std::array<double, 8> pixdim{};
  int datatype = 0;
  std::int64_t vox_offset = 0;
  double scl_slope = 0, scl_inter = 0;
};

const char* type_name(int dt) {
  switch (dt) {
    case 2: return "uint8";
    case 4: return "int16";
    case 8: return "int32";
    case 16: return "float32";
    case 64: return "float64";
    case 256: return "int8";
    case 512: return "uint16";
    case 768: return "uint32";
    default: return nullptr;
  }
}
int type_size(int dt) {
  switch (dt) {
    case 2: case 256: return 1;
    case 4: case 512: return 2;
    case 8: case 16: case 768: return 4;
    case 64: return 8;
    default: return 0;
  }
}

Header parse_header(const std::string& path, const unsigned char* p, std::size_t n) {
  Header h;
  if (n < 348) cli::fail_input(path, "not a NIfTI file (too short for a header)");
  std::int32_t sz = get<std::int32_t>(p, false);
  if (sz == 348 || sz == 540) {
    h.swap = false;
  } else if (get<std::int32_t>(p, true) == 348 || get<std::int32_t>(p, true) == 540) {
    h.swap = true;
    sz = get<std::int32_t>(p, true);
  } else {
    cli::fail_input(path, "not a NIfTI file (bad header size field)");
  }
  if (sz == 348) {
    if (std::memcmp(p + 344, "ni1", 4) == 0)
      cli::fail_input(path, "NIfTI header/image pairs (.hdr/.img) are not supported; convert to .nii");
    if (std::memcmp(p + 344, "n+1", 4) != 0) cli::fail_input(path, "not a NIfTI-1 file (bad magic)");
    for (int i = 0; i < 8; ++i) h.dim[i] = get<std::int16_t>(p + 40 + 2 * i, h.swap);
    h.datatype = get<std::int16_t>(p + 70, h.swap);
    for (int i = 0; i < 8; ++i) h.pixdim[i] = get<float>(p + 76 + 4 * i, h.swap);
    const float vox_offset = get<float>(p + 108, h.swap);  // a float in NIfTI-1
    if (!(vox_offset >= 0.0f && vox_offset < 9.0e15f))
      cli::fail_input(path, "bad vox_offset {} in the NIfTI-1 header", vox_offset);
    h.vox_offset = static_cast<std::int64_t>(vox_offset);
    h.scl_slope = get<float>(p + 112, h.swap);
    h.scl_inter = get<float>(p + 116, h.swap);
    if (h.vox_offset < 348) h.vox_offset = 352;
  } else {
    if (n < 540) cli::fail_input(path, "truncated NIfTI-2 header");
    h.version = 2;
    if (std::memcmp(p + 4, "n+2", 3) != 0) cli::fail_input(path, "not a NIfTI-2 file (bad magic)");
    h.datatype = get<std::int16_t>(p + 12, h.swap);
    for (int i = 0; i < 8; ++i) h.dim[i] = get<std::int64_t>(p + 16 + 8 * i, h.swap);
    for (int i = 0; i < 8; ++i) h.pixdim[i] = get<double>(p + 104 + 8 * i, h.swap);
    h.vox_offset = get<std::int64_t>(p + 168, h.swap);
    h.scl_slope = get<double>(p + 176, h.swap);
    h.scl_inter = get<double>(p + 184, h.swap);
    if (h.vox_offset < 540) h.vox_offset = 544;
  }
  const auto nd = h.dim[0];
  if (nd < 1 || nd > 7) cli::fail_input(path, "invalid NIfTI header (dim[0] = {})", nd);
  for (int i = 1; i <= nd; ++i)
    if (h.dim[i] < 1) cli::fail_input(path, "invalid NIfTI header (dim[{}] = {})", i, h.dim[i]);
  for (int i = static_cast<int>(nd) + 1; i < 8; ++i) h.dim[i] = 1;
  if (!type_name(h.datatype)) cli::fail_input(path, "unsupported NIfTI datatype code {}", h.datatype);
  double extra = 1;  // (in double: NIfTI-2's int64 dims may overflow a product)
  for (int i = 4; i <= 7; ++i) extra *= static_cast<double>(h.dim[i]);
  if (nd < 3 || h.dim[3] == 1 || h.dim[2] == 1 || h.dim[1] == 1)
    cli::fail_input(path, "{}-D image ({}x{}x{}), expected a 3-D CT volume", nd < 3 ? nd : 2, h.dim[1], h.dim[2],
                    h.dim[3]);
  if (extra > 1)
    cli::fail_input(path, "{}-D image ({}x{}x{}x{}), expected a 3-D CT volume", nd, h.dim[1], h.dim[2], h.dim[3],
                    extra);
  const double bytes = static_cast<double>(h.dim[1]) * static_cast<double>(h.dim[2]) *
                       static_cast<double>(h.dim[3]) * type_size(h.datatype);
  if (bytes > 16.0 * (1ull << 30)) cli::fail_input(path, "volume too large ({:.1f} GiB)", bytes / (1ull << 30));
  return h;
}

template <typename T>
void convert(const unsigned char* src, std::size_t n, bool swap, float* dst) {
  if (!swap) {
    const T* s = reinterpret_cast<const T*>(src);
    for (std::size_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, s + i, sizeof(T));
      dst[i] = static_cast<float>(v);
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(get<T>(src + i * sizeof(T), true));
  }
}

// Inflates the first `want` bytes of a gzip stream (for the header).
std::string gunzip_prefix(const std::string& path, const std::string& gz, std::size_t want) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) cli::fail(cli::Exit::runtime, path, "zlib init failed");
  std::string out(want, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(std::min<std::size_t>(gz.size(), 1u << 30));
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(want);
  int rc = Z_OK;
  while (zs.avail_out > 0 && rc == Z_OK) rc = inflate(&zs, Z_NO_FLUSH);
  const std::size_t got = want - zs.avail_out;
  inflateEnd(&zs);
  if (rc != Z_OK && rc != Z_STREAM_END) cli::fail_input(path, "corrupt gzip data");
  out.resize(got);
  return out;
}

// Inflates a whole (possibly multi-member) gzip stream into exactly `expected` bytes or more.
std::vector<unsigned char> gunzip_all(const std::string& path, const std::string& gz, std::size_t expected) {
  std::unique_ptr<libdeflate_decompressor, void (*)(libdeflate_decompressor*)> d(libdeflate_alloc_decompressor(),
                                                                                  libdeflate_free_decompressor);
  // ISIZE (size mod 2^32) of the last member hints at trailing bytes beyond the voxel data.
  std::size_t cap = expected;
  if (gz.size() >= 4) {
    std::uint32_t isize;
    std::memcpy(&isize, gz.data() + gz.size() - 4, 4);
    if (isize > (expected & 0xffffffffu) && isize - (expected & 0xffffffffu) < (1u << 20)) cap += isize - (expected & 0xffffffffu);
  }
  std::vector<unsigned char> out(cap);
  std::size_t in_pos = 0, out_pos = 0;
  while (in_pos < gz.size() && out_pos < cap) {
    std::size_t in_used = 0, out_got = 0;
    const auto rc = libdeflate_gzip_decompress_ex(d.get(), gz.data() + in_pos, gz.size() - in_pos,
                                                  out.data() + out_pos, cap - out_pos, &in_used, &out_got);
    if (rc == LIBDEFLATE_INSUFFICIENT_SPACE) {
      // More data than the header needs: keep what the header describes.
      out_pos = cap;
      break;
    }
    if (rc != LIBDEFLATE_SUCCESS)
      cli::fail_input(path, "truncated or corrupt gzip data (after {} of {} expected bytes)", out_pos, expected);
    in_pos += in_used;
    out_pos += out_got;
    // Skip zero padding between members.
    while (in_pos < gz.size() && gz[in_pos] == '\0') ++in_pos;
    if (in_pos + 2 <= gz.size() && !(static_cast<unsigned char>(gz[in_pos]) == 0x1f &&
                                     static_cast<unsigned char>(gz[in_pos + 1]) == 0x8b))
      break;
  }
  if (out_pos < expected)
    cli::fail_input(path, "truncated: {} bytes of header and voxel data expected, {} found", expected, out_pos);
  out.resize(out_pos);
  return out;
}

}  // namespace

bool is_nifti_path(const std::string& path) { return ends_with(path, ".nii") || ends_with(path, ".nii.gz"); }

Volume read_nifti(const std::string& path) {
  const std::string raw = io::read_file(path);
  if (raw.empty()) cli::fail_input(path, "empty file");
  const bool gz = raw.size() >= 2 && static_cast<unsigned char>(raw[0]) == 0x1f && static_cast<unsigned char>(raw[1]) == 0x8b;
  std::string head = gz ? gunzip_prefix(path, raw, 544) : raw.substr(0, 544);
  const Header h = parse_header(path, reinterpret_cast<const unsigned char*>(head.data()), head.size());
  const std::size_t n = static_cast<std::size_t>(h.dim[1] * h.dim[2] * h.dim[3]);
  const std::size_t need = static_cast<std::size_t>(h.vox_offset) + n * type_size(h.datatype);
  std::vector<unsigned char> inflated;
  const unsigned char* bytes;
  std::size_t size;
  if (gz) {
    // Deflate expands at most 1032:1: a header that needs more than the compressed data can hold is
    // refused before its buffer is allocated.
    if (static_cast<double>(need) > 1032.0 * static_cast<double>(raw.size()) + 65536.0)
      cli::fail_input(path, "truncated: the header describes {} bytes, more than {} bytes of gzip data can hold",
                      need, raw.size());
    inflated = gunzip_all(path, raw, need);
    bytes = inflated.data();
    size = inflated.size();
  } else {
    bytes = reinterpret_cast<const unsigned char*>(raw.data());
    size = raw.size();
  }
  if (size < need)
    cli::fail_input(path, "truncated: {} bytes of header and voxel data expected, {} found", need, size);
  Volume v;
  v.format = "nifti";
  v.stored_type = type_name(h.datatype);
  v.dim = {h.dim[1], h.dim[2], h.dim[3]};
  bool unit = true;
  for (int i = 0; i < 3; ++i) {
    double s = std::fabs(h.pixdim[i + 1]);
    if (!(s > 0) || !std::isfinite(s)) s = 1.0;
    v.spacing[i] = s;
    if (s != 1.0) unit = false;
  }
  v.spacing_in_header = !unit;
  v.data.resize(n);
  const unsigned char* src = bytes + h.vox_offset;
  switch (h.datatype) {
    case 2: convert<std::uint8_t>(src, n, h.swap, v.data.data()); break;
    case 4: convert<std::int16_t>(src, n, h.swap, v.data.data()); break;
    case 8: convert<std::int32_t>(src, n, h.swap, v.data.data()); break;
    case 16: convert<float>(src, n, h.swap, v.data.data()); break;
    case 64: convert<double>(src, n, h.swap, v.data.data()); break;
    case 256: convert<std::int8_t>(src, n, h.swap, v.data.data()); break;
    case 512: convert<std::uint16_t>(src, n, h.swap, v.data.data()); break;
    case 768: convert<std::uint32_t>(src, n, h.swap, v.data.data()); break;
  }
  // nibabel applies scl_slope/scl_inter unless the slope is 0 or non-finite.
  if (std::isfinite(h.scl_slope) && h.scl_slope != 0 && std::isfinite(h.scl_inter) &&
      !(h.scl_slope == 1 && h.scl_inter == 0)) {
    const float a = static_cast<float>(h.scl_slope), b = static_cast<float>(h.scl_inter);
    for (auto& x : v.data) x = a * x + b;
  }
  return v;
}

void write_nifti_i16(const std::string& path, const std::int16_t* data, std::array<std::int64_t, 3> dim,
                     std::array<double, 3> spacing, bool with_spacing, int gzip_level) {
  std::vector<unsigned char> buf(352, 0);
  auto put = [&](std::size_t off, auto v) { std::memcpy(buf.data() + off, &v, sizeof v); };
  put(0, std::int32_t{348});
  buf[39] = 0;
  const std::int16_t d[8] = {3, static_cast<std::int16_t>(dim[0]), static_cast<std::int16_t>(dim[1]),
                             static_cast<std::int16_t>(dim[2]), 1, 1, 1, 1};
  for (int i = 0; i < 8; ++i) put(40 + 2 * i, d[i]);
  put(70, std::int16_t{4});
  put(72, std::int16_t{16});
  const float pd[8] = {1.0f, with_spacing ? static_cast<float>(spacing[0]) : 1.0f,
                       with_spacing ? static_cast<float>(spacing[1]) : 1.0f,
                       with_spacing ? static_cast<float>(spacing[2]) : 1.0f, 1, 1, 1, 1};
  for (int i = 0; i < 8; ++i) put(76 + 4 * i, pd[i]);
  put(108, 352.0f);
  put(112, 0.0f);
  put(116, 0.0f);
  buf[123] = 2;  // mm
  if (with_spacing) {
    put(254, std::int16_t{1});  // sform: scanner
    put(252, std::int16_t{1});
    put(256, 0.0f);
    put(260, 0.0f);
    put(264, 0.0f);
    const float sx[4] = {static_cast<float>(spacing[0]), 0, 0, 0};
    const float sy[4] = {0, static_cast<float>(spacing[1]), 0, 0};
    const float sz[4] = {0, 0, static_cast<float>(spacing[2]), 0};
    for (int i = 0; i < 4; ++i) {
      put(280 + 4 * i, sx[i]);
      put(296 + 4 * i, sy[i]);
      put(312 + 4 * i, sz[i]);
    }
  }
  std::memcpy(buf.data() + 344, "n+1\0", 4);
  const std::size_t n = static_cast<std::size_t>(dim[0] * dim[1] * dim[2]);
  buf.resize(352 + 2 * n);
  std::memcpy(buf.data() + 352, data, 2 * n);
  io::AtomicFile f(path, true);
  if (ends_with(path, ".gz")) {
    std::unique_ptr<libdeflate_compressor, void (*)(libdeflate_compressor*)> c(libdeflate_alloc_compressor(gzip_level),
                                                                                libdeflate_free_compressor);
    std::vector<unsigned char> out(libdeflate_gzip_compress_bound(c.get(), buf.size()));
    const std::size_t m = libdeflate_gzip_compress(c.get(), buf.data(), buf.size(), out.data(), out.size());
    if (m == 0) cli::fail(cli::Exit::runtime, path, "gzip compression failed");
    f.stream().write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(m));
  } else {
    f.stream().write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
  }
  f.commit();
}

}  // namespace hse::image
