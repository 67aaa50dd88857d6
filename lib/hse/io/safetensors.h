// safetensors: a torch-free reader and writer for the Hugging Face checkpoint
// format, the layer through which hse's models load and save weights.
//
// File layout (https://github.com/huggingface/safetensors, "Format"):
//   8 bytes   N, little-endian u64: the header length
//   N bytes   UTF-8 JSON header, starting with '{', possibly padded with spaces:
//             {"__metadata__": {str: str}, "name": {"dtype": "F32", "shape": [..],
//              "data_offsets": [begin, end]}, ...}
//   the rest  the data buffer; offsets are relative to its start.
//
// Reading validates as the Rust `safetensors` crate does (header <= 100 MB,
// offsets contiguous from 0 covering the buffer exactly, no holes or overlaps,
// shape product x dtype size == end - begin) and, more strictly, rejects
// duplicate keys. Every failure throws hse::cli::Error (exit 3) with a one-line
// message naming the file; no input makes it crash.
//
// Writing lays tensors out as the Python package does (descending dtype
// alignment, then name), with the header padded with spaces to a multiple of
// 8 bytes, so a file with at most one metadata entry is byte-identical to
// `safetensors.numpy.save_file`'s. Files are written atomically.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hse::io {

// Element types, in the crate's order (increasing alignment): the writer
// sorts tensors by descending Dtype, then by name.
enum class Dtype {
  BOOL,
  F4,
  F6_E2M3,
  F6_E3M2,
  U8,
  I8,
  F8_E5M2,
  F8_E4M3,
  F8_E8M0,
  F8_E4M3FNUZ,
  F8_E5M2FNUZ,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  C64,
  F64,
  I64,
  U64,
};

const char* dtype_name(Dtype t);                            // "F32", "BF16", ...
std::optional<Dtype> parse_dtype_name(std::string_view s);  // the exact names above
std::size_t dtype_bits(Dtype t);                            // 4 for F4, 16 for BF16, ...
bool is_float_dtype(Dtype t);                               // F32, F16, BF16, F64: the types to_float() converts

// Scalar conversions. IEEE half uses h5::float_to_half/half_to_float; bfloat16
// rounds to nearest even like torch's c10::BFloat16 (any NaN becomes 0x7fc0).
std::uint16_t float_to_bf16(float f);
float bf16_to_float(std::uint16_t b);
std::uint16_t float_to_f16(float f);
float f16_to_float(std::uint16_t h);

// Converts `count` little-endian elements of a float dtype (F32/F16/BF16/F64)
// at `bytes` (any alignment) to float. Returns false for other dtypes.
bool convert_to_float(Dtype t, const void* bytes, std::size_t count, float* out);
// Converts floats to `t` (F32/F16/BF16/F64), appending the bytes to `out`.
// Returns false for other dtypes.
bool convert_from_float(Dtype t, const float* values, std::size_t count, std::string& out);

struct TensorInfo {
  Dtype dtype = Dtype::F32;
  std::vector<std::int64_t> shape;      // [] for a scalar; a 0 dimension for an empty tensor
  std::uint64_t begin = 0, end = 0;     // data_offsets, relative to the data buffer
  const std::uint8_t* bytes = nullptr;  // the tensor's data (mapped; may be unaligned)
  std::size_t nbytes() const { return static_cast<std::size_t>(end - begin); }
  std::int64_t numel() const;
};

// One safetensors file, memory-mapped read-only. The data stay valid while the
// object lives (moving it keeps them valid).
class SafeTensors {
 public:
  // Maps and validates `path` (throws cli::Error, exit 3, naming the file).
  explicit SafeTensors(const std::string& path);
  // Validates an in-memory image of a file; `label` names it in errors.
  static SafeTensors from_bytes(std::string bytes, const std::string& label);
  ~SafeTensors();
  SafeTensors(SafeTensors&&) noexcept;
  SafeTensors& operator=(SafeTensors&&) noexcept;
  SafeTensors(const SafeTensors&) = delete;
  SafeTensors& operator=(const SafeTensors&) = delete;

  const std::string& path() const { return path_; }
  // Tensor names in byte order (as Python's safe_open(...).keys() lists them).
  const std::vector<std::string>& names() const { return names_; }
  std::size_t size() const { return names_.size(); }
  bool contains(const std::string& name) const;
  // Throws cli::Error (exit 3) "no tensor named '...'" when absent.
  const TensorInfo& info(const std::string& name) const;
  const void* data(const std::string& name) const { return info(name).bytes; }
  // The "__metadata__" map (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::uint64_t header_length() const { return header_len_; }
  // A float dtype tensor converted to float (throws cli::Error for other dtypes).
  std::vector<float> to_float(const std::string& name) const;

 private:
  SafeTensors() = default;
  void parse(const std::uint8_t* p, std::size_t size);
  std::string path_;
  void* map_ = nullptr;
  std::size_t map_size_ = 0;
  std::unique_ptr<std::string> owned_;  // from_bytes()
  std::uint64_t header_len_ = 0;
  std::vector<std::string> names_;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint that may be sharded: a .safetensors file, a
// model.safetensors.index.json file, or a directory holding model.safetensors
// (preferred, as transformers does) or model.safetensors.index.json
// ({"metadata": {...}, "weight_map": {tensor: shard file}}).
class SafeTensorsSet {
 public:
  explicit SafeTensorsSet(const std::string& path);

  const std::string& path() const { return path_; }
  // All tensor names in byte order (the weight_map's keys when sharded).
  const std::vector<std::string>& names() const { return names_; }
  std::size_t size() const { return names_.size(); }
  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  const SafeTensors& shard_of(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const { return shard_of(name).info(name); }
  const void* data(const std::string& name) const { return info(name).bytes; }
  std::vector<float> to_float(const std::string& name) const { return shard_of(name).to_float(name); }
  // A single file's __metadata__, or the index's "metadata" (non-string values
  // as compact JSON, e.g. total_size).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::size_t shard_count() const { return shards_.size(); }
  const SafeTensors& shard(std::size_t i) const { return *shards_[i]; }

 private:
  std::string path_;
  std::vector<std::unique_ptr<SafeTensors>> shards_;
  std::map<std::string, std::size_t> where_;
  std::vector<std::string> names_;
  std::map<std::string, std::string> metadata_;
};

// Collects tensors and writes one safetensors file.
class SafeTensorsWriter {
 public:
  // Copies numel(shape) * dtype size bytes from `bytes`. Throws cli::Error
  // (exit 1) for a duplicate or reserved name, a negative dimension, or a
  // sub-byte dtype whose size is not a whole number of bytes.
  void add(const std::string& name, Dtype dtype, const std::vector<std::int64_t>& shape, const void* bytes);
  // The same without copying: `bytes` must stay valid until write().
  void add_borrowed(const std::string& name, Dtype dtype, const std::vector<std::int64_t>& shape, const void* bytes);
  // Converts floats to `dtype` (F32/F16/BF16/F64) and adds them.
  void add_float(const std::string& name, Dtype dtype, const std::vector<std::int64_t>& shape, const float* values);
  void set_metadata(const std::string& key, const std::string& value);
  std::size_t size() const { return tensors_.size(); }

  // The header JSON, padded with spaces to a multiple of 8 bytes.
  std::string header() const;
  // The whole file in memory.
  std::string serialize() const;
  // Writes the file atomically (temporary file, then rename).
  void write(const std::string& path) const;

 private:
  struct Entry {
    std::string name;
    Dtype dtype;
    std::vector<std::int64_t> shape;
    std::size_t nbytes;
    const void* bytes;
    std::shared_ptr<std::string> owned;
  };
  Entry& prepare(const std::string& name, Dtype dtype, const std::vector<std::int64_t>& shape);
  std::vector<const Entry*> ordered() const;
  std::vector<Entry> tensors_;
  std::map<std::string, std::size_t> index_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace hse::io
