// Regression end to end in the library: real-valued targets in a Dataset (gathered, normalised,
// carried by subsets), read from IDX float files and from a folder's targets.csv (every bad row
// a clear error naming the file and line), the regression figures (MSE, MAE, R²) against hand
// computation, and fit() training on values and on the input itself (an autoencoder), also in
// micro-batches.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "convnet/image.hpp"
#include "support/testing.hpp"

namespace convnet {
namespace {

namespace fs = std::filesystem;

// 1x4x4 images of noise whose target is (mean brightness, 10 x the top-left pixel - 3).
Dataset brightness_set(int64_t count, uint64_t seed) {
  Rng rng(seed);
  Tensor<float> images(Shape{count, 1, 4, 4});
  std::vector<float> targets;
  for (int64_t n = 0; n < count; ++n) {
    float* img = images.data() + n * 16;
    double sum = 0;
    for (int i = 0; i < 16; ++i) sum += img[i] = static_cast<float>(rng.uniform());
    targets.push_back(static_cast<float>(sum / 16));
    targets.push_back(10 * img[0] - 3);
  }
  Dataset d = Dataset::from_floats(std::move(images), std::vector<int32_t>(count), 0);
  d.set_targets(std::move(targets), {"brightness", "corner"});
  return d;
}

std::unique_ptr<Sequential<float>> linear_regressor(int64_t batch) {
  auto m = std::make_unique<Sequential<float>>();
  m->emplace<Flatten>();
  m->emplace<Linear>(LinearOptions{.out_features = 2});
  m->build(Shape{batch, 1, 4, 4}, 7);
  return m;
}

TEST(RegressionData, TargetsAreGatheredNormalisedAndCarried) {
  Dataset d = brightness_set(6, 1);
  ASSERT_TRUE(d.has_targets());
  EXPECT_EQ(d.target_size(), 2);
  const std::vector<int64_t> order = {4, 1};
  std::vector<float> x(2 * 16), t(4);
  std::vector<int32_t> labels(2);
  d.gather(order, x.data(), labels.data(), t.data());
  EXPECT_EQ(t[0], d.targets_of(4)[0]);
  EXPECT_EQ(t[3], d.targets_of(1)[1]);
  const MeanStddev stats = d.target_stats();
  d.set_target_normalization(stats.mean, stats.stddev);
  d.gather(order, x.data(), labels.data(), t.data());
  EXPECT_FLOAT_EQ(t[1], (d.targets_of(4)[1] - stats.mean[1]) / stats.stddev[1]);
  // Normalised over the set, the targets have mean 0 and stddev 1.
  double sum = 0, sum_sq = 0;
  for (int64_t n = 0; n < d.size(); ++n) {
    const std::vector<int64_t> one = {n};
    d.gather(one, x.data(), labels.data(), t.data());
    sum += t[0];
    sum_sq += t[0] * t[0];
  }
  EXPECT_NEAR(sum / 6, 0, 1e-6);
  EXPECT_NEAR(sum_sq / 6, 1, 1e-5);
  const std::vector<int64_t> picked = {5, 0};
  const Dataset sub = d.subset(picked);
  EXPECT_EQ(sub.target_names(), d.target_names());
  EXPECT_EQ(sub.targets_of(0)[1], d.targets_of(5)[1]);
  EXPECT_EQ(sub.target_mean(), d.target_mean());
  d.truncate(3);
  EXPECT_EQ(d.size(), 3);
  EXPECT_THROW(d.targets_of(3), Error);
  EXPECT_THROW(d.set_targets({1, 2}, {"a"}), Error);  // 2 values for 3 samples
  EXPECT_THROW(d.set_targets({1, NAN, 2}, {"a"}), Error);
}

class TargetFiles : public ::testing::Test {
 protected:
  fs::path dir() const { return fs::path(temp_.path("")); }
  void write(const std::string& name, const std::string& bytes) {
    std::ofstream(temp_.path(name), std::ios::binary) << bytes;
  }

 private:
  testing::TempDir temp_;
};

std::string idx_header(uint8_t type, const std::vector<uint32_t>& dims) {
  std::string b = {0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<char>(d >> shift));
  return b;
}

std::string big_endian_floats(const std::vector<float>& values) {
  std::string b;
  for (float v : values) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<char>(bits >> shift));
  }
  return b;
}

TEST_F(TargetFiles, IdxFloatTargetsComeWithTheImages) {
  const std::string images = idx_header(8, {3, 2, 2}) + std::string(12, '\x40');
  write("train-images-idx3-ubyte", images);
  write("train-targets-idx2-float",
        idx_header(0x0D, {3, 2}) + big_endian_floats({0.5f, -1, 2, 3.25f, -7, 1e6f}));
  const Dataset d = load_mnist_split(dir().string(), "train");  // no labels file needed
  ASSERT_EQ(d.size(), 3);
  EXPECT_EQ(d.classes(), 0);
  EXPECT_EQ(d.target_names(), (std::vector<std::string>{"y1", "y2"}));
  EXPECT_EQ(d.targets_of(1)[1], 3.25f);
  EXPECT_EQ(d.targets_of(2)[1], 1e6f);
  // A row count that is not the image count, and a value that is not finite.
  write("train-targets-idx2-float", idx_header(0x0D, {2, 2}) + big_endian_floats({0, 1, 2, 3}));
  std::string msg = testing::error_of([&] { load_mnist_split(dir().string(), "train"); });
  EXPECT_NE(msg.find("has 3 images but"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train-targets-idx2-float has 2 rows"), std::string::npos) << msg;
  write("train-targets-idx2-float",
        idx_header(0x0D, {3, 1}) + big_endian_floats({0, std::nanf(""), 2}));
  msg = testing::error_of([&] { load_mnist_split(dir().string(), "train"); });
  EXPECT_NE(msg.find("train-targets-idx2-float: value 1 is not a finite number"),
            std::string::npos)
      << msg;
}

TEST(TargetsCsv, ParsesHeaderRowsAndQuotedNames) {
  const TargetsCsv csv = parse_targets_csv(
      "file,angle,\"scale, x\"\r\na.png, -12.5 ,1e-3\n\n\"b,c.png\",0,2\n", "t.csv");
  EXPECT_EQ(csv.names, (std::vector<std::string>{"angle", "scale, x"}));
  EXPECT_EQ(csv.files, (std::vector<std::string>{"a.png", "b,c.png"}));
  EXPECT_EQ(csv.values, (std::vector<float>{-12.5f, 1e-3f, 0, 2}));
}

TEST(TargetsCsv, BadRowsNameTheFileAndLine) {
  auto error = [](const std::string& text) {
    return testing::error_of([&] { parse_targets_csv(text, "dir/targets.csv"); });
  };
  EXPECT_NE(error("file,a,b\nx.png,1\n").find("dir/targets.csv:2: expected 3 fields"),
            std::string::npos);
  const std::string not_number = error("file,a\nx.png,1\ny.png,abc\n");
  EXPECT_NE(not_number.find("dir/targets.csv:3: column 2 (a) is 'abc', not a finite number"),
            std::string::npos)
      << not_number;
  EXPECT_NE(error("file,a\nx.png,inf\n").find(":2: column 2"), std::string::npos);
  EXPECT_NE(error("file,a\nx.png,1x\n").find("'1x'"), std::string::npos);
  EXPECT_NE(error("file,a\nx.png,1\nx.png,2\n").find(":3: x.png is listed a second time"),
            std::string::npos);
  EXPECT_NE(error("file\nx.png\n").find(":1: the header needs a file column"), std::string::npos);
  EXPECT_NE(error("file,a\n").find("has a header but no rows"), std::string::npos);
  EXPECT_NE(error("").find("dir/targets.csv: empty"), std::string::npos);
  EXPECT_NE(error("file,a\n\"x.png,1\n").find(":2: a quoted field is not closed"),
            std::string::npos);
}

TEST_F(TargetFiles, ImageFolderWithTargetsCsv) {
  const Image grey{1, 2, 2, {0, 50, 100, 250}};
  write_png((dir() / "one.png").string(), grey);
  fs::create_directories(dir() / "more");
  write_png((dir() / "more" / "two.png").string(), grey);
  write("targets.csv", "file,angle\nmore/two.png,-3\none.png,4.5\n");
  const Dataset d = load_image_targets(dir().string(), Shape{1, 2, 2});
  ASSERT_EQ(d.size(), 2);
  EXPECT_EQ(d.targets_of(0)[0], -3);  // the file's order
  EXPECT_EQ(d.targets_of(1)[0], 4.5f);
  EXPECT_EQ(d.target_names(), std::vector<std::string>{"angle"});
  // An image without a row, and a row without its image.
  write_png((dir() / "three.png").string(), grey);
  std::string msg = testing::error_of([&] { load_image_targets(dir().string(), Shape{1, 2, 2}); });
  EXPECT_NE(msg.find("three.png: has no row in"), std::string::npos) << msg;
  write("targets.csv", "file,angle\nmore/two.png,-3\none.png,4.5\nthree.png,1\nfour.png,2\n");
  msg = testing::error_of([&] { load_image_targets(dir().string(), Shape{1, 2, 2}); });
  EXPECT_NE(msg.find("targets.csv: row 4: "), std::string::npos) << msg;
  EXPECT_NE(msg.find("four.png is not a file"), std::string::npos) << msg;
}

TEST(RegressionFigures, MseMaeAndR2AsSklearnComputesThem) {
  // Two outputs; predictions and targets in normalised units, mapped back by ·2 + 1 (output 0)
  // and ·1 + 0 (output 1).
  RegressionMetrics m(2, {1, 0}, {2, 1});
  const float p[] = {0, 1, 1, 1, 2, 1};  // 3 samples x 2
  const float t[] = {0, 1, 1, 2, 3, 3};
  m.add(p, t, 2);
  m.add(p + 4, t + 4, 1);
  const RegressionStats s = m.stats();
  // Output 0 in units: p = 1, 3, 5; t = 1, 3, 7: errors 0, 0, -2.
  EXPECT_NEAR(s.mse[0], 4.0 / 3, 1e-12);
  EXPECT_NEAR(s.mae[0], 2.0 / 3, 1e-12);
  // t̄ = 11/3, Σ (t - t̄)² = 1 + 9 + 49 - 121/3 = 56/3; r2 = 1 - 4 / (56/3).
  EXPECT_NEAR(s.r2[0], 1 - 4 / (56.0 / 3), 1e-12);
  // Output 1: p = 1, 1, 1; t = 1, 2, 3: errors 0, -1, -2; Σ (t - t̄)² = 2.
  EXPECT_NEAR(s.mse[1], 5.0 / 3, 1e-12);
  EXPECT_NEAR(s.mae[1], 1.0, 1e-12);
  EXPECT_NEAR(s.r2[1], 1 - 5.0 / 2, 1e-12);
  EXPECT_NEAR(s.mean_mae, (2.0 / 3 + 1) / 2, 1e-12);
  // Pooled (a reconstruction): one figure over every value.
  RegressionMetrics pooled(2, {}, {}, true);
  pooled.add(p, t, 3);
  EXPECT_EQ(pooled.outputs(), 1);
  EXPECT_NEAR(pooled.stats().mae[0], (0 + 0 + 0 + 1 + 1 + 2) / 6.0, 1e-12);
  // Constant targets: R² is 0, not a division by zero.
  RegressionMetrics flat(1, {}, {});
  const float same[] = {2, 2};
  const float guess[] = {1, 3};
  flat.add(guess, same, 2);
  EXPECT_EQ(flat.stats().r2[0], 0);
}

TEST(RegressionFit, LearnsRealValuedTargets) {
  Dataset train = brightness_set(256, 2), test = brightness_set(64, 3);
  const MeanStddev stats = train.target_stats();
  train.set_target_normalization(stats.mean, stats.stddev);
  test.set_target_normalization(stats.mean, stats.stddev);
  auto model = linear_regressor(16);
  Sgd<float> sgd(SgdOptions{.lr = 0.05, .momentum = 0.9});
  MeanSquaredError<float> mse;
  const EvalStats before = evaluate(*model, test, mse);
  ASSERT_EQ(before.regression.mse.size(), 2u);
  const FitResult r = fit(*model, train, &test, mse, sgd, {.epochs = 30, .batch = 16, .seed = 1});
  const RegressionStats& after = r.epochs.back().test_regression;
  ASSERT_EQ(after.mae.size(), 2u);
  // Both targets are linear in the pixels: a linear model fits them almost exactly.
  EXPECT_LT(after.mae[0], 0.1 * before.regression.mae[0]);
  EXPECT_LT(after.mae[1], 0.1 * before.regression.mae[1]);
  EXPECT_GT(after.r2[0], 0.95);
  EXPECT_GT(after.r2[1], 0.95);
  EXPECT_EQ(r.epochs.back().test_acc, 0);
  // The same figures from evaluate(), in the targets' units (the corner target spans 10).
  const EvalStats e = evaluate(*model, test, mse);
  EXPECT_DOUBLE_EQ(e.regression.mae[1], after.mae[1]);
  EXPECT_LT(e.regression.mae[1], 0.2);
}

TEST(RegressionFit, MicroBatchesTrainAsTheWholeBatch) {
  const Dataset train = brightness_set(40, 4);
  auto whole = linear_regressor(10), parts = linear_regressor(4);
  L1Loss<float> l1;
  Sgd<float> a(SgdOptions{.lr = 0.1}), b(SgdOptions{.lr = 0.1});
  fit(*whole, train, nullptr, l1, a, {.epochs = 2, .batch = 10, .seed = 5});
  fit(*parts, train, nullptr, l1, b, {.epochs = 2, .batch = 10, .seed = 5, .micro_batches = 3});
  const auto wp = whole->params(), pp = parts->params();
  for (size_t i = 0; i < wp.size(); ++i)
    EXPECT_TRUE(testing::all_close(*pp[i].value, *wp[i].value, 1e-5, 1e-5)) << wp[i].name;
}

TEST(RegressionFit, OutputsMustMatchTheTargets) {
  const Dataset train = brightness_set(8, 5);
  auto m = std::make_unique<Sequential<float>>();
  m->emplace<Flatten>();
  m->emplace<Linear>(LinearOptions{.out_features = 3});
  m->build(Shape{4, 1, 4, 4}, 1);
  MeanSquaredError<float> mse;
  Sgd<float> sgd;
  const std::string msg = testing::error_of([&] { fit(*m, train, nullptr, mse, sgd, {.batch = 4}); });
  EXPECT_NE(msg.find("the model's output is 3 values per sample"), std::string::npos) << msg;
  EXPECT_NE(msg.find("2 targets (brightness, corner)"), std::string::npos) << msg;
  // Noise is for reconstructions only.
  auto good = linear_regressor(4);
  EXPECT_THROW(fit(*good, train, nullptr, mse, sgd, {.batch = 4, .noise = 0.1}), Error);
}

TEST(RegressionFit, AutoencoderReconstructsItsInput) {
  const Dataset data = testing::quadrant_images(64, 9);
  auto m = std::make_unique<Sequential<float>>();
  m->emplace<Conv2d>(Conv2dOptions{.out_channels = 4, .kernel = 3, .stride = 2, .pad = 1});
  m->emplace<ReLU>();
  m->emplace<ConvTranspose2d>(ConvTranspose2dOptions{
      .out_channels = 1, .kernel = 3, .stride = 2, .pad = 1, .output_padding = 1});
  m->build(Shape{16, 1, 8, 8}, 3);
  MeanSquaredError<float> mse;
  Adam<float> adam(AdamOptions{.lr = 0.01});
  const EvalStats before = evaluate(*m, data, mse, 16, nullptr, nullptr, Target::Input);
  const FitResult r = fit(*m, data, &data, mse, adam,
                          {.epochs = 40, .batch = 16, .seed = 2, .target = Target::Input,
                           .noise = 0.05});
  const RegressionStats& after = r.epochs.back().test_regression;
  ASSERT_EQ(after.mse.size(), 1u);  // one figure over every pixel
  EXPECT_LT(after.mse[0], 0.2 * before.regression.mse[0]);
  EXPECT_GT(after.r2[0], 0.7);
  // A classifier's output cannot be a reconstruction.
  Sequential<float> classifier;
  classifier.emplace<Flatten>();
  classifier.emplace<Linear>(LinearOptions{.out_features = 4});
  classifier.build(Shape{16, 1, 8, 8}, 1);
  const std::string msg = testing::error_of(
      [&] { evaluate(classifier, data, mse, 16, nullptr, nullptr, Target::Input); });
  EXPECT_NE(msg.find("needs an output of the input's shape 1x8x8"), std::string::npos) << msg;
}

}  // namespace
}  // namespace convnet
