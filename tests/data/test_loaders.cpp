// Image files, image folders, CIFAR-10 batches, normalisation, validation splits and
// augmentation. The image folders under tests/data are written by tools/make_test_images.py.
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>

#include "convnet/image.hpp"
#include "support/testing.hpp"

namespace convnet {
namespace {

namespace fs = std::filesystem;
const std::string kData = CONVNET_TEST_DATA_DIR;

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("convnet_loaders_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST(Images, ReadsPngPgmAndJpeg) {
  // The PGM: grey 17 everywhere, 250 at row 2, column 3; read as grey and as RGB.
  const Image grey = read_image(kData + "/images/bar/bar_grey.pgm", 1);
  ASSERT_EQ(grey.channels, 1);
  ASSERT_EQ(grey.height, 10);
  ASSERT_EQ(grey.width, 12);
  EXPECT_EQ(grey.pixels[0], 17);
  EXPECT_EQ(grey.pixels[2 * 12 + 3], 250);
  const Image rgb = read_image(kData + "/images/bar/bar_grey.pgm", 3);
  ASSERT_EQ(rgb.pixels.size(), 3u * 10 * 12);
  for (int c = 0; c < 3; ++c) EXPECT_EQ(rgb.pixels[c * 120 + 2 * 12 + 3], 250) << "channel " << c;

  const Image png = read_image(kData + "/images/disc/disc_0.png", 3);
  EXPECT_EQ(png.channels * png.height * png.width, 3 * 10 * 12);
  const Image jpeg = read_image(kData + "/images/stripes/stripes_jpeg.jpg", 3);
  EXPECT_EQ(jpeg.height, 10);
  EXPECT_EQ(jpeg.width, 12);
}

TEST_F(TempDir, WritePngRoundTripsAndResizeKeepsConstants) {
  Image image{3, 5, 7, {}};
  for (int i = 0; i < 3 * 5 * 7; ++i) image.pixels.push_back(static_cast<uint8_t>(i * 7 % 256));
  const std::string path = (dir_ / "out.png").string();
  write_png(path, image);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  const Image back = read_image(path, 3);
  EXPECT_EQ(back.pixels, image.pixels);

  // A constant image stays constant at any size (the filters' weights sum to one).
  Image flat{1, 6, 6, std::vector<uint8_t>(36, 90)};
  for (auto [h, w] : {std::pair{3, 3}, {12, 9}, {1, 1}}) {
    const Image r = resize_image(flat, h, w);
    ASSERT_EQ(r.pixels.size(), static_cast<size_t>(h * w));
    for (uint8_t v : r.pixels) EXPECT_EQ(v, 90);
  }
  EXPECT_EQ(resize_image(image, 5, 7).pixels, image.pixels);  // same size: untouched
}

TEST_F(TempDir, BadImageFilesNameTheFile) {
  EXPECT_TRUE(testing::has(testing::error_of([] { read_image("/nonexistent/x.png", 3); }),
                           "/nonexistent/x.png: no such file"));
  EXPECT_TRUE(
      testing::has(testing::error_of([&] { read_image(dir_.string(), 3); }), "is a directory"));
  const std::string truncated = kData + "/images_bad/broken/truncated.png";
  EXPECT_TRUE(testing::has(testing::error_of([&] { read_image(truncated, 3); }), truncated,
                           "truncated or corrupt PNG: chunk 'IDAT' at byte 33 declares 354 bytes, "
                           "the file has 160 left"));
  const std::string text = (dir_ / "notes.png").string();
  std::ofstream(text) << "hello, not a picture";
  EXPECT_TRUE(
      testing::has(testing::error_of([&] { read_image(text, 3); }), text, "not a readable image"));
  // A header claiming a huge picture is refused before decoding.
  const std::string big = (dir_ / "big.pgm").string();
  std::ofstream(big, std::ios::binary) << "P5\n30000 30000\n255\n" << std::string(10, '\0');
  EXPECT_TRUE(testing::has(testing::error_of([&] { read_image(big, 1); }), "more than the limit"));
  EXPECT_TRUE(
      testing::has(testing::error_of([] { read_image("x.png", 2); }), "1 (grey) or 3 (RGB)"));
}

// A header declaring a size past the limit is refused as too large, with both sizes; stb_image
// itself says only "unknown image type" of a PNG it will not decode.
TEST_F(TempDir, ImageDeclaringAHugeSizeIsTooLarge) {
  const std::string png = (dir_ / "huge.png").string();
  const unsigned char header[] = {0x89, 'P',  'N', 'G', '\r', '\n', 0x1a, '\n', 0,    0, 0,
                                  13,   'I',  'H', 'D', 'R',  0,    0x01, 0x86, 0xa0, 0, 0x01,
                                  0x86, 0xa0, 8,   2,   0,    0,    0,    0,    0,    0, 0};
  std::ofstream(png, std::ios::binary).write(reinterpret_cast<const char*>(header), sizeof header);
  EXPECT_EQ(testing::error_of([&] { read_image(png, 3); }),
            png +
                ": too large: its PNG header declares 100000x100000 pixels, more than the limit "
                "of 67108864 pixels");
  // A JPEG's start-of-frame after an APP0 segment: 65535 x 65535.
  const std::string jpeg = (dir_ / "huge.jpg").string();
  const unsigned char jpeg_bytes[] = {0xFF, 0xD8, 0xFF, 0xE0, 0,    4,    0,    0,    0xFF,
                                      0xC0, 0,    17,   8,    0xFF, 0xFF, 0xFF, 0xFF, 3,
                                      1,    0x22, 0,    2,    0x11, 1,    3,    0x11, 1};
  std::ofstream(jpeg, std::ios::binary)
      .write(reinterpret_cast<const char*>(jpeg_bytes), sizeof jpeg_bytes);
  EXPECT_EQ(testing::error_of([&] { read_image(jpeg, 3); }),
            jpeg +
                ": too large: its JPEG header declares 65535x65535 pixels, more than the limit "
                "of 67108864 pixels");
  EXPECT_EQ(testing::error_of([&] { read_image(png, 1, 100); }),
            png +
                ": too large: its PNG header declares 100000x100000 pixels, more than the limit "
                "of 100 pixels");
  // Sizes near 2^32 each, whose product does not fit in 64 bits (a fuzzer's find).
  const std::string wide = (dir_ / "wide.png").string();
  unsigned char wide_header[sizeof header];
  std::copy(std::begin(header), std::end(header), wide_header);
  const unsigned char side[] = {0xff, 0xf9, 0x28, 0xff};  // 4294519039
  std::copy(side, side + 4, wide_header + 16);
  std::copy(side, side + 4, wide_header + 20);
  std::ofstream(wide, std::ios::binary)
      .write(reinterpret_cast<const char*>(wide_header), sizeof wide_header);
  EXPECT_EQ(testing::error_of([&] { read_image(wide, 3); }),
            wide +
                ": too large: its PNG header declares 4294519039x4294519039 pixels, more than "
                "the limit of 67108864 pixels");
}

TEST_F(TempDir, EmptyImageFileSaysSo) {
  const std::string empty = (dir_ / "empty.png").string();
  std::ofstream{empty};
  EXPECT_EQ(testing::error_of([&] { read_image(empty, 3); }),
            empty + ": empty file (0 bytes), not an image");
}

// Found by tests/fuzz/fuzz_image: a 16-bit PGM ("P5" 4x554, maxval 574) cut short. Read as RGB,
// stb_image's own channel conversion read past its buffer (a crash); read as grey, the missing
// pixels came back uninitialised. Both are now a truncation error, and whole 16-bit files load.
TEST_F(TempDir, TruncatedSixteenBitPnmIsAnErrorNotACrash) {
  const std::string crash = (dir_ / "crash.pgm").string();
  const unsigned char bytes[] = {0x50, 0x35, 0x34, 0x0a, 0x35, 0x35, 0x34, 0x0a, 0x35,
                                 0x37, 0x34, 0x0a, 0x35, 0x37, 0x34, 0x35, 0x34, 0x0a,
                                 0x35, 0x37, 0x34, 0x35, 0x4a, 0xb4, 0x37, 0x34, 0x28};
  std::ofstream(crash, std::ios::binary).write(reinterpret_cast<const char*>(bytes), sizeof bytes);
  for (int64_t channels : {1, 3})
    EXPECT_TRUE(testing::has(testing::error_of([&] { read_image(crash, channels); }), crash,
                             "truncated: the 4x554 P5 image needs 4432 bytes of pixels, the file "
                             "has 15"));
  // Also found by the fuzzer: a PNG whose IDAT chunk declares 1.3 GB in a 70-byte file, which
  // stb_image allocated before reading.
  const std::string claims = (dir_ / "claims.png").string();
  const unsigned char png[] = {
      0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
      0x44, 0x52, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x04, 0x08, 0x02, 0x00, 0x00,
      0x00, 0xc9, 0x51, 0x62, 0x00, 0x51, 0x00, 0x00, 0x18, 0x49, 0x44, 0x41, 0x54, 0x78,
      0x9c, 0x63, 0x64, 0x60, 0x68, 0x30, 0x62, 0x60, 0x80, 0x23, 0x16, 0x06, 0x1b, 0x06,
      0x64, 0x40, 0x88, 0x0f, 0x00, 0x60, 0xf4, 0x02, 0x0a, 0x71, 0xd4, 0x8b};
  std::ofstream(claims, std::ios::binary).write(reinterpret_cast<const char*>(png), sizeof png);
  EXPECT_TRUE(testing::has(testing::error_of([&] { read_image(claims, 3); }), claims,
                           "chunk 'IDAT' at byte 33 declares 1358954520 bytes"));
  // And a PGM header whose sizes overflowed the byte count of that truncation check.
  const std::string huge = (dir_ / "huge.pgm").string();
  std::ofstream(huge, std::ios::binary) << "P5 4000000000 5400000000 29\n" << "xx";
  EXPECT_TRUE(testing::has(testing::error_of([&] { read_image(huge, 1); }), huge,
                           "truncated: the 4000000000x5400000000 P5 image needs"));
  // A whole 2x1 16-bit PGM: values scale to 8 bits (65535 -> 255, 0 -> 0), grey and as RGB.
  const std::string good = (dir_ / "good16.pgm").string();
  std::ofstream(good, std::ios::binary) << "P5 2 1 65535\n" << std::string("\xff\xff\x00\x00", 4);
  EXPECT_EQ(read_image(good, 1).pixels, (std::vector<uint8_t>{255, 0}));
  EXPECT_EQ(read_image(good, 3).pixels, (std::vector<uint8_t>{255, 0, 255, 0, 255, 0}));
}

TEST(ImageFolder, LoadsClassesInOrderResizedAndSkipsOtherFiles) {
  const Dataset d = load_image_folder(kData + "/images", Shape{3, 8, 8});
  EXPECT_EQ(d.classes(), 3);
  EXPECT_EQ(d.class_names(), (std::vector<std::string>{"bar", "disc", "stripes"}));
  EXPECT_EQ(d.size(),
            5 + 4 + 5);  // bar: 4 PNG + PGM; disc: 4 PNG (README.txt skipped); stripes: 4 + JPEG
  EXPECT_EQ(d.shape(), (Shape{14, 3, 8, 8}));
  const std::vector<int32_t> want{0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2};
  EXPECT_EQ(d.labels(), want);
  // bar_grey.pgm sorts after the PNGs of "bar" (files sorted by name): sample 4, all channels
  // equal; mostly 17/255 away from the bright pixel.
  std::vector<float> x(3 * 8 * 8);
  int32_t label = -1;
  const int64_t index = 4;
  d.gather(std::span(&index, 1), x.data(), &label);
  EXPECT_EQ(label, 0);
  EXPECT_FLOAT_EQ(x[0], x[64]);
  EXPECT_NEAR(x[7 * 8 + 7], 17.0f / 255.0f, 1e-6);

  const Dataset grey = load_image_folder(kData + "/images", Shape{1, 10, 12});
  EXPECT_EQ(grey.shape(), (Shape{14, 1, 10, 12}));
}

TEST(ImageFolder, ErrorsNameTheFolderOrFile) {
  EXPECT_TRUE(testing::has(testing::error_of([] {
                             load_image_folder("/nonexistent", Shape{3, 8, 8});
                           }),
                           "/nonexistent: image folder not found"));
  EXPECT_TRUE(testing::has(testing::error_of([] {
                             load_image_folder(kData + "/images_bad", Shape{3, 8, 8});
                           }),
                           "truncated.png: truncated or corrupt PNG"));
  EXPECT_TRUE(testing::has(testing::error_of([] {
                             load_image_folder(kData + "/images_empty_class", Shape{3, 8, 8});
                           }),
                           "nothing: class folder has no images"));
  EXPECT_TRUE(testing::has(testing::error_of([] {
                             load_image_folder(kData + "/images/bar", Shape{3, 8, 8});
                           }),
                           "no class sub-folders"));
  EXPECT_TRUE(testing::has(testing::error_of([] {
                             load_image_folder(kData + "/images", Shape{2, 8, 8});
                           }),
                           "1 or 3 channels"));
}

// CIFAR-10 batches written here: record r of batch b has label (r + b) % 10 and pixel bytes
// (r + k) % 256.
void write_cifar_batch(const fs::path& path, int records, int batch, bool truncate = false,
                       int bad_label_at = -1) {
  std::ofstream out(path, std::ios::binary);
  for (int r = 0; r < records; ++r) {
    out.put(static_cast<char>(r == bad_label_at ? 10 : (r + batch) % 10));
    const int pixels = truncate && r == records - 1 ? 100 : 3072;
    for (int k = 0; k < pixels; ++k) out.put(static_cast<char>((r + k) % 256));
  }
}

TEST_F(TempDir, Cifar10ReadsBatchesAndNames) {
  for (int b = 1; b <= 5; ++b)
    write_cifar_batch(dir_ / ("data_batch_" + std::to_string(b) + ".bin"), 3, b);
  write_cifar_batch(dir_ / "test_batch.bin", 2, 0);
  std::ofstream(dir_ / "batches.meta.txt")
      << "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
  EXPECT_TRUE(is_cifar10_folder(dir_.string()));
  EXPECT_FALSE(is_mnist_folder(dir_.string()));
  const Dataset train = load_cifar10(dir_.string(), "train");
  EXPECT_EQ(train.shape(), (Shape{15, 3, 32, 32}));
  EXPECT_EQ(train.labels()[0], 1);  // batch 1, record 0
  EXPECT_EQ(train.labels()[14], (2 + 5) % 10);
  EXPECT_EQ(train.class_names().at(9), "truck");
  std::vector<float> x(3072);
  int32_t label = 0;
  const int64_t index = 4;  // batch 2, record 1
  train.gather(std::span(&index, 1), x.data(), &label);
  EXPECT_EQ(label, 3);
  EXPECT_FLOAT_EQ(x[0], 1.0f / 255.0f);
  EXPECT_FLOAT_EQ(x[1024 + 5], static_cast<float>((1 + 1024 + 5) % 256) / 255.0f);  // green plane
  EXPECT_EQ(load_cifar10(dir_.string(), "test").size(), 2);
}

TEST_F(TempDir, Cifar10ErrorsNameTheFile) {
  EXPECT_TRUE(testing::has(testing::error_of([&] { load_cifar10(dir_.string(), "test"); }),
                           "test_batch.bin: no such file"));
  write_cifar_batch(dir_ / "test_batch.bin", 3, 0, /*truncate=*/true);
  EXPECT_TRUE(testing::has(testing::error_of([&] { load_cifar10(dir_.string(), "test"); }),
                           "is not a whole number of CIFAR-10 records of 3073 bytes"));
  write_cifar_batch(dir_ / "test_batch.bin", 3, 0, false, /*bad_label_at=*/2);
  EXPECT_TRUE(testing::has(testing::error_of([&] { load_cifar10(dir_.string(), "test"); }),
                           "record 2 has label 10"));
  EXPECT_TRUE(testing::has(testing::error_of([&] { load_cifar10(dir_.string(), "valid"); }),
                           "split must be train or test"));
}

Dataset counting_set(int64_t n, int64_t channels = 2, int64_t size = 3) {
  std::vector<uint8_t> pixels(static_cast<size_t>(n * channels * size * size));
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i % 251);
  std::vector<int32_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[static_cast<size_t>(i)] = static_cast<int32_t>(i % 4);
  return Dataset::from_bytes(Shape{n, channels, size, size}, std::move(pixels), std::move(labels),
                             4);
}

TEST(Normalization, StatsAndGatherAreExact) {
  // Two images of 1 channel, 2 pixels: values 0, 51, 102, 153 (/255) -> mean 0.3, var 0.05.
  Dataset d = Dataset::from_bytes(Shape{2, 1, 1, 2}, {0, 51, 102, 153}, {0, 1}, 2);
  const auto stats = d.channel_stats();
  EXPECT_NEAR(stats.mean[0], 0.3, 1e-6);
  EXPECT_NEAR(stats.stddev[0], std::sqrt(0.05), 1e-6);
  d.set_normalization(stats.mean, stats.stddev);
  float x[4];
  int32_t labels[2];
  const int64_t order[] = {1, 0};
  d.gather(order, x, labels);
  EXPECT_NEAR(x[0], (0.4 - 0.3) / std::sqrt(0.05), 1e-5);
  EXPECT_NEAR(x[3], (0.2 - 0.3) / std::sqrt(0.05), 1e-5);
  EXPECT_NEAR(d.zero_value(0), -0.3 / std::sqrt(0.05), 1e-5);
  EXPECT_TRUE(
      testing::has(testing::error_of([&] { d.set_normalization({0.5f}, {0.0f}); }), "stddev > 0"));
  EXPECT_TRUE(testing::has(testing::error_of([&] {
                             d.set_normalization({0.5f, 0.5f}, {1.0f, 1.0f});
                           }),
                           "one mean and one stddev per channel (1)"));
}

TEST(ValidationSplit, DisjointCompleteAndSeeded) {
  const Dataset d = counting_set(50);
  const TrainValidation a = split_validation(d, 0.2, 9), b = split_validation(d, 0.2, 9);
  EXPECT_EQ(a.validation.size(), 10);
  EXPECT_EQ(a.train.size(), 40);
  EXPECT_EQ(a.validation.labels(), b.validation.labels());
  // Every sample lands on exactly one side: compare first pixels, which are distinct per sample.
  std::multiset<float> seen;
  auto collect = [&](const Dataset& part) {
    std::vector<float> x(static_cast<size_t>(part.size() * 18));
    std::vector<int32_t> labels(static_cast<size_t>(part.size()));
    std::vector<int64_t> order(static_cast<size_t>(part.size()));
    std::iota(order.begin(), order.end(), 0);
    part.gather(order, x.data(), labels.data());
    for (int64_t i = 0; i < part.size(); ++i) seen.insert(x[static_cast<size_t>(i * 18)]);
  };
  collect(a.train);
  collect(a.validation);
  collect(d);
  EXPECT_EQ(seen.size(), 100u);
  for (float v : std::set<float>(seen.begin(), seen.end())) EXPECT_EQ(seen.count(v), 2u) << v;
  EXPECT_NE(split_validation(d, 0.2, 10).validation.labels(), a.validation.labels());
  EXPECT_EQ(split_validation(d, 0.001, 1).validation.size(), 1);  // at least one
  EXPECT_TRUE(testing::has(testing::error_of([&] { split_validation(d, 1.0, 1); }), "[0, 1)"));
}

TEST(Augmentation, CropsWithPaddingAndFlipsExactly) {
  // One 1x3x3 image 1..9 (as floats), normalised so that padding shows as zero_value.
  Tensor<float> images(Shape{1, 1, 3, 3});
  for (int i = 0; i < 9; ++i) images.data()[i] = static_cast<float>(i + 1);
  Dataset d = Dataset::from_floats(images, {0}, 1);
  d.set_normalization({0.5f}, {2.0f});  // zero_value = -0.25
  std::vector<float> scratch;
  // Every output must be the input shifted by (dy, dx) in [-1, 1]², maybe mirrored, padded with
  // -0.25; over many draws every one of the 18 variants appears.
  std::set<std::vector<float>> variants;
  Rng rng(3);
  for (int trial = 0; trial < 400; ++trial) {
    std::vector<float> x(images.data(), images.data() + 9);
    augment_batch({.crop_padding = 1, .horizontal_flip = true}, d, rng, x.data(), 1, scratch);
    bool matched = false;
    for (int flip = 0; flip < 2 && !matched; ++flip)
      for (int dy = -1; dy <= 1 && !matched; ++dy)
        for (int dx = -1; dx <= 1 && !matched; ++dx) {
          bool same = true;
          for (int y = 0; y < 3; ++y)
            for (int c = 0; c < 3; ++c) {
              const int sy = y + dy, sx = (flip ? 2 - c : c) + dx;
              const float want =
                  sy >= 0 && sy < 3 && sx >= 0 && sx < 3 ? images.data()[sy * 3 + sx] : -0.25f;
              same = same && x[static_cast<size_t>(y * 3 + c)] == want;
            }
          matched = same;
        }
    EXPECT_TRUE(matched) << "trial " << trial;
    variants.insert(x);
  }
  EXPECT_EQ(variants.size(), 18u);
  // Same seed, same result; nothing to do without an augmentation.
  std::vector<float> a(images.data(), images.data() + 9), b = a, c = a;
  Rng r1(5), r2(5);
  augment_batch({.crop_padding = 1, .horizontal_flip = true}, d, r1, a.data(), 1, scratch);
  augment_batch({.crop_padding = 1, .horizontal_flip = true}, d, r2, b.data(), 1, scratch);
  EXPECT_EQ(a, b);
  augment_batch({}, d, r1, c.data(), 1, scratch);
  EXPECT_EQ(c, std::vector<float>(images.data(), images.data() + 9));
}

}  // namespace
}  // namespace convnet
