#include "hse/io/h5.h"

#include <mutex>
#include <hdf5.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "hse/build_info.h"
#include "hse/cli/cli.h"
#include "hse/io/atomic.h"

namespace hse::h5 {
namespace {

struct Quiet {
  Quiet() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }
};
void quiet() { static Quiet q; }

// RAII for HDF5 ids.
struct Id {
  hid_t id = -1;
  herr_t (*close)(hid_t) = nullptr;
  Id() = default;
  Id(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  Id(Id&& o) noexcept : id(o.id), close(o.close) { o.id = -1; }
  Id& operator=(Id&& o) noexcept {
    reset();
    id = o.id;
    close = o.close;
    o.id = -1;
    return *this;
  }
  ~Id() { reset(); }
  void reset() {
    if (id >= 0 && close) close(id);
    id = -1;
  }
  operator hid_t() const { return id; }
  bool ok() const { return id >= 0; }
};

hid_t half_type() {
  static hid_t t = [] {
    hid_t h = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(h, 15, 10, 5, 0, 10);
    H5Tset_size(h, 2);
    H5Tset_precision(h, 16);
    H5Tset_ebias(h, 15);
    return h;
  }();
  return t;
}

hid_t file_type(DType t) {
  switch (t) {
    case DType::f32: return H5T_IEEE_F32LE;
    case DType::f16: return half_type();
    case DType::u8: return H5T_STD_U8LE;
  }
  return H5T_IEEE_F32LE;
}
std::size_t dtype_size(DType t) { return t == DType::f32 ? 4 : t == DType::f16 ? 2 : 1; }

// Registered HDF5 filter ids (https://portal.hdfgroup.org/documentation/hdf5-docs/registered_filter_plugins.html).
constexpr H5Z_filter_t kFilterBlosc = 32001, kFilterLz4 = 32004, kFilterBitshuffle = 32008;
H5Z_filter_t codec_filter(Codec c) {
  switch (c) {
    case Codec::none: return H5Z_FILTER_NONE;
    case Codec::gzip: return H5Z_FILTER_DEFLATE;
    case Codec::lz4: return kFilterLz4;
    case Codec::blosc: return kFilterBlosc;
    case Codec::bitshuffle: return kFilterBitshuffle;
  }
  return H5Z_FILTER_NONE;
}
const char* codec_package(Codec c) {
  switch (c) {
    case Codec::lz4: return "hdf5-filter-plugin";
    case Codec::blosc: return "hdf5-filter-plugin-blosc-serial";
    case Codec::bitshuffle: return "bitshuffle";
    default: return "libhdf5 with zlib";
  }
}
// The filter pipeline of `c` on a dataset creation property list.
void set_codec_filters(hid_t dcpl, Codec c) {
  switch (c) {
    case Codec::none: return;
    case Codec::gzip:
      H5Pset_shuffle(dcpl);
      H5Pset_deflate(dcpl, 4);  // h5py's default level
      return;
    case Codec::lz4: {
      H5Pset_shuffle(dcpl);
      const unsigned cd[1] = {0};  // block size: the plugin's default
      H5Pset_filter(dcpl, kFilterLz4, H5Z_FLAG_MANDATORY, 1, cd);
      return;
    }
    case Codec::blosc: {
      // Slots 0-3 are filled by the filter; then level 5, byte shuffle, the lz4 compressor.
      const unsigned cd[7] = {0, 0, 0, 0, 5, 1, 1};
      H5Pset_filter(dcpl, kFilterBlosc, H5Z_FLAG_MANDATORY, 7, cd);
      return;
    }
    case Codec::bitshuffle: {
      const unsigned cd[2] = {0, 2};  // block size: automatic; then lz4
      H5Pset_filter(dcpl, kFilterBitshuffle, H5Z_FLAG_MANDATORY, 2, cd);
      return;
    }
  }
}

Id vlen_str_type() {
  Id t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

void write_attr(hid_t obj, const std::string& name, const AttrValue& v) {
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
  if (const auto* s = std::get_if<std::string>(&v)) {
    Id type = vlen_str_type();
    Id space(H5Screate(H5S_SCALAR), H5Sclose);
    Id a(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    const char* p = s->c_str();
    H5Awrite(a, type, &p);
  } else if (const auto* d = std::get_if<double>(&v)) {
    Id space(H5Screate(H5S_SCALAR), H5Sclose);
    Id a(H5Acreate2(obj, name.c_str(), H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    H5Awrite(a, H5T_NATIVE_DOUBLE, d);
  } else if (const auto* i = std::get_if<std::int64_t>(&v)) {
    Id space(H5Screate(H5S_SCALAR), H5Sclose);
    Id a(H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    H5Awrite(a, H5T_NATIVE_INT64, i);
  } else if (const auto* vd = std::get_if<std::vector<double>>(&v)) {
    hsize_t n = vd->size();
    Id space(H5Screate_simple(1, &n, nullptr), H5Sclose);
    Id a(H5Acreate2(obj, name.c_str(), H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    H5Awrite(a, H5T_NATIVE_DOUBLE, vd->data());
  } else if (const auto* vi = std::get_if<std::vector<std::int64_t>>(&v)) {
    hsize_t n = vi->size();
    Id space(H5Screate_simple(1, &n, nullptr), H5Sclose);
    Id a(H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    H5Awrite(a, H5T_NATIVE_INT64, vi->data());
  }
}

// A memory string type for reading `file_type`: variable-length or `size` bytes, in the file's
// character set (libhdf5 converts no strings between ASCII and UTF-8).
Id str_mem_type(hid_t file_type, bool vlen, std::size_t size) {
  Id t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t, vlen ? H5T_VARIABLE : size);
  const H5T_cset_t cs = H5Tget_cset(file_type);
  H5Tset_cset(t, cs == H5T_CSET_UTF8 ? H5T_CSET_UTF8 : H5T_CSET_ASCII);
  return t;
}

// Reads an attribute; returns false when its type is not one hse writes.
bool read_attr(hid_t obj, const char* name, AttrValue& out) {
  Id a(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  if (!a.ok()) return false;
  Id type(H5Aget_type(a), H5Tclose);
  Id space(H5Aget_space(a), H5Sclose);
  const int nd = H5Sget_simple_extent_ndims(space);
  hssize_t n = H5Sget_simple_extent_npoints(space);
  if (nd < 0 || n < 0 || n > (1 << 20)) return false;
  const H5T_class_t cls = H5Tget_class(type);
  if (cls == H5T_STRING) {
    if (n != 1) return false;
    if (H5Tis_variable_str(type) > 0) {
      Id mt = str_mem_type(type, true, 0);
      char* p = nullptr;
      if (H5Aread(a, mt, &p) < 0) return false;
      out = std::string(p ? p : "");
      H5free_memory(p);
    } else {
      const std::size_t sz = H5Tget_size(type);
      std::string s(sz, '\0');
      Id mt = str_mem_type(type, false, sz);
      if (H5Aread(a, mt, s.data()) < 0) return false;
      s.resize(std::strlen(s.c_str()));
      out = s;
    }
    return true;
  }
  if (cls == H5T_FLOAT) {
    std::vector<double> v(static_cast<std::size_t>(n));
    if (H5Aread(a, H5T_NATIVE_DOUBLE, v.data()) < 0) return false;
    if (nd == 0) out = v[0];
    else out = v;
    return true;
  }
  if (cls == H5T_INTEGER) {
    std::vector<std::int64_t> v(static_cast<std::size_t>(n));
    if (H5Aread(a, H5T_NATIVE_INT64, v.data()) < 0) return false;
    if (nd == 0) out = v[0];
    else out = v;
    return true;
  }
  return false;
}

std::vector<std::string> read_strings(hid_t file, const char* name, const std::string& path) {
  std::vector<std::string> out;
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0) return out;
  Id ds(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
  if (!ds.ok()) cli::fail_input(path, "cannot open dataset {}", name);
  Id space(H5Dget_space(ds), H5Sclose);
  if (H5Sget_simple_extent_ndims(space) != 1) cli::fail_input(path, "dataset {} is not one-dimensional", name);
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space, &n, nullptr);
  Id type(H5Dget_type(ds), H5Tclose);
  if (H5Tget_class(type) != H5T_STRING) cli::fail_input(path, "dataset {} does not hold strings", name);
  if (n == 0) return out;
  // A count no real file holds (libhdf5 accepts huge extents that were never written).
  if (n > (hsize_t(1) << 31)) cli::fail_input(path, "dataset {} claims {} entries", name, n);
  if (H5Tis_variable_str(type) > 0) {
    std::vector<char*> p(n, nullptr);
    Id mt = str_mem_type(type, true, 0);
    if (H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, p.data()) < 0) cli::fail_input(path, "cannot read {}", name);
    for (auto* s : p) out.emplace_back(s ? s : "");
    H5Dvlen_reclaim(mt, space, H5P_DEFAULT, p.data());
  } else {
    const std::size_t sz = H5Tget_size(type);
    if (sz == 0 || sz > (std::size_t(1) << 20) || n * sz > (std::size_t(1) << 33))
      cli::fail_input(path, "dataset {}: {} strings of {} bytes", name, n, sz);
    std::vector<char> buf(n * sz + 1, '\0');
    Id mt = str_mem_type(type, false, sz);
    if (H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0) cli::fail_input(path, "cannot read {}", name);
    for (hsize_t i = 0; i < n; ++i) {
      std::string s(buf.data() + i * sz, sz);
      s.resize(std::strlen(s.c_str()));
      out.push_back(s);
    }
  }
  return out;
}

void write_strings(hid_t file, const char* name, const std::vector<std::string>& v) {
  hsize_t n = v.size();
  Id type = vlen_str_type();
  Id space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  Id ds(H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  std::vector<const char*> p;
  p.reserve(v.size());
  for (const auto& s : v) p.push_back(s.c_str());
  if (n) H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, p.data());
}

std::string iso_time() {
  std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::f16: return "float16";
    case DType::u8: return "uint8";
  }
  return "?";
}

DType parse_dtype(const std::string& s) {
  if (s == "float32" || s == "f32" || s == "fp32") return DType::f32;
  if (s == "float16" || s == "f16" || s == "fp16") return DType::f16;
  if (s == "uint8" || s == "u8") return DType::u8;
  cli::fail_usage("--dtype: '{}' is not one of float32, float16", s);
}

std::uint16_t float_to_half(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  std::uint32_t mant = x & 0x7fffffu;
  const int exp = static_cast<int>((x >> 23) & 0xff);
  if (exp == 255) return static_cast<std::uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0u));
  int e = exp - 127 + 15;
  if (e >= 31) return static_cast<std::uint16_t>(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return static_cast<std::uint16_t>(sign);
    mant |= 0x800000u;
    const int shift = 14 - e;
    std::uint32_t h = mant >> shift;
    const std::uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return static_cast<std::uint16_t>(sign | h);
  }
  std::uint32_t h = (static_cast<std::uint32_t>(e) << 10) | (mant >> 13);
  const std::uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return static_cast<std::uint16_t>(sign | h);
}

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, x;
  if (exp == 0) {
    if (mant == 0) {
      x = sign;
    } else {
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while (!(mant & 0x400u));
      x = sign | (static_cast<std::uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    x = sign | 0x7f800000u | (mant << 13);
  } else {
    x = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

std::string provenance_record(const std::string& tool, const std::vector<std::string>& argv) {
  nlohmann::json j;
  j["tool"] = tool;
  j["version"] = HSE_VERSION;
  j["git"] = HSE_GIT;
  j["arguments"] = cli::joined_args(argv);
  j["time"] = iso_time();
  return j.dump();
}

const char* codec_name(Codec c) {
  switch (c) {
    case Codec::none: return "none";
    case Codec::gzip: return "gzip";
    case Codec::lz4: return "lz4";
    case Codec::blosc: return "blosc";
    case Codec::bitshuffle: return "bitshuffle";
  }
  return "none";
}

Codec parse_codec(const std::string& s) {
  for (Codec c : {Codec::none, Codec::gzip, Codec::lz4, Codec::blosc, Codec::bitshuffle})
    if (s == codec_name(c)) return c;
  throw cli::Error(cli::Exit::usage, "", "unknown compression '" + s + "' (none, gzip, lz4, blosc, bitshuffle)");
}

bool codec_available(Codec c) {
  quiet();
  if (c == Codec::none) return true;
  if (H5Zfilter_avail(codec_filter(c)) <= 0) return false;
  unsigned info = 0;
  if (H5Zget_filter_info(codec_filter(c), &info) < 0) return false;
  return (info & H5Z_FILTER_CONFIG_ENCODE_ENABLED) && (info & H5Z_FILTER_CONFIG_DECODE_ENABLED);
}

const char* plugin_dir_hint() { return "/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins"; }

// ---- Writer -----------------------------------------------------------------
struct Writer::Dataset {
  Id ds;
  DType dtype;
  std::vector<hsize_t> item_shape;
  std::size_t item_elems = 1;
  hsize_t rows = 0;
  std::vector<unsigned char> conv;
};

Writer::Writer(const std::string& path, const std::string& kind) : path_(path) {
  quiet();
  io::check_writable(path_);
  temp_ = io::make_temp_path(path_);
  file_ = H5Fcreate(temp_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file_ < 0) {
    io::forget_temp_path(temp_);
    cli::fail(cli::Exit::runtime, path_, "cannot write output: cannot create a file in its directory");
  }
  set_attr("hse_format", std::string("hse"));
  set_attr("hse_format_version", fmt::format("{}.{}", kFormatMajor, kFormatMinor));
  set_attr("hse_kind", kind);
}

Writer::~Writer() {
  if (!committed_) {
    sets_.clear();
    if (file_ >= 0) H5Fclose(file_);
    std::remove(temp_.c_str());
    io::forget_temp_path(temp_);
  }
}

void Writer::add_dataset(const std::string& name, DType dtype, const std::vector<std::uint64_t>& item_shape) {
  auto d = std::make_unique<Dataset>();
  d->dtype = dtype;
  std::vector<hsize_t> dims{0}, maxdims{H5S_UNLIMITED}, chunk{1};
  for (auto s : item_shape) {
    d->item_shape.push_back(s);
    dims.push_back(s);
    maxdims.push_back(s);
    chunk.push_back(s);
    d->item_elems *= s;
  }
  // Keep chunks below HDF5's 4 GiB limit: split the leading item axis when needed.
  std::size_t bytes = d->item_elems * dtype_size(dtype);
  for (std::size_t k = 1; k < chunk.size() && bytes > (1u << 30); ++k) {
    while (chunk[k] > 1 && bytes > (1u << 30)) {
      bytes /= chunk[k];
      chunk[k] = (chunk[k] + 1) / 2;
      bytes *= chunk[k];
    }
  }
  Id space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), maxdims.data()), H5Sclose);
  Id dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data());
  set_codec_filters(dcpl, codec_);
  d->ds = Id(H5Dcreate2(file_, name.c_str(), file_type(dtype), space, H5P_DEFAULT, dcpl, H5P_DEFAULT), H5Dclose);
  if (!d->ds.ok()) cli::fail(cli::Exit::runtime, path_, "cannot create dataset {}", name);
  sets_[name] = std::move(d);
}

void Writer::set_codec(Codec c) {
  if (!codec_available(c))
    cli::fail(cli::Exit::resource, path_,
              "cannot write {}-compressed datasets: this libhdf5 finds no {} filter plugin (Debian: apt install {}; "
              "or set HDF5_PLUGIN_PATH to the directory that holds it, such as {})",
              codec_name(c), codec_name(c), codec_package(c), plugin_dir_hint());
  codec_ = c;
}

void Writer::append(const std::string& name, const float* item) {
  auto it = sets_.find(name);
  if (it == sets_.end()) throw std::logic_error("h5::Writer::append: unknown dataset " + name);
  Dataset& d = *it->second;
  if (d.dtype == DType::f32) return append_raw(name, item);
  d.conv.resize(d.item_elems * dtype_size(d.dtype));
  if (d.dtype == DType::f16) {
    auto* h = reinterpret_cast<std::uint16_t*>(d.conv.data());
    for (std::size_t i = 0; i < d.item_elems; ++i) h[i] = float_to_half(item[i]);
  } else {
    for (std::size_t i = 0; i < d.item_elems; ++i) {
      const float v = std::nearbyint(item[i]);
      d.conv[i] = static_cast<unsigned char>(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  }
  append_raw(name, d.conv.data());
}

void Writer::append_raw(const std::string& name, const void* item) {
  auto it = sets_.find(name);
  if (it == sets_.end()) throw std::logic_error("h5::Writer::append_raw: unknown dataset " + name);
  Dataset& d = *it->second;
  std::vector<hsize_t> dims{d.rows + 1};
  dims.insert(dims.end(), d.item_shape.begin(), d.item_shape.end());
  if (H5Dset_extent(d.ds, dims.data()) < 0) cli::fail(cli::Exit::runtime, path_, "cannot extend dataset {}", name);
  Id fspace(H5Dget_space(d.ds), H5Sclose);
  std::vector<hsize_t> start(dims.size(), 0), count = dims;
  start[0] = d.rows;
  count[0] = 1;
  H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
  Id mspace(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), H5Sclose);
  const hid_t mtype = d.dtype == DType::f32 ? H5T_NATIVE_FLOAT : file_type(d.dtype);
  if (H5Dwrite(d.ds, mtype, mspace, fspace, H5P_DEFAULT, item) < 0)
    cli::fail(cli::Exit::runtime, path_, "cannot write dataset {} (disk full?)", name);
  ++d.rows;
}

void Writer::add_id(const std::string& id) { ids_.push_back(id); }

void Writer::set_attr(const std::string& name, const AttrValue& value) {
  Id root(H5Gopen2(file_, "/", H5P_DEFAULT), H5Gclose);
  write_attr(root, name, value);
}

void Writer::add_provenance(const std::vector<std::string>& records) {
  provenance_.insert(provenance_.end(), records.begin(), records.end());
}

void Writer::commit() {
  for (const auto& [name, d] : sets_)
    if (d->rows != ids_.size())
      throw std::logic_error(fmt::format("h5::Writer: dataset {} has {} items but {} ids", name, d->rows, ids_.size()));
  write_strings(file_, "ids", ids_);
  write_strings(file_, "provenance", provenance_);
  sets_.clear();
  const herr_t rc = H5Fclose(file_);
  file_ = -1;
  if (rc < 0) cli::fail(cli::Exit::runtime, path_, "cannot finish HDF5 file (disk full?)");
  io::commit_temp(temp_, path_);
  committed_ = true;
}

// ---- Reader -----------------------------------------------------------------
namespace {
#if defined(__x86_64__) && defined(__GNUC__)
// F16C's vcvtph2ps, 8 halves at a time: exact, as every half is a float (NaN payloads aside,
// which it quietens). The software loop widened about 600 M halves/s, a third of the speed of
// reading float32 from the page cache (bench/bench_storage.py).
__attribute__((target("f16c,avx"))) void halves_to_floats_f16c(const std::uint16_t* h, float* out, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i))));
  for (; i < n; ++i) out[i] = half_to_float(h[i]);
}
#endif
void halves_to_floats(const std::uint16_t* h, float* out, std::size_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool f16c = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
  if (f16c) return halves_to_floats_f16c(h, out, n);
#endif
  for (std::size_t i = 0; i < n; ++i) out[i] = half_to_float(h[i]);
}

// A compressed dataset whose filter this libhdf5 cannot decode: one clear error naming the
// filter and where its plugin comes from, instead of a failed read.
void check_filters(hid_t ds, const std::string& path, const std::string& name) {
  Id dcpl(H5Dget_create_plist(ds), H5Pclose);
  const int n = H5Pget_nfilters(dcpl);
  for (int k = 0; k < n; ++k) {
    unsigned flags = 0, info = 0;
    std::size_t ncd = 0;
    char fname[128] = {0};
    const H5Z_filter_t id = H5Pget_filter2(dcpl, static_cast<unsigned>(k), &flags, &ncd, nullptr, sizeof fname, fname, &info);
    if (id < 0 || H5Zfilter_avail(id) > 0) continue;
    std::string plugin = "its plugin";
    for (Codec c : {Codec::lz4, Codec::blosc, Codec::bitshuffle})
      if (codec_filter(c) == id) plugin = fmt::format("its plugin (Debian: apt install {})", codec_package(c));
    cli::fail(cli::Exit::resource, path,
              "dataset '{}' is compressed with HDF5 filter {} ({}), which this libhdf5 cannot decode: install {} or "
              "set HDF5_PLUGIN_PATH to its directory (such as {})",
              name, static_cast<int>(id), fname[0] ? fname : "unnamed", plugin, plugin_dir_hint());
  }
}
}  // namespace

struct Reader::File {
  std::string path;
  Id file;
  std::map<std::string, Id> sets;
};

Reader::Reader(const std::vector<std::string>& paths, const std::string& expected_kind) {
  quiet();
  if (paths.empty()) cli::fail_usage("no input HDF5 file given");
  for (const auto& p : paths) {
    std::error_code ec;
    if (!std::filesystem::exists(p, ec)) cli::fail_input(p, "no such file");
    if (H5Fis_hdf5(p.c_str()) <= 0) cli::fail_input(p, "not an HDF5 file");
    auto f = std::make_unique<File>();
    f->path = p;
    f->file = Id(H5Fopen(p.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (!f->file.ok()) cli::fail_input(p, "cannot open HDF5 file");
    Id root(H5Gopen2(f->file, "/", H5P_DEFAULT), H5Gclose);
    AttrValue fmtv, verv, kindv;
    if (!read_attr(root, "hse_format", fmtv) || std::get_if<std::string>(&fmtv) == nullptr ||
        std::get<std::string>(fmtv) != "hse")
      cli::fail_input(p, "not an hse feature file (no hse_format attribute)");
    if (!read_attr(root, "hse_format_version", verv) || !std::get_if<std::string>(&verv))
      cli::fail_input(p, "no hse_format_version attribute");
    const std::string ver = std::get<std::string>(verv);
    int major = -1;
    try {
      major = std::stoi(ver.substr(0, ver.find('.')));
    } catch (const std::exception&) {
    }
    if (major != kFormatMajor)
      throw cli::Error(cli::Exit::incompatible, p,
                       fmt::format("format version {} is not supported (this hse reads {}.x)", ver, kFormatMajor),
                       major > kFormatMajor ? "the file was written by a newer hse; upgrade hse" : "");
    if (!read_attr(root, "hse_kind", kindv) || !std::get_if<std::string>(&kindv))
      cli::fail_input(p, "no hse_kind attribute");
    const std::string kind = std::get<std::string>(kindv);
    if (!expected_kind.empty() && kind != expected_kind)
      cli::fail_input(p, "kind is '{}', expected '{}'", kind, expected_kind);
    if (files_.empty()) {
      kind_ = kind;
      H5O_info_t info;
      (void)info;
      const int na = H5Aget_num_attrs(root);
      for (int i = 0; i < na; ++i) {
        char name[256];
        Id a(H5Aopen_by_idx(root, ".", H5_INDEX_NAME, H5_ITER_INC, static_cast<hsize_t>(i), H5P_DEFAULT,
                            H5P_DEFAULT),
             H5Aclose);
        if (!a.ok() || H5Aget_name(a, sizeof name, name) < 0) continue;
        AttrValue v;
        if (read_attr(root, name, v)) attrs_[name] = v;
      }
    } else if (kind != kind_) {
      cli::fail_input(p, "kind is '{}', but the first file's kind is '{}'", kind, kind_);
    }
    auto ids = read_strings(f->file, "ids", p);
    for (std::size_t r = 0; r < ids.size(); ++r) {
      ids_.push_back(ids[r]);
      where_.emplace_back(files_.size(), r);
    }
    files_.push_back(std::move(f));
  }
}

Reader::~Reader() = default;

bool Reader::has_dataset(const std::string& name) const {
  return H5Lexists(files_[0]->file, name.c_str(), H5P_DEFAULT) > 0;
}

std::vector<std::uint64_t> Reader::item_shape(const std::string& name) const {
  std::vector<std::uint64_t> first;
  for (std::size_t fi = 0; fi < files_.size(); ++fi) {
    auto& f = *files_[fi];
    if (H5Lexists(f.file, name.c_str(), H5P_DEFAULT) <= 0) cli::fail_input(f.path, "no dataset '{}'", name);
    Id ds(H5Dopen2(f.file, name.c_str(), H5P_DEFAULT), H5Dclose);
    Id space(H5Dget_space(ds), H5Sclose);
    const int nd = H5Sget_simple_extent_ndims(space);
    if (nd < 1 || nd > 8) cli::fail_input(f.path, "dataset '{}' has {} dimensions", name, nd);
    std::vector<hsize_t> dims(static_cast<std::size_t>(nd));
    H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    std::size_t rows = 0;
    for (auto& w : where_)
      if (w.first == fi) ++rows;
    if (dims[0] != rows)
      cli::fail_input(f.path, "dataset '{}' has {} items but /ids has {}", name, dims[0], rows);
    std::vector<std::uint64_t> shape(dims.begin() + 1, dims.end());
    if (fi == 0) first = shape;
    else if (shape != first) cli::fail_input(f.path, "dataset '{}' item shape differs from the first file's", name);
  }
  return first;
}

std::size_t Reader::item_size(const std::string& name) const {
  std::size_t n = 1;
  for (auto s : item_shape(name)) n *= s;
  return n;
}

void Reader::read(const std::string& name, std::size_t index, float* out) const {
  if (index >= where_.size()) throw std::out_of_range("h5::Reader::read: index");
  // The HDF5 library is not thread-safe: reads from the trainers' data workers (and the main
  // thread's validation) take turns.
  static std::mutex library;
  std::lock_guard<std::mutex> lock(library);
  auto& f = *files_[where_[index].first];
  const hsize_t row = where_[index].second;
  auto it = f.sets.find(name);
  if (it == f.sets.end()) {
    // First read of `name` in this file: the schema checks of item_shape (rank, one item per id,
    // the same item shape in every shard) come before any hyperslab or buffer is sized from it.
    (void)item_shape(name);
    Id ds(H5Dopen2(f.file, name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!ds.ok()) cli::fail_input(f.path, "no dataset '{}'", name);
    check_filters(ds, f.path, name);
    it = f.sets.emplace(name, std::move(ds)).first;
  }
  const hid_t ds = it->second;
  Id fspace(H5Dget_space(ds), H5Sclose);
  const int nd = H5Sget_simple_extent_ndims(fspace);
  std::vector<hsize_t> dims(static_cast<std::size_t>(nd));
  H5Sget_simple_extent_dims(fspace, dims.data(), nullptr);
  std::vector<hsize_t> start(dims.size(), 0), count = dims;
  start[0] = row;
  count[0] = 1;
  H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
  Id mspace(H5Screate_simple(nd, count.data(), nullptr), H5Sclose);
  Id type(H5Dget_type(ds), H5Tclose);
  std::size_t n = 1;
  for (std::size_t k = 1; k < count.size(); ++k) n *= count[k];
  herr_t rc;
  if (H5Tget_class(type) == H5T_FLOAT && H5Tget_size(type) == 2) {
    std::vector<std::uint16_t> h(n);
    rc = H5Dread(ds, half_type(), mspace, fspace, H5P_DEFAULT, h.data());
    halves_to_floats(h.data(), out, n);
  } else {
    rc = H5Dread(ds, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT, out);
  }
  if (rc < 0) cli::fail_input(f.path, "cannot read item {} of dataset '{}' (corrupt file?)", row, name);
}

std::string Reader::attr_string(const std::string& name, const std::string& fallback) const {
  auto it = attrs_.find(name);
  if (it == attrs_.end()) return fallback;
  if (const auto* s = std::get_if<std::string>(&it->second)) return *s;
  return fallback;
}

std::vector<std::string> Reader::provenance() const {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (auto& f : files_)
    for (auto& r : read_strings(f->file, "provenance", f->path))
      if (seen.insert(r).second) out.push_back(r);
  return out;
}

}  // namespace hse::h5
