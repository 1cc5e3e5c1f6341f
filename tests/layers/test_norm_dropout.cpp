// Dropout beyond the gradient checks: its statistics, exact scaling, identity in evaluation, and
// reproducibility from a seed.
#include <cmath>

#include "support/testing.hpp"

namespace convnet {
namespace {

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

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
  EXPECT_NE(message_of([] { Dropout<float>({.p = 1.5}); }).find("p must be in [0, 1], got 1.5"),
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

}  // namespace
}  // namespace convnet
