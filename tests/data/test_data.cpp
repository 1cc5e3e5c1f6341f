// IDX reading: plain and gzip files round-trip; every malformed file gives an error that names
// the file and the problem.
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
  const std::string floats = write("floats", std::string("\0\0\x0d\x01\0\0\0\x01" "abcd", 12));
  EXPECT_NE(error_of([&] { read_idx(floats); }).find("unsupported IDX element type 0xd"),
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

}  // namespace
}  // namespace convnet
