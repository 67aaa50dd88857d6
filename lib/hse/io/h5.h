// hse feature files: versioned HDF5 with item-major datasets.
//
// Root attributes: hse_format = "hse", hse_format_version = "MAJOR.MINOR",
// hse_kind (volumes, slices, slice_features, embeddings, ...), plus the
// producing parameters. /ids holds one name per item (axis 0 of every
// dataset); /provenance holds one JSON record per tool run. See man/hse-formats.5.
//
// The HDF5 library is not thread-safe here: use a Writer or Reader from one thread at a time,
// except Reader::read, which takes a process-wide lock (the trainers' data workers read at once).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace hse::h5 {

constexpr int kFormatMajor = 1;
constexpr int kFormatMinor = 0;

enum class DType { f32, f16, u8 };
const char* dtype_name(DType t);
DType parse_dtype(const std::string& s);  // "float32"/"f32", "float16"/"f16", "uint8"

// Compression of the item chunks through HDF5 filters. gzip (deflate) is built into libhdf5; lz4,
// blosc and bitshuffle are filter plugins (Debian: hdf5-filter-plugin, hdf5-filter-plugin-blosc-serial,
// bitshuffle), which Debian's libhdf5 finds in its plugin directory and other builds (h5py's wheels)
// through HDF5_PLUGIN_PATH or the hdf5plugin package. Each runs after a byte shuffle (bitshuffle:
// a bit shuffle), lossless. See man/hse-formats.5.
enum class Codec { none, gzip, lz4, blosc, bitshuffle };
const char* codec_name(Codec c);
Codec parse_codec(const std::string& s);  // none, gzip, lz4, blosc, bitshuffle
// Whether this process's libhdf5 can encode and decode `c` (its plugin is found).
bool codec_available(Codec c);
// The directory Debian's packages install HDF5 filter plugins into (what HDF5_PLUGIN_PATH needs).
const char* plugin_dir_hint();

using AttrValue = std::variant<std::string, double, std::int64_t, std::vector<double>, std::vector<std::int64_t>>;
using Attrs = std::map<std::string, AttrValue>;

// One provenance record (JSON): tool, version, arguments, time.
std::string provenance_record(const std::string& tool, const std::vector<std::string>& argv);

class Writer {
 public:
  // Creates the file under a temporary name beside `path`; commit() renames it.
  Writer(const std::string& path, const std::string& kind);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Declares an item-major dataset [N, item_shape...] chunked one item a chunk, compressed with
  // the writer's codec (set_codec; none by default).
  void add_dataset(const std::string& name, DType dtype, const std::vector<std::uint64_t>& item_shape);
  // The codec of the datasets declared after this call; exit 4 (runtime) naming the output when
  // its filter plugin is not installed.
  void set_codec(Codec c);
  // Appends one item (float input, converted to the dataset's type; u8 is rounded and clamped).
  void append(const std::string& name, const float* item);
  // Appends one item given in the dataset's own type.
  void append_raw(const std::string& name, const void* item);
  void add_id(const std::string& id);
  void set_attr(const std::string& name, const AttrValue& value);
  // Provenance records copied from inputs (kept first) and this run's record.
  void add_provenance(const std::vector<std::string>& records);
  void commit();

  std::size_t ids_size() const { return ids_.size(); }
  const std::string& path() const { return path_; }

 private:
  struct Dataset;
  std::string path_, temp_;
  std::int64_t file_ = -1;  // hid_t
  std::map<std::string, std::unique_ptr<Dataset>> sets_;
  std::vector<std::string> ids_;
  std::vector<std::string> provenance_;
  Codec codec_ = Codec::none;
  bool committed_ = false;
};

// One or more files read as a single concatenated set (shards in order).
class Reader {
 public:
  // Validates hse_format, major version (exit 3 when newer/unknown) and kind
  // (exit 3 when it differs; an empty expected_kind accepts any kind).
  Reader(const std::vector<std::string>& paths, const std::string& expected_kind);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  std::size_t size() const { return ids_.size(); }
  const std::vector<std::string>& ids() const { return ids_; }
  const std::string& kind() const { return kind_; }
  bool has_dataset(const std::string& name) const;
  std::vector<std::uint64_t> item_shape(const std::string& name) const;
  std::size_t item_size(const std::string& name) const;  // elements per item
  // Reads item `index` of dataset `name` as float32.
  void read(const std::string& name, std::size_t index, float* out) const;
  // Attributes of the first file.
  const Attrs& attrs() const { return attrs_; }
  std::string attr_string(const std::string& name, const std::string& fallback = {}) const;
  std::vector<std::string> provenance() const;  // all files' records, in order, de-duplicated

 private:
  struct File;
  std::vector<std::unique_ptr<File>> files_;
  std::vector<std::string> ids_;
  std::vector<std::pair<std::size_t, std::size_t>> where_;  // item -> (file, row)
  std::string kind_;
  Attrs attrs_;
};

// float <-> IEEE half conversions (round to nearest even).
std::uint16_t float_to_half(float f);
float half_to_float(std::uint16_t h);

}  // namespace hse::h5
