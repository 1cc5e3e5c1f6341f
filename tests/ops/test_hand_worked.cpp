// Hand-worked examples a reader can check on paper: every expected number below is derived in
// the comment beside it.
#include "ops/ref/ref.hpp"
#include "support/testing.hpp"

namespace convnet {
namespace {

using testing::all_close;

// x (4x4), 2x2 windows, stride 2:
//   1 2 | 5 3        max of each window: 4 (row 1, col 0)   5 (row 0, col 2)
//   4 0 | 1 2                            9 (row 3, col 1)   6 (row 2, col 3)
//   ----+----
//   7 8 | 3 6        dy = [[1, 2], [3, 4]] goes to those four positions only.
//   1 9 | 4 2
TEST(HandWorked, MaxPool4x4Backward) {
  MaxPool2d<double> pool({.kernel = 2});
  Tensor<double> x(Shape{1, 1, 4, 4});
  const double xs[] = {1, 2, 5, 3, 4, 0, 1, 2, 7, 8, 3, 6, 1, 9, 4, 2};
  std::copy(std::begin(xs), std::end(xs), x.data());
  pool.build(x.shape());
  Tensor<double> y;
  pool.forward(x, y, Mode::Train);
  const double want_y[] = {4, 5, 9, 6};
  EXPECT_TRUE(all_close(y.data(), want_y, 4, 0, 0));

  Tensor<double> dy(Shape{1, 1, 2, 2});
  for (int i = 0; i < 4; ++i) dy[i] = i + 1;
  Tensor<double> dx(x.shape());
  pool.backward(x, y, dy, &dx);
  const double want_dx[] = {0, 0, 2, 0,   // 5 at (0,2) gets dy 2
                            1, 0, 0, 0,   // 4 at (1,0) gets dy 1
                            0, 0, 0, 4,   // 6 at (2,3) gets dy 4
                            0, 3, 0, 0};  // 9 at (3,1) gets dy 3
  EXPECT_TRUE(all_close(dx.data(), want_dx, 16, 0, 0));
}

// Average pool 2x2 stride 2 on 4x4: each window's dy is shared by its 4 inputs, dy/4 each.
TEST(HandWorked, AvgPool4x4Backward) {
  AvgPool2d<double> pool({.kernel = 2});
  Tensor<double> x(Shape{1, 1, 4, 4}, 1.0);
  pool.build(x.shape());
  Tensor<double> y;
  pool.forward(x, y, Mode::Train);
  Tensor<double> dy(Shape{1, 1, 2, 2});
  for (int i = 0; i < 4; ++i) dy[i] = i + 1;
  Tensor<double> dx(x.shape());
  pool.backward(x, y, dy, &dx);
  const double want[] = {.25, .25, .5, .5, .25, .25, .5, .5, .75, .75, 1, 1, .75, .75, 1, 1};
  EXPECT_TRUE(all_close(dx.data(), want, 16, 0, 0));
}

// 3x3 input, kernel 2, stride 2, padding 1: four windows holding 1, 2, 2 and 4 real inputs.
// count_pad (PyTorch's default) divides every window by 4, so every dx is 1/4 for dy = 1.
// Without it a window divides by its real elements: dx = 1, 1/2, 1/2, 1/4 per window.
TEST(HandWorked, AvgPoolPaddingDivisor) {
  for (bool count_pad : {true, false}) {
    AvgPool2d<double> pool({.kernel = 2, .pad = 1, .count_pad = count_pad});
    Tensor<double> x(Shape{1, 1, 3, 3}, 1.0);
    ASSERT_EQ(pool.build(x.shape()), (Shape{1, 1, 2, 2}));
    Tensor<double> y;
    pool.forward(x, y, Mode::Train);
    Tensor<double> dy(y.shape(), 1.0), dx(x.shape());
    pool.backward(x, y, dy, &dx);
    if (count_pad) {
      const double want_y[] = {.25, .5, .5, 1};  // real elements / 4
      EXPECT_TRUE(all_close(y.data(), want_y, 4, 0, 0));
      EXPECT_TRUE(all_close(dx, Tensor<double>(x.shape(), 0.25), 0, 0));
    } else {
      EXPECT_TRUE(all_close(y, Tensor<double>(y.shape(), 1.0), 0, 0));  // mean of ones
      const double want_dx[] = {1, .5, .5, .5, .25, .25, .5, .25, .25};
      EXPECT_TRUE(all_close(dx.data(), want_dx, 9, 0, 0));
    }
  }
}

// x[i][j] = 5i + j on 5x5, a 3x3 kernel of ones, bias 1, no padding: each output is the sum of a
// 3x3 block, 9 × its centre value, plus 1. y[0][0] = 9·6 + 1 = 55, y[2][2] = 9·18 + 1 = 163.
// With dy = 1: dx[i][j] = (windows covering row i)·(windows covering col j), with coverage
// 1,2,3,2,1; dw[kh][kw] = Σ of the 3x3 block at (kh,kw) = 9·(5(kh+1) + kw + 1); db = 9.
TEST(HandWorked, Conv3x3OnRamp) {
  Conv2d<double> conv({.out_channels = 1, .kernel = 3});
  Tensor<double> x(Shape{1, 1, 5, 5});
  for (int i = 0; i < 25; ++i) x[i] = i;
  conv.build(x.shape());
  conv.weight().fill(1.0);
  conv.bias().fill(1.0);
  Tensor<double> y;
  conv.forward(x, y, Mode::Train);
  ASSERT_EQ(y.shape(), (Shape{1, 1, 3, 3}));
  for (int oh = 0; oh < 3; ++oh)
    for (int ow = 0; ow < 3; ++ow)
      EXPECT_EQ(y[oh * 3 + ow], 9 * (5 * (oh + 1) + ow + 1) + 1) << oh << "," << ow;

  Tensor<double> dy(y.shape(), 1.0), dx(x.shape());
  conv.grad_weight().zero();
  conv.grad_bias().zero();
  conv.backward(x, y, dy, &dx);
  const int cover[] = {1, 2, 3, 2, 1};
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 5; ++j) EXPECT_EQ(dx[i * 5 + j], cover[i] * cover[j]);
  for (int kh = 0; kh < 3; ++kh)
    for (int kw = 0; kw < 3; ++kw)
      EXPECT_EQ(conv.grad_weight()[kh * 3 + kw], 9 * (5 * (kh + 1) + kw + 1));
  EXPECT_EQ(conv.grad_bias()[0], 9);
}

// SGD, lr 0.1, momentum 0.9, p = [1, -2], g = [0.5, 0.25] at both steps.
// Step 1: buf = g;              p = [1 - 0.05, -2 - 0.025]        = [0.95, -2.025]
// Step 2: buf = 0.9·g + g = 1.9g; p = [0.95 - 0.095, -2.025 - 0.0475] = [0.855, -2.0725]
TEST(HandWorked, SgdMomentumSteps) {
  Tensor<double> p(Shape{2}), g(Shape{2});
  p[0] = 1, p[1] = -2, g[0] = 0.5, g[1] = 0.25;
  const Param<double> params[] = {{"p", &p, &g}};
  Sgd<double> sgd({.lr = 0.1, .momentum = 0.9});
  sgd.step(params);
  EXPECT_NEAR(p[0], 0.95, 1e-15);
  EXPECT_NEAR(p[1], -2.025, 1e-15);
  sgd.step(params);
  EXPECT_NEAR(p[0], 0.855, 1e-15);
  EXPECT_NEAR(p[1], -2.0725, 1e-15);
}

// Logits [0, 0] with label 0: softmax = [1/2, 1/2], loss = log 2, gradient = [-1/2, 1/2] / N.
// Logits [1000, 0] with label 1: loss = 1000 - 0 (log Σ e^z = 1000 + log(1 + e^-1000)), finite.
TEST(HandWorked, SoftmaxCrossEntropy) {
  SoftmaxCrossEntropy<double> ce;
  Tensor<double> z(Shape{2, 2});
  z[0] = 0, z[1] = 0, z[2] = 1000, z[3] = 0;
  const int32_t labels[] = {0, 1};
  Tensor<double> dz;
  const double loss = ce.compute(z, {.labels = labels}, &dz);
  EXPECT_NEAR(loss, (std::log(2.0) + 1000) / 2, 1e-12);
  EXPECT_NEAR(dz[0], -0.25, 1e-15);
  EXPECT_NEAR(dz[1], 0.25, 1e-15);
  EXPECT_NEAR(dz[2], 0.5, 1e-15);   // softmax 1, not the label: (1 - 0)/2
  EXPECT_NEAR(dz[3], -0.5, 1e-15);  // softmax 0, the label: (0 - 1)/2
}

// p = [1, 2], t = [0, 0]: L = (1 + 4)/2 = 2.5, dL/dp = 2(p - t)/2 = [1, 2].
TEST(HandWorked, MeanSquaredError) {
  MeanSquaredError<double> mse;
  Tensor<double> p(Shape{1, 2}), t(Shape{1, 2}), dp;
  p[0] = 1, p[1] = 2;
  EXPECT_DOUBLE_EQ(mse.compute(p, {.values = &t}, &dp), 2.5);
  EXPECT_DOUBLE_EQ(dp[0], 1);
  EXPECT_DOUBLE_EQ(dp[1], 2);
}

// BatchNorm1d on one feature, 4 samples x = [1, 1, 1, 5], γ = 2, β = 1, eps = 1, momentum 1/2:
//   mean 2, deviations [-1, -1, -1, 3], Σ dev² = 12: biased var 3, unbiased var 12/3 = 4.
//   invstd = 1/sqrt(3 + 1) = 1/2, x̂ = [-1/2, -1/2, -1/2, 3/2], y = 2x̂ + 1 = [0, 0, 0, 4].
//   running_mean = 0/2 + 2/2 = 1; running_var = 1/2 + 4/2 = 5/2 (unbiased, as PyTorch).
// Backward with dy = [1, 0, 0, 0]: Σdy = 1, Σdy·x̂ = -1/2, so dγ = -1/2, dβ = 1 and
//   dx = (γ·invstd/M)(M·dy − Σdy − x̂·Σdy·x̂) = (1/4)(4dy − 1 + x̂/2)
//      = [(4 − 1 − 1/4)/4, (−1 − 1/4)/4, (−1 − 1/4)/4, (−1 + 3/4)/4]
//      = [11/16, −5/16, −5/16, −1/16]  (they sum to 0: shifting every x leaves y unchanged).
// Eval with running_mean 2, running_var 3: y = 2(x − 2)/2 + 1 = x − 1, dx = γ·invstd·dy = dy.
TEST(HandWorked, BatchNormOneChannelFourValues) {
  BatchNorm1d<double> bn({.eps = 1.0, .momentum = 0.5});
  Tensor<double> x(Shape{4, 1});
  const double xs[] = {1, 1, 1, 5};
  std::copy(std::begin(xs), std::end(xs), x.data());
  bn.build(x.shape());
  bn.weight()[0] = 2;
  bn.bias()[0] = 1;
  Tensor<double> y;
  bn.forward(x, y, Mode::Train);
  const double want_y[] = {0, 0, 0, 4};
  EXPECT_TRUE(all_close(y.data(), want_y, 4, 0, 0));
  EXPECT_EQ(bn.running_mean()[0], 1.0);
  EXPECT_EQ(bn.running_var()[0], 2.5);

  Tensor<double> dy(x.shape()), dx(x.shape());
  dy[0] = 1;
  bn.backward(x, y, dy, &dx);
  const double want_dx[] = {11.0 / 16, -5.0 / 16, -5.0 / 16, -1.0 / 16};
  EXPECT_TRUE(all_close(dx.data(), want_dx, 4, 0, 0));
  EXPECT_EQ(bn.grad_weight()[0], -0.5);
  EXPECT_EQ(bn.grad_bias()[0], 1.0);

  bn.running_mean()[0] = 2;
  bn.running_var()[0] = 3;
  bn.forward(x, y, Mode::Eval);
  const double want_eval[] = {0, 0, 0, 4};  // x − 1
  EXPECT_TRUE(all_close(y.data(), want_eval, 4, 0, 0));
  dx.zero();
  bn.backward(x, y, dy, &dx);
  const double want_eval_dx[] = {1, 0, 0, 0};
  EXPECT_TRUE(all_close(dx.data(), want_eval_dx, 4, 0, 0));
}

}  // namespace
}  // namespace convnet
