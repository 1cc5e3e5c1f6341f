// Test-only reader for the golden fixtures tools/make_golden.py writes: named float64 tensors
// computed by PyTorch. Not part of the library, and it compares nothing; tests do that. Tests
// locate the fixtures via the CONVNET_GOLDEN_DIR compile definition (a string set in CMake):
// GoldenFile f(std::string(CONVNET_GOLDEN_DIR) + "/linear.bin");
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace convnet::testing {

struct GoldenTensor {
  std::vector<int64_t> shape;  // empty for a scalar
  std::vector<double> data;    // row-major

  int64_t size() const { return static_cast<int64_t>(data.size()); }

  // The single value of a scalar (or one-element) tensor; throws otherwise so a test that
  // expects a hyperparameter does not silently read the first of many values.
  double scalar() const {
    if (data.size() != 1) {
      throw std::runtime_error("golden tensor is not a scalar: it has " +
                               std::to_string(data.size()) + " values");
    }
    return data[0];
  }
};

class GoldenFile {
 public:
  explicit GoldenFile(const std::string& path) : path_(path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("cannot open file");
    const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                           std::istreambuf_iterator<char>());
    if (in.bad()) fail("read error");
    parse(bytes);
  }

  const std::string& path() const { return path_; }

  bool has(const std::string& name) const { return tensors_.count(name) != 0; }

  const GoldenTensor& operator[](const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) fail("no tensor named '" + name + "'");
    return it->second;
  }

  // Names in sorted order, for diagnostics.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(tensors_.size());
    for (const auto& [name, tensor] : tensors_) out.push_back(name);
    return out;
  }

 private:
  static constexpr unsigned char kMagic[8] = {'C', 'N', 'V', 'G', 'O', 'L', 'D', 0};
  static constexpr uint32_t kVersion = 1;
  // convnet tensors have rank <= 4; a rank past this means a corrupt header and is rejected
  // before it can drive a huge allocation.
  static constexpr uint32_t kMaxRank = 8;

  // The format is little-endian; decoding byte by byte keeps the reader independent of the
  // host's byte order and alignment.
  class Cursor {
   public:
    Cursor(const GoldenFile& file, const std::vector<unsigned char>& bytes)
        : file_(file), bytes_(bytes) {}

    size_t remaining() const { return bytes_.size() - pos_; }

    const unsigned char* take(size_t n, const std::string& what) {
      if (n > remaining()) {
        file_.fail("truncated while reading " + what + " (needs " + std::to_string(n) +
                   " bytes at offset " + std::to_string(pos_) + ", " +
                   std::to_string(remaining()) + " left)");
      }
      const unsigned char* p = bytes_.data() + pos_;
      pos_ += n;
      return p;
    }

    uint64_t u64(size_t n, const std::string& what) {
      const unsigned char* p = take(n, what);
      uint64_t v = 0;
      for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
      return v;
    }
    uint32_t u32(const std::string& what) { return static_cast<uint32_t>(u64(4, what)); }
    int64_t i64(const std::string& what) { return static_cast<int64_t>(u64(8, what)); }
    double f64(const std::string& what) { return std::bit_cast<double>(u64(8, what)); }

   private:
    const GoldenFile& file_;
    const std::vector<unsigned char>& bytes_;
    size_t pos_ = 0;
  };

  void parse(const std::vector<unsigned char>& bytes) {
    Cursor cur(*this, bytes);
    if (std::memcmp(cur.take(sizeof kMagic, "magic"), kMagic, sizeof kMagic) != 0) {
      fail("bad magic (not a convnet golden fixture)");
    }
    const uint32_t version = cur.u32("version");
    if (version != kVersion) {
      fail("unsupported version " + std::to_string(version) + " (expected " +
           std::to_string(kVersion) + ")");
    }
    const uint32_t count = cur.u32("tensor count");
    for (uint32_t t = 0; t < count; ++t) {
      const std::string where = "tensor #" + std::to_string(t);
      const uint32_t name_len = cur.u32(where + " name length");
      const unsigned char* name_bytes = cur.take(name_len, where + " name");
      std::string name(reinterpret_cast<const char*>(name_bytes), name_len);
      const std::string what = "tensor '" + name + "'";

      const uint32_t rank = cur.u32(what + " rank");
      if (rank > kMaxRank) fail(what + " has rank " + std::to_string(rank));
      GoldenTensor tensor;
      tensor.shape.resize(rank);
      uint64_t count_values = 1;
      for (uint32_t d = 0; d < rank; ++d) {
        const int64_t dim = cur.i64(what + " dims");
        if (dim < 0) fail(what + " has negative dimension " + std::to_string(dim));
        tensor.shape[d] = dim;
        // Checked against the bytes left so a corrupt dim cannot overflow or over-allocate.
        if (dim != 0 && count_values > cur.remaining() / 8 / static_cast<uint64_t>(dim)) {
          fail("truncated: " + what + " declares more values than the file holds");
        }
        count_values *= static_cast<uint64_t>(dim);
      }
      if (count_values > cur.remaining() / 8) {
        fail("truncated: " + what + " declares " + std::to_string(count_values) +
             " values, only " + std::to_string(cur.remaining() / 8) + " remain");
      }
      tensor.data.resize(count_values);
      for (uint64_t i = 0; i < count_values; ++i) tensor.data[i] = cur.f64(what + " data");

      if (!tensors_.emplace(name, std::move(tensor)).second) fail("duplicate " + what);
    }
    if (cur.remaining() != 0) {
      fail(std::to_string(cur.remaining()) + " trailing bytes after the last tensor");
    }
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("golden file " + path_ + ": " + what);
  }

  std::string path_;
  std::map<std::string, GoldenTensor> tensors_;
};

}  // namespace convnet::testing
