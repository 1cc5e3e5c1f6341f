// IDX reader (the MNIST file format: http://yann.lecun.com/exdb/mnist/): a big-endian header
// of magic 0x0000 TT DD (TT type, DD number of dimensions), DD big-endian uint32 sizes, then
// the values. zlib's gzread reads gzip and plain files alike, so both are accepted.
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "convnet/data.hpp"
#include "data/loading.hpp"

namespace convnet {
namespace {

class GzFile {
 public:
  explicit GzFile(const std::string& path) : path_(path) {
    std::error_code ec;
    CONVNET_CHECK(std::filesystem::exists(path, ec), path, ": no such file");
    CONVNET_CHECK(!std::filesystem::is_directory(path, ec), path, ": is a directory, not a file");
    CONVNET_CHECK(std::filesystem::file_size(path, ec) != 0 || ec, path,
                  ": empty file (0 bytes), not an IDX file");
    file_ = gzopen(path.c_str(), "rb");
    CONVNET_CHECK(file_ != nullptr, path, ": cannot open: ", std::strerror(errno));
  }
  ~GzFile() {
    if (file_) gzclose(file_);
  }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;

  // Reads up to `size` bytes; returns how many were read. Throws on a corrupt stream.
  size_t read(void* out, size_t size) {
    size_t done = 0;
    while (done < size) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(size - done, 1u << 30));
      const int got = gzread(file_, static_cast<char*>(out) + done, chunk);
      if (got < 0) {
        int code = 0;
        const char* message = gzerror(file_, &code);
        throw Error(detail::concat(path_, ": truncated or corrupt compressed data after byte ", offset_ + done,
                                   ": ", message));
      }
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    offset_ += done;
    return done;
  }
  // Reads exactly `size` bytes of `what`, or throws naming the shortfall.
  void read_exact(void* out, size_t size, const char* what) {
    const uint64_t start = offset_;
    const size_t got = read(out, size);
    CONVNET_CHECK(got == size, path_, ": truncated: expected ", size, " bytes of ", what,
                  " at byte ", start, ", got ", got);
  }
  // True when the file is not gzip-compressed (zlib reads it as it is).
  bool is_plain() const { return gzdirect(file_) == 1; }
  bool at_end() {
    char probe;
    return read(&probe, 1) == 0;
  }

 private:
  std::string path_;
  gzFile file_ = nullptr;
  uint64_t offset_ = 0;
};

uint32_t big_endian_u32(const unsigned char* b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

// The values of an IDX file after its header, read into `values`. Throws std::bad_alloc when
// they do not fit in memory (read_idx names the file and the size).
void read_values(GzFile& file, const std::string& path, int rank, uint64_t count,
                 std::vector<uint8_t>& values) {
  if (file.is_plain()) {
    values.resize(static_cast<size_t>(count));
    file.read_exact(values.data(), values.size(), "IDX data");
    return;
  }
  // A compressed file's size says nothing about what it inflates to, so the buffer grows as
  // data arrives (doubling from 1 MiB): a header that claims gigabytes over a short stream is
  // reported as truncated without first allocating what it claims.
  size_t have = 0;
  while (have < count) {
    const size_t want =
        std::min<size_t>(static_cast<size_t>(count), std::max<size_t>(2 * have, 1 << 20));
    values.resize(want);
    const size_t got = file.read(values.data() + have, want - have);
    have += got;
    CONVNET_CHECK(have == want, path, ": truncated: expected ", count,
                  " bytes of IDX data at byte ", 4 + 4 * rank, ", got ", have);
  }
}

}  // namespace

// An IDX file may be stored plain or gzipped. With both there, which one loads would silently
// decide the data, so they must hold the same bytes once inflated; the plain one (no inflating)
// is then read.
std::string find_optional_idx_file(const std::string& dir, const std::string& stem) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string plain = (fs::path(dir) / stem).string(), gz = plain + ".gz";
  const bool has_plain = fs::exists(plain, ec), has_gz = fs::exists(gz, ec);
  if (has_plain && has_gz) {
    GzFile a(plain), b(gz);
    std::vector<char> left(1 << 20), right(1 << 20);
    for (uint64_t at = 0;;) {
      const size_t got_a = a.read(left.data(), left.size()),
                   got_b = b.read(right.data(), right.size());
      const size_t same = static_cast<size_t>(
          std::mismatch(left.begin(), left.begin() + std::min(got_a, got_b), right.begin()).first -
          left.begin());
      if (same < std::min(got_a, got_b) || got_a != got_b)
        throw Error(detail::concat(
            plain, " and ", gz, " both exist and hold different data (",
            same < std::min(got_a, got_b)
                ? detail::concat("they differ at byte ", at + same, " of the inflated data")
                : detail::concat("one ends at byte ", at + std::min(got_a, got_b)),
            "): remove the one that is out of date"));
      if (got_a == 0) break;
      at += got_a;
    }
  }
  if (has_plain) return plain;
  if (has_gz) return gz;
  return "";
}

std::string find_idx_file(const std::string& dir, const std::string& stem) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (std::string found = find_optional_idx_file(dir, stem); !found.empty()) return found;
  // Not an IDX folder: say what is missing for the layout the folder seems meant to have.
  const bool has_train = fs::is_directory(fs::path(dir) / "train", ec);
  const bool has_test = fs::is_directory(fs::path(dir) / "test", ec);
  if (has_train != has_test)
    throw Error(detail::concat(dir, ": has ",
                               has_train ? "train/ but no test/" : "test/ but no train/",
                               " folder: an image-folder dataset needs train/ and test/, each "
                               "with one sub-folder per class"));
  throw Error(detail::concat(dir, ": missing ", stem, " (or ", stem, ".gz)"));
}

IdxArray read_idx(const std::string& path) {
  GzFile file(path);
  unsigned char magic[4];
  file.read_exact(magic, 4, "IDX magic number");
  CONVNET_CHECK(magic[0] == 0 && magic[1] == 0, path, ": bad magic number 0x", std::hex,
                big_endian_u32(magic), std::dec,
                ": not an IDX file (expected 0x000008DD, e.g. 0x00000803 for images)");
  CONVNET_CHECK(magic[2] == 0x08 || magic[2] == 0x0D, path, ": unsupported IDX element type 0x",
                std::hex, int{magic[2]}, std::dec,
                " (unsigned bytes, 0x08, and 32-bit floats, 0x0D, are supported)");
  const uint64_t element = magic[2] == 0x0D ? 4 : 1;
  const int rank = magic[3];
  CONVNET_CHECK(rank >= 1 && rank <= 4, path, ": IDX rank ", rank, " is not between 1 and 4");
  IdxArray out;
  out.type = magic[2];
  uint64_t count = 1;
  for (int i = 0; i < rank; ++i) {
    unsigned char b[4];
    file.read_exact(b, 4, "IDX dimension size");
    const uint32_t d = big_endian_u32(b);
    CONVNET_CHECK(d >= 1 && d <= (1u << 28), path, ": IDX dimension ", i, " has size ", d,
                  ", expected 1 to 268435456");
    out.dims.push_back(d);
    count *= d;
  }
  CONVNET_CHECK(count <= (uint64_t{1} << 33), path, ": IDX holds ", count,
                " values, more than this reader accepts (8 Gi)");
  count *= element;  // from here on, bytes
  // A plain file must hold what its header declares; checking first means a corrupt header is
  // reported as truncation instead of a huge allocation. (Gzip sizes are only known by reading.)
  if (file.is_plain()) {
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(path, ec);
    const uint64_t needed = 4 + 4 * static_cast<uint64_t>(rank) + count;
    CONVNET_CHECK(ec || size >= needed, path, ": truncated: expected ", count,
                  " bytes of IDX data at byte ", 4 + 4 * rank, ", got ",
                  size - std::min<uint64_t>(size, 4 + 4 * static_cast<uint64_t>(rank)));
  }
  try {
    read_values(file, path, rank, count, out.values);
  } catch (const std::bad_alloc&) {
    std::string dims;
    for (int64_t d : out.dims) dims += (dims.empty() ? "" : "x") + std::to_string(d);
    throw Error(detail::concat(path, ": out of memory loading data: its IDX header declares ", dims,
                               " values, ", bytes_text(count)));
  }
  CONVNET_CHECK(file.at_end(), path, ": unexpected bytes after the ", count / element,
                " values the header declares");
  return out;
}

std::vector<float> idx_floats(const IdxArray& idx, const std::string& path) {
  std::vector<float> out;
  if (idx.type == 0x08) {
    out.assign(idx.values.begin(), idx.values.end());
    return out;
  }
  out.resize(idx.values.size() / 4);
  for (size_t i = 0; i < out.size(); ++i) {
    const uint32_t bits = big_endian_u32(idx.values.data() + 4 * i);
    std::memcpy(&out[i], &bits, 4);
    CONVNET_CHECK(std::isfinite(out[i]), path, ": value ", i, " is not a finite number (", out[i],
                  ")");
  }
  return out;
}

}  // namespace convnet
