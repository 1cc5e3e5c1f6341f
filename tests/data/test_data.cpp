// IDX reading: plain and gzip files round-trip; every malformed file gives an error that names
// the file and the problem.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "support/testing.hpp"

namespace convnet {
namespace {

namespace fs = std::filesystem;

class IdxFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("convnet_idx_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // IDX bytes: magic 0x000008<rank>, big-endian dims, then values.
  static std::string idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& v) {
    std::string b = {0, 0, 8, static_cast<char>(dims.size())};
    for (uint32_t d : dims)
      for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<char>(d >> shift));
    b.append(v.begin(), v.end());
    return b;
  }
  std::string write(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  std::string write_gz(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
    return path;
  }
  static std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  }

  fs::path dir_;
};

std::vector<uint8_t> pixels(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 37 % 256);
  return v;
}

TEST_F(IdxFiles, PlainAndGzipRoundTrip) {
  const auto values = pixels(3 * 4 * 5);
  const std::string bytes = idx_bytes({3, 4, 5}, values);
  for (const std::string& path : {write("a-idx3-ubyte", bytes), write_gz("a-idx3-ubyte.gz", bytes)}) {
    const IdxArray a = read_idx(path);
    EXPECT_EQ(a.dims, (std::vector<int64_t>{3, 4, 5}));
    EXPECT_EQ(a.values, values);
  }
}

TEST_F(IdxFiles, DatasetScalesPixelsAndPairsLabels) {
  write_gz("train-images-idx3-ubyte.gz", idx_bytes({2, 2, 2}, {0, 255, 51, 102, 1, 2, 3, 4}));
  write("train-labels-idx1-ubyte", idx_bytes({2}, {7, 3}));
  const Dataset d = load_mnist_split(dir_.string(), "train");
  ASSERT_EQ(d.shape(), (Shape{2, 1, 2, 2}));
  EXPECT_EQ(d.labels(), (std::vector<int32_t>{7, 3}));
  EXPECT_EQ(d.sample_shape(), (Shape{1, 2, 2}));
  // Gathering sample 1 then 0: bytes / 255 in batch order, with their labels.
  const int64_t order[] = {1, 0};
  float x[8];
  int32_t labels[2];
  d.gather(order, x, labels);
  EXPECT_FLOAT_EQ(x[0], 1.0f / 255);
  EXPECT_FLOAT_EQ(x[3], 4.0f / 255);
  EXPECT_FLOAT_EQ(x[5], 1.0f);
  EXPECT_FLOAT_EQ(x[6], 0.2f);
  EXPECT_EQ(labels[0], 3);
  EXPECT_EQ(labels[1], 7);
  Dataset copy = d;
  copy.truncate(1);
  EXPECT_EQ(copy.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_EQ(copy.labels(), (std::vector<int32_t>{7}));
}

TEST_F(IdxFiles, MissingFileAndDirectory) {
  EXPECT_NE(error_of([&] { read_idx((dir_ / "nope").string()); }).find("nope: no such file"),
            std::string::npos);
  const std::string msg = error_of([&] { load_mnist_split((dir_ / "absent").string(), "train"); });
  EXPECT_NE(msg.find("absent: data directory not found"), std::string::npos) << msg;
  const std::string missing = error_of([&] { load_mnist_split(dir_.string(), "train"); });
  EXPECT_NE(missing.find("missing train-images-idx3-ubyte"), std::string::npos) << missing;
}

TEST_F(IdxFiles, BadMagic) {
  const std::string path = write("bad", "\x12\x34\x56\x78 and more");
  const std::string msg = error_of([&] { read_idx(path); });
  EXPECT_NE(msg.find(path + ": bad magic number 0x12345678"), std::string::npos) << msg;
  const std::string shorts = write("shorts", std::string("\0\0\x0b\x01\0\0\0\x01" "ab", 10));
  EXPECT_NE(error_of([&] { read_idx(shorts); }).find("unsupported IDX element type 0xb"),
            std::string::npos);
}

TEST_F(IdxFiles, TruncatedPlainAndGzip) {
  std::string bytes = idx_bytes({10, 28, 28}, pixels(10 * 28 * 28));
  bytes.resize(bytes.size() - 100);
  const std::string plain = write("t-idx3-ubyte", bytes);
  const std::string msg = error_of([&] { read_idx(plain); });
  EXPECT_NE(msg.find(plain + ": truncated: expected 7840 bytes of IDX data at byte 16, got 7740"),
            std::string::npos)
      << msg;
  // A gzip stream cut short: the compressed bytes end early.
  const std::string gz = write_gz("full.gz", idx_bytes({10, 28, 28}, pixels(10 * 28 * 28)));
  std::string compressed;
  {
    std::ifstream in(gz, std::ios::binary);
    compressed.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string cut = write("cut.gz", compressed.substr(0, compressed.size() / 2));
  const std::string gz_msg = error_of([&] { read_idx(cut); });
  EXPECT_NE(gz_msg.find(cut + ": truncated"), std::string::npos) << gz_msg;
  // A corrupt header declaring 8 GiB in a tiny plain file: reported as truncation up front.
  const std::string huge = write("huge", idx_bytes({2048, 2048, 2048}, {1, 2, 3}));
  EXPECT_NE(error_of([&] { read_idx(huge); }).find("truncated: expected 8589934592 bytes"),
            std::string::npos);
  // The same header gzip-compressed: the size is only known by inflating, and the reader grows
  // its buffer as data arrives instead of allocating the 8 GiB the header claims.
  const std::string huge_gz = write_gz("huge.gz", idx_bytes({2048, 2048, 2048}, {1, 2, 3}));
  EXPECT_NE(error_of([&] { read_idx(huge_gz); })
                .find("truncated: expected 8589934592 bytes of IDX data at byte 16, got 3"),
            std::string::npos);
  // Header cut inside the dimensions.
  const std::string header = write("h", idx_bytes({10, 28, 28}, {}).substr(0, 9));
  EXPECT_NE(error_of([&] { read_idx(header); }).find("truncated: expected 4 bytes of IDX dimension"),
            std::string::npos);
}

TEST_F(IdxFiles, TrailingBytes) {
  const std::string path = write("long", idx_bytes({2}, {1, 2}) + "xx");
  EXPECT_NE(error_of([&] { read_idx(path); }).find("unexpected bytes after the 2 values"),
            std::string::npos);
}

TEST_F(IdxFiles, LabelCountMismatchAndRange) {
  const std::string images = write("i", idx_bytes({3, 2, 2}, pixels(12)));
  const std::string labels = write("l", idx_bytes({2}, {1, 2}));
  const std::string msg = error_of([&] { load_idx_dataset(images, labels); });
  EXPECT_NE(msg.find("has 3 images but"), std::string::npos) << msg;
  EXPECT_NE(msg.find("has 2 labels"), std::string::npos) << msg;
  const std::string big = write("big", idx_bytes({3}, {1, 12, 2}));
  EXPECT_NE(error_of([&] { load_idx_dataset(images, big); }).find("label 12 of sample 1"),
            std::string::npos);
}

TEST_F(IdxFiles, EmptyFileSaysSo) {
  const std::string path = write("train-images-idx3-ubyte", "");
  EXPECT_EQ(error_of([&] { read_idx(path); }), path + ": empty file (0 bytes), not an IDX file");
}

// An image-folder dataset with one of train/ and test/ is told what it lacks, not that IDX
// files are missing (which is what the loader falls back to for an unknown folder).
TEST_F(IdxFiles, ImageFolderWithoutTestSaysWhatItLacks) {
  fs::create_directories(dir_ / "train" / "cat");
  EXPECT_EQ(error_of([&] { load_mnist_split(dir_.string(), "train"); }),
            dir_.string() +
                ": has train/ but no test/ folder: an image-folder dataset needs "
                "train/ and test/, each with one sub-folder per class");
  fs::rename(dir_ / "train", dir_ / "test");
  EXPECT_EQ(error_of([&] { load_mnist_split(dir_.string(), "t10k"); }),
            dir_.string() +
                ": has test/ but no train/ folder: an image-folder dataset needs "
                "train/ and test/, each with one sub-folder per class");
}

// Both a plain and a gzipped copy of an IDX file: loaded when they hold the same data, refused
// naming both when they do not (which one loaded would otherwise decide the data silently).
TEST_F(IdxFiles, PlainAndGzipCopiesMustAgree) {
  const std::string labels = idx_bytes({2}, {1, 0});
  write("train-images-idx3-ubyte", idx_bytes({2, 1, 2}, {1, 2, 3, 4}));
  write_gz("train-images-idx3-ubyte.gz", idx_bytes({2, 1, 2}, {1, 2, 3, 4}));
  write("train-labels-idx1-ubyte", labels);
  write_gz("train-labels-idx1-ubyte.gz", labels);
  EXPECT_EQ(load_mnist_split(dir_.string(), "train").labels(), (std::vector<int32_t>{1, 0}));

  const std::string images = (dir_ / "train-images-idx3-ubyte").string();
  write_gz("train-images-idx3-ubyte.gz", idx_bytes({2, 1, 2}, {1, 2, 9, 4}));
  EXPECT_EQ(error_of([&] { load_mnist_split(dir_.string(), "train"); }),
            images + " and " + images +
                ".gz both exist and hold different data (they differ at byte 18 of the inflated "
                "data): remove the one that is out of date");
  const std::string label_path = (dir_ / "train-labels-idx1-ubyte").string();
  write_gz("train-images-idx3-ubyte.gz", idx_bytes({2, 1, 2}, {1, 2, 3, 4}));
  write_gz("train-labels-idx1-ubyte.gz", labels + "x");
  EXPECT_EQ(error_of([&] { load_mnist_split(dir_.string(), "train"); }),
            label_path + " and " + label_path +
                ".gz both exist and hold different data (one ends at byte 10): remove the one "
                "that is out of date");
}

// --- running out of memory -----------------------------------------------------------------
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;  // they reserve terabytes of address space: no cap fits
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// The message of the convnet::Error that f throws in a child process whose address space is
// capped at what it already maps plus 64 MiB, so that a large allocation fails there (and only
// there) as it would on a machine without the memory.
std::string error_when_memory_is_short(const std::function<void()>& f) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return "(no pipe)";
  const pid_t child = fork();
  if (child == 0) {
    close(pipe_fds[0]);
    std::ifstream status("/proc/self/status");
    uint64_t mapped_kib = 0;
    for (std::string line; std::getline(status, line);)
      if (line.rfind("VmSize:", 0) == 0) mapped_kib = std::stoull(line.substr(7));
    const rlimit cap{(mapped_kib << 10) + (64 << 20), (mapped_kib << 10) + (64 << 20)};
    std::string message = "(no error)";
    if (mapped_kib == 0 || setrlimit(RLIMIT_AS, &cap) != 0) {
      message = "(cannot cap memory)";
    } else {
      try {
        f();
      } catch (const Error& e) {
        message = e.what();
      } catch (const std::exception& e) {
        message = std::string("not a convnet::Error: ") + e.what();
      }
    }
    const ssize_t written = ::write(pipe_fds[1], message.data(), message.size());
    _exit(written == static_cast<ssize_t>(message.size()) ? 0 : 1);
  }
  close(pipe_fds[1]);
  std::string message;
  char buffer[4096];
  for (ssize_t got; (got = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;)
    message.append(buffer, static_cast<size_t>(got));
  close(pipe_fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  return message;
}

// A data set that does not fit in memory is reported as the data stage's, naming the file and
// what it needed, not as a bare "std::bad_alloc". The files are sparse: 1 GiB that take no disk.
TEST_F(IdxFiles, OutOfMemoryLoadingDataNamesTheFileAndSize) {
  if (kSanitized) GTEST_SKIP() << "a sanitizer's reserved address space leaves nothing to cap";
  const std::string idx = write("train-images-idx3-ubyte", idx_bytes({16384, 256, 256}, {}));
  fs::resize_file(idx, 16 + (uint64_t{1} << 30));
  EXPECT_EQ(error_when_memory_is_short([&] { read_idx(idx); }),
            idx +
                ": out of memory loading data: its IDX header declares 16384x256x256 values, "
                "1073741824 bytes (1.0 GiB)");

  const std::string cifar = write("test_batch.bin", "");
  fs::resize_file(cifar, 3073 * 400000);  // label 0 and black pixels, 400000 times
  EXPECT_EQ(error_when_memory_is_short([&] { load_cifar10(dir_.string(), "test"); }),
            cifar +
                ": out of memory loading data: its 400000 images of 3x32x32 need 1228800000 "
                "bytes (1.1 GiB), on top of the 0 bytes of images already read");

  fs::create_directories(dir_ / "folder" / "cat");
  std::ofstream((dir_ / "folder" / "cat" / "one.pgm").string(), std::ios::binary)
      << "P5 2 2 255\n"
      << std::string(4, '\x7f');
  EXPECT_EQ(error_when_memory_is_short([&] {
              load_image_folder((dir_ / "folder").string(), Shape{3, 20000, 20000});
            }),
            (dir_ / "folder").string() +
                ": out of memory loading data: its 1 image of "
                "3x20000x20000 need 1200000000 bytes (1.1 GiB)");
}

}  // namespace
}  // namespace convnet
