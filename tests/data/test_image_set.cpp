// Image sets read as they are used (convnet/image_set.hpp, Dataset::from_image_index): list files,
// torchvision's crop rules, JPEG decoding at reduced scale, and batches that do not depend on the
// number of decoding threads.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "convnet/files.hpp"
#include "convnet/image.hpp"
#include "convnet/image_set.hpp"
#include "support/testing.hpp"

namespace convnet {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

template <class Fn>
void expect_error_contains(Fn&& fn, const std::string& text) {
  const std::string error = testing::error_of(fn);
  EXPECT_TRUE(testing::has(error, text)) << "error: '" << error << "', expected: '" << text << "'";
}

// A smooth colour image (JPEG keeps it within a few levels), w x h, values 10 to 240.
Image gradient(int64_t width, int64_t height, int shift = 0) {
  Image image{3, height, width, std::vector<uint8_t>(static_cast<size_t>(3 * width * height))};
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < height; ++y)
      for (int64_t x = 0; x < width; ++x)
        image.pixels[static_cast<size_t>((c * height + y) * width + x)] =
            static_cast<uint8_t>(10 + 25 * c + 100 * x / width + 40 * y / height + shift % 40);
  return image;
}

TEST(ImageList, ReadsPathsAndLabels) {
  const ImageIndex numbered = parse_image_list(
      "# a comment\n\na.jpg 1\r\n  sub dir/b c.png\t0\n/abs/d.jpg 3\n", "list.txt", "/data");
  ASSERT_EQ(numbered.files.size(), 3u);
  EXPECT_EQ(numbered.files[0], "/data/a.jpg");
  EXPECT_EQ(numbered.files[1], "/data/sub dir/b c.png");  // the last blank separates the label
  EXPECT_EQ(numbered.files[2], "/abs/d.jpg");
  EXPECT_EQ(numbered.labels, (std::vector<int32_t>{1, 0, 3}));
  EXPECT_EQ(numbered.class_names, (std::vector<std::string>{"0", "1", "2", "3"}));

  const ImageIndex named = parse_image_list("x.jpg dog\ny.jpg cat\nz.jpg dog\n", "l", "");
  EXPECT_EQ(named.files[0], "x.jpg");
  EXPECT_EQ(named.class_names, (std::vector<std::string>{"cat", "dog"}));  // sorted
  EXPECT_EQ(named.labels, (std::vector<int32_t>{1, 0, 1}));
}

TEST(ImageList, BadListsNameTheLine) {
  expect_error_contains([] { parse_image_list("a.jpg 0\nno_label\n", "list.txt", ""); },
                        "list.txt:2: expected '<image path> <label>'");
  expect_error_contains([] { parse_image_list("a.jpg 0\nb.jpg 123456789\n", "list.txt", ""); },
                        "list.txt:2: label 123456789 is past the most classes");
  expect_error_contains([] { parse_image_list("# only a comment\n", "list.txt", ""); },
                        "list.txt: the list has no images");
  expect_error_contains([] { read_image_list("/nonexistent/list.txt"); },
                        "/nonexistent/list.txt: image list not found");
}

TEST(ImageTransform, ParsesAndPrintsBack) {
  for (const char* text : {"resize", "random-resized-crop:0.08,1:0.75,1.3333333333333333",
                           "center-crop:36+flip", "center-crop"}) {
    const ImageTransform t = ImageTransform::parse(text, "--t");
    EXPECT_EQ(ImageTransform::parse(t.str(), "--t").str(), t.str()) << text;
  }
  const ImageTransform rrc = ImageTransform::parse("random-resized-crop:0.25,0.5+flip", "--t");
  EXPECT_EQ(rrc.crop, ImageTransform::Crop::RandomResized);
  EXPECT_DOUBLE_EQ(rrc.scale_min, 0.25);
  EXPECT_DOUBLE_EQ(rrc.scale_max, 0.5);
  EXPECT_DOUBLE_EQ(rrc.ratio_min, 0.75);  // torchvision's default ratio kept
  EXPECT_TRUE(rrc.horizontal_flip);
  EXPECT_TRUE(rrc.random());
  EXPECT_FALSE(ImageTransform::parse("center-crop:40", "--t").random());
  expect_error_contains([] { ImageTransform::parse("random-resized-crop:0.5,0.2", "--t"); },
                        "--t: expected the area scale as LO,HI");
  expect_error_contains([] { ImageTransform::parse("random-resized-crop:0.5,2", "--t"); },
                        "at most 1");
  expect_error_contains([] { ImageTransform::parse("crop", "--t"); }, "--t: expected resize");
  expect_error_contains([] { ImageTransform::parse("center-crop:0", "--t"); },
                        "center-crop:RESIZE");
}

TEST(CropBox, RandomResizedCropFollowsTorchvision) {
  const ImageTransform t = ImageTransform::parse("random-resized-crop:0.2,0.6:0.5,2+flip", "--t");
  Rng rng(7);
  int flips = 0;
  for (int i = 0; i < 500; ++i) {
    const CropBox b = crop_box(t, 120, 160, 32, 32, rng);
    // Whole pixels, inside the image, an area share and aspect within the ranges (up to the
    // rounding of the sides to whole pixels).
    EXPECT_EQ(b.x, std::floor(b.x));
    EXPECT_EQ(b.width, std::floor(b.width));
    EXPECT_GE(b.x, 0);
    EXPECT_GE(b.y, 0);
    EXPECT_LE(b.x + b.width, 160);
    EXPECT_LE(b.y + b.height, 120);
    const double share = b.width * b.height / (160.0 * 120.0);
    EXPECT_GT(share, 0.2 * 0.97);
    EXPECT_LT(share, 0.6 * 1.03);
    EXPECT_GT(b.width / b.height, 0.5 * 0.95);
    EXPECT_LT(b.width / b.height, 2.0 * 1.05);
    flips += b.flip;
  }
  EXPECT_GT(flips, 200);
  EXPECT_LT(flips, 300);
  // The same stream gives the same boxes.
  Rng a(3), b(3);
  const CropBox first = crop_box(t, 120, 160, 32, 32, a), second = crop_box(t, 120, 160, 32, 32, b);
  EXPECT_EQ(first.x, second.x);
  EXPECT_EQ(first.height, second.height);
  // No crop of the asked shape fits a 1000x10 strip in 10 tries: torchvision's fallback, the
  // largest centred crop with the ratio clamped to 2: 20 wide, 10 high.
  const ImageTransform square = ImageTransform::parse("random-resized-crop:0.9,1:0.5,2", "--t");
  const CropBox strip = crop_box(square, 10, 1000, 8, 8, rng);
  EXPECT_EQ(strip.width, 20);
  EXPECT_EQ(strip.height, 10);
  EXPECT_EQ(strip.x, 490);
  EXPECT_EQ(strip.y, 0);
}

TEST(CropBox, CenterCropMapsTorchvisionsResizeBack) {
  // torchvision Resize(36) of a 200x100 image is 72x36; CenterCrop(32) starts at row
  // round(2) = 2, column round(20) = 20: in the original, from (20 * 200/72, 2 * 100/36),
  // 32 * 200/72 wide and 32 * 100/36 high.
  const ImageTransform t = ImageTransform::parse("center-crop:36", "--t");
  Rng rng(1);
  const CropBox b = crop_box(t, 100, 200, 32, 32, rng);
  EXPECT_NEAR(b.x, 20 * 200.0 / 72, 1e-9);
  EXPECT_NEAR(b.y, 2 * 100.0 / 36, 1e-9);
  EXPECT_NEAR(b.width, 32 * 200.0 / 72, 1e-9);
  EXPECT_NEAR(b.height, 32 * 100.0 / 36, 1e-9);
  EXPECT_FALSE(b.flip);
  // The whole image for Resize; a resize smaller than the crop is an error.
  const CropBox whole = crop_box(ImageTransform{}, 100, 200, 32, 32, rng);
  EXPECT_EQ(whole.width, 200);
  EXPECT_EQ(whole.height, 100);
  expect_error_contains(
      [&] { crop_box(ImageTransform::parse("center-crop:20", "--t"), 100, 200, 32, 32, rng); },
      "smaller than the 32x32 crop");
}

TEST(Jpeg, DecodesAtTheReductionAsked) {
  TempDir dir;
  const Image original = gradient(161, 97);
  write_file_atomic(dir.path("g.jpg"), encode_jpeg(original, 95));
  const Image full = read_image(dir.path("g.jpg"), 3);
  ASSERT_EQ(full.width, 161);
  ASSERT_EQ(full.height, 97);
  int worst = 0;
  for (size_t i = 0; i < full.pixels.size(); ++i)
    worst = std::max(worst, std::abs(int{full.pixels[i]} - int{original.pixels[i]}));
  EXPECT_LE(worst, 12);
  int64_t seen_h = 0, seen_w = 0;
  const Image quarter = read_image(dir.path("g.jpg"), 3, 1 << 26, [&](int64_t h, int64_t w) {
    seen_h = h;
    seen_w = w;
    return 4;
  });
  EXPECT_EQ(seen_h, 97);
  EXPECT_EQ(seen_w, 161);
  EXPECT_EQ(quarter.width, 41);  // ceil(161 / 4)
  EXPECT_EQ(quarter.height, 25);
  // A quarter-size pixel is close to the mean of the full image's 4x4 block.
  const int64_t y = 10, x = 20;
  double mean = 0;
  for (int64_t dy = 0; dy < 4; ++dy)
    for (int64_t dx = 0; dx < 4; ++dx)
      mean += full.pixels[static_cast<size_t>((4 * y + dy) * 161 + 4 * x + dx)];
  EXPECT_NEAR(quarter.pixels[static_cast<size_t>(y * 41 + x)], mean / 16, 6);
  // Grey from colour: libjpeg-turbo's luma.
  EXPECT_EQ(read_image(dir.path("g.jpg"), 1).channels, 1);
  expect_error_contains(
      [&] { read_image(dir.path("g.jpg"), 3, 1 << 26, [](int64_t, int64_t) { return 3; }); },
      "1/1, 1/2, 1/4 or 1/8");
  // A truncated file is an error naming it, not an image filled with grey.
  const std::string bytes = encode_jpeg(original, 95);
  write_file_atomic(dir.path("cut.jpg"), bytes.substr(0, bytes.size() / 2));
  expect_error_contains([&] { read_image(dir.path("cut.jpg"), 3); }, "cut.jpg: cannot decode");
  // Other formats come whole; the reduction is not asked for.
  write_png(dir.path("g.png"), original);
  bool asked = false;
  EXPECT_EQ(read_image(dir.path("g.png"), 3, 1 << 26,
                       [&](int64_t, int64_t) {
                         asked = true;
                         return 2;
                       })
                .width,
            161);
  EXPECT_FALSE(asked);
}

TEST(Jpeg, TinyImagesBecomeSamples) {
  // Crops a pixel or two wide, enlarged: stb_image_resize's sub-region sampling asserts on some
  // of these (found by tests/fuzz/fuzz_image), so regions are cut out first.
  TempDir dir;
  const ImageTransform t = ImageTransform::parse("random-resized-crop+flip", "--t");
  for (const auto& [w, h] : {std::pair{3, 1}, {1, 1}, {2, 5}, {1, 9}}) {
    const Image image = gradient(w, h);
    write_png(dir.path("tiny.png"), image);
    for (uint64_t seed = 0; seed < 20; ++seed) {
      Rng rng(seed);
      std::vector<uint8_t> out(3 * 5 * 4);
      load_image_sample(dir.path("tiny.png"), t, Shape{3, 5, 4}, rng, out.data());
      if (w == 1 && h == 1) {  // one pixel enlarged is that pixel everywhere
        for (int c = 0; c < 3; ++c) {
          for (int i = 0; i < 20; ++i) {
            ASSERT_EQ(out[static_cast<size_t>(c * 20 + i)], image.pixels[static_cast<size_t>(c)]);
          }
        }
      }
    }
  }
}

// Two classes of JPEG and PNG files of varied sizes under dir/<class>/.
void write_set(const TempDir& dir, int per_class) {
  for (int label = 0; label < 2; ++label) {
    fs::create_directories(dir.path("set/c" + std::to_string(label)));
    for (int i = 0; i < per_class; ++i) {
      const Image image = gradient(40 + 7 * i, 30 + 5 * label + 3 * i, 90 * label + i);
      const std::string stem = dir.path("set/c" + std::to_string(label) + "/" + std::to_string(i));
      if (i % 3 == 2)
        write_png(stem + ".png", image);
      else
        write_file_atomic(stem + ".jpg", encode_jpeg(image, 90));
    }
  }
}

TEST(StreamedSet, BatchesDoNotDependOnTheWorkers) {
  TempDir dir;
  write_set(dir, 9);
  const ImageIndex index = index_image_folder(dir.path("set"));
  ASSERT_EQ(index.files.size(), 18u);
  EXPECT_EQ(index.class_names, (std::vector<std::string>{"c0", "c1"}));
  const ImageTransform t = ImageTransform::parse("random-resized-crop:0.3,1+flip", "--t");
  std::vector<int64_t> order(18);
  std::iota(order.rbegin(), order.rend(), 0);  // any order
  std::vector<std::vector<float>> batches;
  for (int workers : {1, 3, 4}) {
    const Dataset set = Dataset::from_image_index(index, Shape{3, 16, 16}, t, workers);
    EXPECT_TRUE(set.streamed());
    EXPECT_EQ(set.size(), 18);
    EXPECT_EQ(set.classes(), 2);
    std::vector<float> x(18 * 3 * 16 * 16);
    std::vector<int32_t> labels(18);
    set.gather(order, x.data(), labels.data(), nullptr, 12345);
    EXPECT_EQ(labels[0], 1);  // sample 17
    EXPECT_EQ(labels[17], 0);
    batches.push_back(x);
    // A sample is the same in any batch and position: its draw is keyed by its index.
    std::vector<float> one(3 * 16 * 16);
    int32_t label = -1;
    const int64_t sample = 5;
    set.gather(std::span(&sample, 1), one.data(), &label, nullptr, 12345);
    EXPECT_TRUE(std::equal(one.begin(), one.end(), x.begin() + 12 * 3 * 16 * 16));
    // Another epoch's draw crops differently.
    set.gather(std::span(&sample, 1), one.data(), &label, nullptr, 999);
    EXPECT_FALSE(std::equal(one.begin(), one.end(), x.begin() + 12 * 3 * 16 * 16));
  }
  EXPECT_EQ(batches[0], batches[1]);
  EXPECT_EQ(batches[0], batches[2]);
  for (float v : batches[0]) ASSERT_TRUE(v >= 0 && v <= 1);
}

TEST(StreamedSet, ResizeMatchesTheInMemoryFolder) {
  TempDir dir;
  write_set(dir, 4);
  // 24 x 20 samples of images 40-61 wide and 30-44 high: none is twice the sample's size, so
  // every JPEG is decoded whole, as load_image_folder decodes it.
  const Dataset memory = load_image_folder(dir.path("set"), Shape{3, 24, 20});
  const Dataset streamed = Dataset::from_image_index(index_image_folder(dir.path("set")),
                                                     Shape{3, 24, 20}, ImageTransform{}, 2);
  ASSERT_EQ(memory.size(), streamed.size());
  std::vector<int64_t> order(static_cast<size_t>(memory.size()));
  std::iota(order.begin(), order.end(), 0);
  std::vector<float> a(order.size() * 3 * 24 * 20), b(a.size());
  std::vector<int32_t> la(order.size()), lb(order.size());
  memory.gather(order, a.data(), la.data());
  streamed.gather(order, b.data(), lb.data());
  EXPECT_EQ(la, lb);
  EXPECT_EQ(a, b);  // the same decode and the same resampling: the same bytes
  // Subsets, truncation and channel statistics work on the files.
  const std::vector<int64_t> picks{6, 1};
  const Dataset two = streamed.subset(picks);
  EXPECT_EQ(two.files()[0], streamed.files()[6]);
  EXPECT_EQ(two.labels()[0], streamed.labels()[6]);
  Dataset first = streamed;
  first.truncate(3);
  EXPECT_EQ(first.size(), 3);
  EXPECT_EQ(first.files().size(), 3u);
  const Dataset::ChannelStats s = streamed.channel_stats(), m = memory.channel_stats();
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(s.mean[static_cast<size_t>(c)], m.mean[static_cast<size_t>(c)], 1e-5);
    EXPECT_NEAR(s.stddev[static_cast<size_t>(c)], m.stddev[static_cast<size_t>(c)], 1e-5);
  }
}

TEST(StreamedSet, ABadFileIsNamed) {
  TempDir dir;
  write_set(dir, 2);
  write_file_atomic(dir.path("set/c1/broken.jpg"), "\xFF\xD8\xFF\xE0 not really a JPEG");
  const Dataset set = Dataset::from_image_index(index_image_folder(dir.path("set")), Shape{3, 8, 8},
                                                ImageTransform{}, 2);
  std::vector<int64_t> order(static_cast<size_t>(set.size()));
  std::iota(order.begin(), order.end(), 0);
  std::vector<float> x(order.size() * 192);
  std::vector<int32_t> labels(order.size());
  expect_error_contains([&] { set.gather(order, x.data(), labels.data()); }, "broken.jpg");
  expect_error_contains(
      [&] {
        Dataset::from_image_index(ImageIndex{}, Shape{3, 8, 8}, ImageTransform{}, 1);
      },
      "0 files and 0 labels");
}

}  // namespace
}  // namespace convnet
