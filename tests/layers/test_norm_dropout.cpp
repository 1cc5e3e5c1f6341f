// BatchNorm, Dropout and the train/eval mode beyond the gradient checks: the running-statistics
// update, which mode each model entry point runs, errors for impossible training batches, and
// Dropout's statistics and reproducibility.
#include <cmath>

#include "support/testing.hpp"

namespace convnet {
namespace {

// --- Dropout ---------------------------------------------------------------------------------

TEST(Dropout, FractionKeptAndExactScaling) {
  for (double p : {0.1, 0.3, 0.5, 0.9}) {
    SCOPED_TRACE(::testing::Message() << "p " << p);
    Dropout<float> dropout({.p = p, .seed = 3});
    const Shape shape{100, 10, 10, 10};  // 1e5 elements
    dropout.build(shape);
    Rng rng(1);
    const Tensor<float> x = testing::random_away_from_zero<float>(shape, rng);
    Tensor<float> y;
    dropout.forward(x, y, Mode::Train);
    const float scale = static_cast<float>(1.0 / (1.0 - p));
    int64_t kept = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      if (y[i] != 0.0f) {
        ++kept;
        ASSERT_EQ(y[i], x[i] * scale) << "element " << i;  // bit for bit
        ASSERT_EQ(dropout.mask()[i], scale);
      } else {
        ASSERT_EQ(dropout.mask()[i], 0.0f);
      }
    }
    // Binomial(n, 1 − p): within 6 standard deviations.
    const double n = static_cast<double>(x.numel());
    const double sd = std::sqrt(p * (1 - p) / n);
    EXPECT_NEAR(static_cast<double>(kept) / n, 1.0 - p, 6 * sd);
  }
}

TEST(Dropout, EdgeProbabilities) {
  Rng rng(2);
  const Tensor<double> x = testing::random_normal<double>(Shape{4, 50}, rng);
  Tensor<double> y;
  Dropout<double> none({.p = 0.0});
  none.build(x.shape());
  none.forward(x, y, Mode::Train);
  EXPECT_TRUE(testing::all_close(y, x, 0, 0)) << "p = 0 keeps everything, unscaled";
  Dropout<double> all({.p = 1.0});
  all.build(x.shape());
  all.forward(x, y, Mode::Train);
  for (int64_t i = 0; i < y.numel(); ++i) ASSERT_EQ(y[i], 0.0) << "p = 1 zeroes everything";
  EXPECT_NE(testing::error_of([] { Dropout<float>({.p = 1.5}); }).find("p must be in [0, 1], got 1.5"),
            std::string::npos);
}

TEST(Dropout, IdentityInEvalAndBackwardUsesTheMask) {
  Dropout<double> dropout({.p = 0.5, .seed = 11});
  Rng rng(4);
  const Tensor<double> x = testing::random_normal<double>(Shape{3, 40}, rng);
  const Tensor<double> dy = testing::random_normal<double>(x.shape(), rng);
  dropout.build(x.shape());
  Tensor<double> y;
  dropout.forward(x, y, Mode::Eval);
  EXPECT_TRUE(testing::all_close(y, x, 0, 0));
  Tensor<double> dx(x.shape(), 1.0);
  dropout.backward(x, y, dy, &dx);
  for (int64_t i = 0; i < x.numel(); ++i) ASSERT_EQ(dx[i], 1.0 + dy[i]);

  dropout.forward(x, y, Mode::Train);
  dx.fill(1.0);
  dropout.backward(x, y, dy, &dx);
  for (int64_t i = 0; i < x.numel(); ++i) ASSERT_EQ(dx[i], 1.0 + dy[i] * dropout.mask()[i]);
}

TEST(Dropout, SameSeedSameMasksAndFreshMaskEachStep) {
  const Shape shape{8, 64};
  const Tensor<float> x(shape, 1.0f);
  auto masks = [&](uint64_t seed, int steps) {
    Dropout<float> d({.p = 0.5, .seed = seed});
    d.build(shape);
    std::vector<Tensor<float>> out;
    Tensor<float> y;
    for (int i = 0; i < steps; ++i) {
      d.forward(x, y, Mode::Train);
      out.push_back(d.mask());
    }
    return out;
  };
  const auto a = masks(42, 2), b = masks(42, 2), c = masks(43, 1);
  EXPECT_TRUE(testing::all_close(a[0], b[0], 0, 0));
  EXPECT_TRUE(testing::all_close(a[1], b[1], 0, 0));
  EXPECT_FALSE(testing::all_close(a[0], a[1], 0, 0)) << "each step draws a new mask";
  EXPECT_FALSE(testing::all_close(a[0], c[0], 0, 0)) << "another seed, another mask";

  // Without a seed of its own, the model's seed decides the masks.
  auto model_mask = [&](uint64_t seed) {
    Sequential<float> m;
    m.emplace<Dropout>(DropoutOptions{.p = 0.5});
    m.build(shape, seed);
    m.forward(x, Mode::Train);
    return dynamic_cast<Dropout<float>&>(m.layer(0)).mask();
  };
  EXPECT_TRUE(testing::all_close(model_mask(5), model_mask(5), 0, 0));
  EXPECT_FALSE(testing::all_close(model_mask(5), model_mask(6), 0, 0));
}

// --- BatchNorm -------------------------------------------------------------------------------

// One training forward: the running statistics move by momentum towards the batch mean and the
// UNBIASED batch variance, exactly as PyTorch's.
TEST(BatchNorm, RunningStatisticsUpdate) {
  BatchNorm2d<double> bn({.momentum = 0.25});
  Rng rng(5);
  const Tensor<double> x = testing::random_normal<double>(Shape{3, 2, 4, 5}, rng, 2.0);
  bn.build(x.shape());
  Tensor<double> y;
  bn.forward(x, y, Mode::Train);
  for (int64_t c = 0; c < 2; ++c) {
    double sum = 0, sq = 0;
    const int64_t M = 3 * 20;
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t i = 0; i < 20; ++i) sum += x[(n * 2 + c) * 20 + i];
    const double mean = sum / M;
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t i = 0; i < 20; ++i) sq += std::pow(x[(n * 2 + c) * 20 + i] - mean, 2);
    EXPECT_NEAR(bn.running_mean()[c], 0.25 * mean, 1e-14);
    EXPECT_NEAR(bn.running_var()[c], 0.75 * 1.0 + 0.25 * sq / (M - 1), 1e-14);
    // The output is normalised with the BIASED variance: per channel mean 0, mean square
    // var/(var + eps).
    double ysum = 0, ysq = 0;
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t i = 0; i < 20; ++i) {
        ysum += y[(n * 2 + c) * 20 + i];
        ysq += std::pow(y[(n * 2 + c) * 20 + i], 2);
      }
    EXPECT_NEAR(ysum / M, 0.0, 1e-14);
    EXPECT_NEAR(ysq / M, (sq / M) / (sq / M + 1e-5), 1e-13);
  }
  // Eval reads the running statistics and changes nothing.
  const Tensor<double> rm = bn.running_mean(), rv = bn.running_var();
  bn.forward(x, y, Mode::Eval);
  EXPECT_TRUE(testing::all_close(bn.running_mean(), rm, 0, 0));
  EXPECT_TRUE(testing::all_close(bn.running_var(), rv, 0, 0));
  EXPECT_NEAR(y[0], (x[0] - rm[0]) / std::sqrt(rv[0] + 1e-5), 1e-14);
}

TEST(BatchNorm, TrainingNeedsMoreThanOneValuePerChannel) {
  BatchNorm1d<float> bn1;
  bn1.build(Shape{4, 5});
  Tensor<float> one(Shape{1, 5}, 1.0f), y;
  const std::string msg = testing::error_of([&] { bn1.forward(one, y, Mode::Train); });
  EXPECT_NE(msg.find("batchnorm1d 5: training needs more than 1 value per channel, got input 1x5"),
            std::string::npos)
      << msg;
  bn1.forward(one, y, Mode::Eval);  // evaluation of a single sample is fine
  BatchNorm2d<float> bn2;
  bn2.build(Shape{1, 3, 1, 1});
  Tensor<float> pixel(Shape{1, 3, 1, 1});
  EXPECT_THROW(bn2.forward(pixel, y, Mode::Train), Error);
  Tensor<float> image(Shape{1, 3, 2, 1});  // batch 1 with 2 pixels: allowed, as in PyTorch
  BatchNorm2d<float> bn3;
  bn3.build(image.shape());
  bn3.forward(image, y, Mode::Train);
}

TEST(BatchNorm, ShapeErrors) {
  BatchNorm2d<float> bn2;
  EXPECT_NE(testing::error_of([&] { bn2.build(Shape{2, 6}); }).find("expected an NxCxHxW input"),
            std::string::npos);
  BatchNorm1d<float> bn1({.num_features = 4});
  EXPECT_NE(testing::error_of([&] { bn1.build(Shape{2, 5}); })
                .find("batchnorm1d 4: expected 4 channels, got input 2x5"),
            std::string::npos);
  EXPECT_THROW(BatchNorm2d<float>({.eps = 0}), Error);
}

// gamma_init sets γ at build and again at every init (0: a residual branch starts switched off,
// so the block is its shortcut and the whole gradient flows through it); it needs affine.
TEST(BatchNorm, GammaInit) {
  BatchNorm2d<float> bn({.gamma_init = 0.0});
  bn.build(Shape{2, 3, 2, 2});
  for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(bn.weight()[c], 0.0f);
  bn.weight().fill(0.7f);
  Rng rng(1);
  bn.init(rng);
  for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(bn.weight()[c], 0.0f);
  Tensor<float> x(Shape{2, 3, 2, 2}), y;
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(i % 5);
  bn.forward(x, y, Mode::Train);
  for (int64_t i = 0; i < y.numel(); ++i) EXPECT_EQ(y[i], 0.0f) << i;  // γ·x̂ + β with β = 0
  EXPECT_NE(testing::error_of([] { BatchNorm2d<float>({.affine = false, .gamma_init = 0.5}); })
                .find("gamma_init needs affine"),
            std::string::npos);
  EXPECT_NE(testing::error_of([] { BatchNorm1d<float>({.gamma_init = NAN}); })
                .find("batchnorm1d: gamma_init must be finite"),
            std::string::npos);
}

// Parameters are γ and β; the running statistics are buffers, which no optimizer updates.
TEST(BatchNorm, RunningStatisticsAreBuffersNotParameters) {
  Sequential<double> m;
  m.emplace<Linear>(LinearOptions{.out_features = 3});
  m.emplace<BatchNorm1d>();
  m.build(Shape{4, 2}, 1);
  std::vector<std::string> names;
  for (const auto& p : m.params()) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"layer0.weight", "layer0.bias", "layer1.weight",
                                             "layer1.bias"}));
  ASSERT_EQ(m.buffers().size(), 2u);
  EXPECT_EQ(m.buffers()[0].name, "layer1.running_mean");
  EXPECT_EQ(m.buffers()[1].name, "layer1.running_var");
  EXPECT_EQ(m.param_count(), 2 * 3 + 3 + 3 + 3);
}

// train_step runs Mode::Train (batch statistics, running statistics updated once per step);
// evaluate and predict run Mode::Eval and leave them alone.
TEST(BatchNorm, ModelEntryPointsRunTheRightMode) {
  Sequential<double> m;
  m.emplace<BatchNorm1d>();
  m.build(Shape{4, 2}, 1);
  auto& bn = dynamic_cast<BatchNorm1d<double>&>(m.layer(0));
  Tensor<double> x(Shape{4, 2});
  const double xs[] = {1, 10, 2, 20, 3, 30, 6, 40};  // feature 0 mean 3, feature 1 mean 25
  std::copy(std::begin(xs), std::end(xs), x.data());
  const Tensor<double> target(Shape{4, 2});
  MeanSquaredError<double> mse;
  Sgd<double> sgd({.lr = 0.0});  // parameters stay: only the mode's effect shows

  m.predict(x);
  m.evaluate(x, {.values = &target}, mse);
  EXPECT_EQ(bn.running_mean()[0], 0.0) << "eval passes must not update running statistics";
  const Tensor<double> eval_out = m.predict(x);
  EXPECT_NEAR(eval_out[0], 1 / std::sqrt(1 + 1e-5), 1e-12) << "eval uses running stats 0, 1";

  m.train_step(x, {.values = &target}, mse, sgd);
  EXPECT_NEAR(bn.running_mean()[0], 0.3, 1e-15);
  EXPECT_NEAR(bn.running_mean()[1], 2.5, 1e-15);
  const Tensor<double>& train_out = m.forward(x, Mode::Train);
  EXPECT_LT(train_out[0], 0.0) << "1 is below its batch mean 3";
}

}  // namespace
}  // namespace convnet
