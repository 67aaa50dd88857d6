// The hse HDF5 schema checks (io/h5.cpp, h5::Reader): files that libhdf5 opens, built by this
// target from the input bytes with the HDF5 C API, so that the fuzzer explores the schema (root
// attributes of any type, ids of any type and rank, datasets of any type, rank and length, one or
// two shards) rather than libhdf5's own binary parser. Then everything the tools do with a
// Reader: kind, ids, item shapes and sizes, every item of every dataset, attributes, provenance.
#include <hdf5.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "fuzz_common.h"
#include "hse/io/h5.h"

namespace {
struct Bytes {  // reads the input front to back; zeros once it runs out
  const std::uint8_t* p;
  std::size_t n;
  std::uint8_t u8() { return n ? (--n, *p++) : 0; }
  unsigned pick(unsigned k) { return k ? u8() % k : 0; }
  std::string str(std::size_t max) {
    std::string s;
    for (std::size_t len = pick(static_cast<unsigned>(max) + 1); len && n; --len) s += static_cast<char>(u8());
    return s;
  }
};

std::string choose_string(Bytes& b, const std::vector<std::string>& usual) {
  const unsigned c = b.pick(static_cast<unsigned>(usual.size()) + 1);
  return c < usual.size() ? usual[c] : b.str(12);
}

void string_attr(hid_t obj, const char* name, const std::string& v, bool vlen, bool utf8) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, vlen ? H5T_VARIABLE : std::max<std::size_t>(v.size(), 1));
  H5Tset_cset(t, utf8 ? H5T_CSET_UTF8 : H5T_CSET_ASCII);
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
  if (vlen) {
    const char* c = v.c_str();
    H5Awrite(a, t, &c);
  } else {
    std::string pad = v.empty() ? std::string(1, '\0') : v;
    H5Awrite(a, t, pad.data());
  }
  H5Aclose(a);
  H5Sclose(s);
  H5Tclose(t);
}

void attr(Bytes& b, hid_t obj, const char* name, const std::vector<std::string>& usual) {
  const unsigned how = b.pick(5);
  switch (how) {
    case 0: return;  // absent
    case 1: {        // a number instead of a string
      const double d = b.u8();
      hid_t s = H5Screate(H5S_SCALAR);
      hid_t a = H5Acreate2(obj, name, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT);
      H5Awrite(a, H5T_NATIVE_DOUBLE, &d);
      H5Aclose(a);
      H5Sclose(s);
      return;
    }
    default: {
      const bool vlen = how != 2;  // (sequenced: the order of function arguments is unspecified)
      const std::string v = choose_string(b, usual);
      const bool utf8 = b.pick(2);
      string_attr(obj, name, v, vlen, utf8);
      return;
    }
  }
}

hid_t pick_type(Bytes& b) {
  switch (b.pick(6)) {
    case 0: return H5T_IEEE_F32LE;
    case 1: return H5T_IEEE_F64LE;
    case 2: return H5T_STD_U8LE;
    case 3: return H5T_STD_I32BE;
    case 4: return H5T_IEEE_F32BE;
    default: return 0;  // float16
  }
}

void dataset(Bytes& b, hid_t file, const std::string& name, std::size_t rows) {
  const int nd = static_cast<int>(b.pick(5));  // 0 (scalar) .. 4
  std::vector<hsize_t> dims(static_cast<std::size_t>(nd));
  hsize_t total = 1;
  for (int i = 0; i < nd; ++i) {
    // Now and then a huge extent: libhdf5 accepts it and never allocates unwritten data.
    dims[i] = b.pick(16) == 0 ? (hsize_t(1) << (20 + b.pick(24))) : i == 0 ? (b.pick(4) == 0 ? b.pick(5) : rows) : b.pick(5);
    total *= dims[i];
  }
  hid_t t = pick_type(b);
  hid_t half = -1;
  if (t == 0) {
    half = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(half, 15, 10, 5, 0, 10);
    H5Tset_precision(half, 16);
    H5Tset_size(half, 2);
    H5Tset_ebias(half, 15);
    t = half;
  }
  hid_t s = nd ? H5Screate_simple(nd, dims.data(), nullptr) : H5Screate(H5S_SCALAR);
  hid_t d = H5Dcreate2(file, name.c_str(), t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const bool write = total > 0 && total <= 4096;
  std::vector<float> v(write ? static_cast<std::size_t>(total) : 0);
  for (auto& x : v) x = static_cast<float>(b.u8()) - 128.0f;
  if (d >= 0 && write) H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  if (d >= 0) H5Dclose(d);
  H5Sclose(s);
  if (half >= 0) H5Tclose(half);
}

void ids(Bytes& b, hid_t file, std::size_t rows) {
  const unsigned how = b.pick(6);
  if (how == 0) return;  // absent
  if (how == 1) {        // numbers
    dataset(b, file, "ids", rows);
    return;
  }
  const bool huge = b.pick(16) == 0;  // an extent of 2^40 ids, never written
  std::vector<std::string> v(huge ? 0 : rows);
  for (auto& s : v) s = b.str(6);
  const hsize_t n = huge ? (hsize_t(1) << 40) : rows;
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  hsize_t dims2[2] = {n, 1};
  hid_t s = how == 2 ? H5Screate_simple(2, dims2, nullptr) : H5Screate_simple(1, &n, nullptr);
  hid_t d = H5Dcreate2(file, "ids", t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  std::vector<const char*> p;
  for (auto& x : v) p.push_back(x.c_str());
  if (d >= 0 && n && !huge) H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, p.data());
  if (d >= 0) H5Dclose(d);
  H5Sclose(s);
  H5Tclose(t);
}

void build(Bytes& b, const std::string& path) {
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) return;
  hid_t root = H5Gopen2(f, "/", H5P_DEFAULT);
  attr(b, root, "hse_format", {"hse", "hse", "hse"});
  attr(b, root, "hse_format_version", {"1.0", "1.0", "1.9", "2.0", "0.1", "", "1", ".5", "99999999999999999999.0"});
  attr(b, root, "hse_kind", {"volumes", "embeddings", "slices", "slice_features"});
  attr(b, root, "preprocess.size", {"8,32,32"});
  const std::size_t rows = b.pick(4);
  ids(b, f, rows);
  for (const char* name : {"volumes", "image", "text"})
    if (b.pick(2)) dataset(b, f, name, rows);
  if (b.pick(2)) dataset(b, f, "provenance", rows);
  H5Gclose(root);
  H5Fclose(f);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  Bytes b{data, size};
  const std::string a = hse_fuzz::scratch_file("", "_a.h5"), c = hse_fuzz::scratch_file("", "_b.h5");
  build(b, a);
  const bool two = b.pick(2);
  if (two) build(b, c);
  const std::vector<std::string> kinds{"", "volumes", "embeddings"};
  const std::string expected = kinds[b.pick(3)];
  hse_fuzz::refused_or_parsed([&] {
    std::vector<std::string> paths{a};
    if (two) paths.push_back(c);
    hse::h5::Reader r(paths, expected);
    (void)r.kind();
    (void)r.attr_string("preprocess.size");
    (void)r.provenance();
    for (const char* name : {"volumes", "image", "text", "ids", "missing"}) {
      if (!r.has_dataset(name)) continue;
      const std::size_t n = r.item_size(name);
      if (n > (1u << 20)) continue;
      std::vector<float> out(n);
      for (std::size_t i = 0; i < r.size(); ++i) r.read(name, i, out.data());
    }
  });
  std::remove(a.c_str());
  std::remove(c.c_str());
  return 0;
}
