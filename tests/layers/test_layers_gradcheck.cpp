// Finite-difference gradient checks of every layer (input and parameter gradients) and both
// losses, in double, on shapes chosen for their edge cases: stride > 1, padding, dilation,
// non-square kernels, odd sizes, batch 1, a kernel as large as the padded input.
#include "support/testing.hpp"

namespace convnet {
namespace {

using testing::check_layer_gradients;

struct ConvCase {
  const char* name;
  Shape input;
  Conv2dOptions options;
};

void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.name; }

class Conv2dGradcheck : public ::testing::TestWithParam<ConvCase> {};

TEST_P(Conv2dGradcheck, InputWeightBias) {
  const ConvCase& c = GetParam();
  Rng rng(11);
  Conv2d<double> conv(c.options);
  check_layer_gradients(conv, testing::random_normal<double>(c.input, rng), rng);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, Conv2dGradcheck,
    ::testing::Values(
        ConvCase{"Basic3x3_Pad1", Shape{2, 3, 6, 6}, {.out_channels = 4, .kernel = 3, .pad = 1}},
        ConvCase{"Stride2_Pad1",
                 Shape{2, 2, 7, 7},
                 {.out_channels = 3, .kernel = 3, .stride = 2, .pad = 1}},
        ConvCase{"NonSquare3x2_Stride2x1_Pad1x0",
                 Shape{1, 2, 7, 5},
                 {.out_channels = 2,
                  .kernel_h = 3,
                  .kernel_w = 2,
                  .stride_h = 2,
                  .stride_w = 1,
                  .pad_h = 1,
                  .pad_w = 0}},
        ConvCase{"Dilation2_Pad2",
                 Shape{2, 2, 8, 7},
                 {.out_channels = 3, .kernel = 3, .pad = 2, .dilation = 2}},
        ConvCase{"Dilation2x1_NoBias",
                 Shape{3, 1, 9, 6},
                 {.out_channels = 2, .kernel = 3, .dilation_h = 2, .bias = false}},
        ConvCase{"OneByOne", Shape{2, 5, 4, 3}, {.out_channels = 3, .kernel = 1}},
        ConvCase{"KernelAsLargeAsInput", Shape{1, 2, 5, 5}, {.out_channels = 2, .kernel = 5}},
        ConvCase{"OddSizes_Batch1",
                 Shape{1, 3, 5, 7},
                 {.out_channels = 5, .kernel = 3, .stride = 3, .pad = 2}},
        ConvCase{"Stride3_Pad2_5x5",
                 Shape{2, 1, 11, 9},
                 {.out_channels = 2, .kernel = 5, .stride = 3, .pad = 2}},
        ConvCase{
            "Groups2", Shape{2, 4, 5, 6}, {.out_channels = 6, .kernel = 3, .pad = 1, .groups = 2}},
        ConvCase{"Depthwise_Stride2",
                 Shape{2, 3, 7, 6},
                 {.out_channels = 3, .kernel = 3, .stride = 2, .pad = 1, .groups = 3}},
        ConvCase{
            "Depthwise_Multiplier2_Dilation2_NoBias",
            Shape{1, 2, 8, 7},
            {.out_channels = 4, .kernel = 3, .pad = 2, .dilation = 2, .groups = 2, .bias = false}}),
    [](const auto& case_info) { return std::string(case_info.param.name); });

struct ConvTransposeCase {
  const char* name;
  Shape input;
  ConvTranspose2dOptions options;
};

void PrintTo(const ConvTransposeCase& c, std::ostream* os) { *os << c.name; }

class ConvTranspose2dGradcheck : public ::testing::TestWithParam<ConvTransposeCase> {};

TEST_P(ConvTranspose2dGradcheck, InputWeightBias) {
  const ConvTransposeCase& c = GetParam();
  Rng rng(12);
  ConvTranspose2d<double> conv(c.options);
  check_layer_gradients(conv, testing::random_normal<double>(c.input, rng), rng);
}

// The float layer (fast kernels) against the double one (reference kernels), forward and
// backward, on every case.
TEST_P(ConvTranspose2dGradcheck, FastMatchesReference) {
  const ConvTransposeCase& c = GetParam();
  Rng rng(13);
  ConvTranspose2d<double> ref(c.options);
  ConvTranspose2d<float> fast(c.options);
  const Shape out = ref.build(c.input);
  ASSERT_EQ(fast.build(c.input), out);
  Rng init_a(3), init_b(3);
  ref.init(init_a);
  fast.init(init_b);
  const Tensor<double> x = testing::random_normal<double>(c.input, rng);
  const Tensor<double> dy = testing::random_normal<double>(out, rng);
  Tensor<float> xf(c.input), dyf(out);
  for (int64_t i = 0; i < x.numel(); ++i) xf[i] = static_cast<float>(x[i]);
  for (int64_t i = 0; i < dy.numel(); ++i) dyf[i] = static_cast<float>(dy[i]);
  for (int64_t i = 0; i < ref.weight().numel(); ++i) ref.weight()[i] = fast.weight()[i];
  for (int64_t i = 0; i < ref.bias().numel(); ++i) ref.bias()[i] = fast.bias()[i];
  Tensor<double> y, dx(c.input, 0.0);
  Tensor<float> yf, dxf(c.input, 0.0f);
  ref.forward(x, y, Mode::Train);
  fast.forward(xf, yf, Mode::Train);
  EXPECT_TRUE(testing::all_close(yf, y, 1e-4, 1e-4)) << "forward";
  ref.backward(x, y, dy, &dx);
  fast.backward(xf, yf, dyf, &dxf);
  EXPECT_TRUE(testing::all_close(dxf, dx, 1e-4, 1e-4)) << "backward data";
  EXPECT_TRUE(testing::all_close(fast.grad_weight(), ref.grad_weight(), 1e-4, 1e-3)) << "weights";
  EXPECT_TRUE(testing::all_close(fast.grad_bias(), ref.grad_bias(), 1e-4, 1e-3)) << "bias";
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ConvTranspose2dGradcheck,
    ::testing::Values(
        ConvTransposeCase{
            "Stride2_Kernel2", Shape{2, 3, 3, 4}, {.out_channels = 2, .kernel = 2, .stride = 2}},
        ConvTransposeCase{
            "Stride2_Pad1_OutputPadding1",
            Shape{1, 2, 4, 3},
            {.out_channels = 3, .kernel = 3, .stride = 2, .pad = 1, .output_padding = 1}},
        ConvTransposeCase{"Stride1_Pad1_NoBias",
                          Shape{2, 4, 5, 5},
                          {.out_channels = 2, .kernel = 3, .pad = 1, .bias = false}},
        ConvTransposeCase{"Dilation2_Groups2",
                          Shape{1, 4, 4, 3},
                          {.out_channels = 6, .kernel = 3, .dilation = 2, .groups = 2}},
        ConvTransposeCase{"NonSquare_Stride3x1",
                          Shape{2, 2, 3, 4},
                          {.out_channels = 2,
                           .kernel_h = 2,
                           .kernel_w = 3,
                           .stride_h = 3,
                           .stride_w = 1,
                           .pad_w = 1}}),
    [](const auto& case_info) { return std::string(case_info.param.name); });

struct PoolCase {
  const char* name;
  Shape input;
  Pool2dOptions options;
};

void PrintTo(const PoolCase& c, std::ostream* os) { *os << c.name; }

class PoolGradcheck : public ::testing::TestWithParam<PoolCase> {};

TEST_P(PoolGradcheck, MaxPoolInput) {
  const PoolCase& c = GetParam();
  Rng rng(12);
  MaxPool2d<double> pool(c.options);
  // Distinct values: no window has a tie, so the max is differentiable everywhere.
  check_layer_gradients(pool, testing::random_distinct<double>(c.input, rng), rng);
}

TEST_P(PoolGradcheck, AvgPoolInput) {
  const PoolCase& c = GetParam();
  Rng rng(13);
  for (bool count_pad : {true, false}) {
    Pool2dOptions o = c.options;
    o.count_pad = count_pad;
    AvgPool2d<double> pool(o);
    check_layer_gradients(pool, testing::random_normal<double>(c.input, rng), rng);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, PoolGradcheck,
    ::testing::Values(
        PoolCase{"K2S2", Shape{2, 3, 6, 6}, {.kernel = 2}},
        PoolCase{"K3S2P1_Odd7x7", Shape{1, 2, 7, 7}, {.kernel = 3, .stride = 2, .pad = 1}},
        PoolCase{"K3S1_Overlapping", Shape{2, 1, 5, 6}, {.kernel = 3, .stride = 1}},
        PoolCase{"NonSquare2x3_S1x2_P1",
                 Shape{1, 2, 5, 7},
                 {.kernel_h = 2, .kernel_w = 3, .stride_h = 1, .stride_w = 2, .pad = 1}},
        PoolCase{"K2S2_OddInput5x5_Batch1", Shape{1, 1, 5, 5}, {.kernel = 2}}),
    [](const auto& case_info) { return std::string(case_info.param.name); });

TEST(LinearGradcheck, InputWeightBias) {
  for (int64_t n : {1, 3}) {
    Rng rng(14);
    Linear<double> fc({.out_features = 5});
    check_layer_gradients(fc, testing::random_normal<double>(Shape{n, 7}, rng), rng);
  }
  Rng rng(15);
  Linear<double> no_bias({.out_features = 4, .bias = false});
  check_layer_gradients(no_bias, testing::random_normal<double>(Shape{2, 9}, rng), rng);
}

TEST(ActivationGradcheck, AllActivations) {
  Rng rng(16);
  const Shape shape{2, 3, 4, 5};
  {
    ReLU<double> relu;  // inputs kept away from the kink at 0
    check_layer_gradients(relu, testing::random_away_from_zero<double>(shape, rng), rng);
  }
  {
    LeakyReLU<double> leaky(0.1);
    check_layer_gradients(leaky, testing::random_away_from_zero<double>(shape, rng), rng);
  }
  {
    Sigmoid<double> sigmoid;
    check_layer_gradients(sigmoid, testing::random_normal<double>(shape, rng, 3.0), rng);
  }
  {
    Tanh<double> tanh_layer;
    check_layer_gradients(tanh_layer, testing::random_normal<double>(shape, rng, 2.0), rng);
  }
  {
    Softmax<double> softmax;
    check_layer_gradients(softmax, testing::random_normal<double>(Shape{3, 10}, rng, 2.0), rng);
  }
  {
    Flatten<double> flatten;
    check_layer_gradients(flatten, testing::random_normal<double>(shape, rng), rng);
  }
}

TEST(ActivationGradcheck, GeluSiluElu) {
  Rng rng(19);
  for (const Shape& shape : {Shape{2, 3, 4, 5}, Shape{1, 7}}) {
    {
      GELU<double> gelu;
      check_layer_gradients(gelu, testing::random_normal<double>(shape, rng, 3.0), rng);
    }
    {
      SiLU<double> silu;
      check_layer_gradients(silu, testing::random_normal<double>(shape, rng, 3.0), rng);
    }
    for (double alpha : {1.0, 0.7}) {  // with α != 1, ELU has a kink at 0: stay away from it
      ELU<double> elu(alpha);
      check_layer_gradients(elu, testing::random_away_from_zero<double>(shape, rng), rng);
    }
  }
}

TEST(GlobalAvgPool2dGradcheck, Input) {
  Rng rng(20);
  for (const Shape& shape : {Shape{2, 3, 4, 5}, Shape{1, 2, 7, 3}, Shape{3, 1, 1, 1}}) {
    GlobalAvgPool2d<double> pool;
    check_layer_gradients(pool, testing::random_normal<double>(shape, rng), rng);
  }
}

// Train mode with replay on: one mask for every forward pass, so the layer is the fixed linear
// map x -> mask ⊙ x. Eval: the identity.
TEST(DropoutGradcheck, FixedMaskAndEval) {
  Rng rng(21);
  for (double p : {0.0, 0.3, 0.5, 1.0})
    for (Mode mode : {Mode::Train, Mode::Eval}) {
      SCOPED_TRACE(::testing::Message() << "p " << p << (mode == Mode::Train ? " train" : " eval"));
      Dropout<double> dropout({.p = p, .seed = 5});
      check_layer_gradients(dropout, testing::random_normal<double>(Shape{3, 4, 5}, rng), rng,
                            {.mode = mode});
    }
}

struct BatchNormCase {
  const char* name;
  Shape input;
  bool spatial;  // BatchNorm2d, else BatchNorm1d
  BatchNormOptions options;
};

void PrintTo(const BatchNormCase& c, std::ostream* os) { *os << c.name; }

class BatchNormGradcheck : public ::testing::TestWithParam<BatchNormCase> {
 protected:
  // Random γ, β and running statistics (the defaults 1, 0, 0, 1 would hide a swapped term), and
  // an input whose channels have different means and scales.
  static void check(Mode mode) {
    const BatchNormCase& c = GetParam();
    Rng rng(22);
    std::unique_ptr<BatchNorm<double>> bn;
    if (c.spatial)
      bn = std::make_unique<BatchNorm2d<double>>(c.options);
    else
      bn = std::make_unique<BatchNorm1d<double>>(c.options);
    bn->build(c.input);
    for (auto& p : bn->params())
      for (int64_t i = 0; i < p.value->numel(); ++i) (*p.value)[i] = rng.normal(0.5, 1.0);
    for (int64_t i = 0; i < bn->running_mean().numel(); ++i) {
      bn->running_mean()[i] = rng.normal();
      bn->running_var()[i] = rng.uniform(0.5, 2.0);
    }
    const Tensor<double> saved_mean = bn->running_mean(), saved_var = bn->running_var();
    Tensor<double> x = testing::random_normal<double>(c.input, rng);
    for (int64_t i = 0; i < x.numel(); ++i) {
      const int64_t ch = (i / (x.numel() / c.input[0] / c.input[1])) % c.input[1];
      x[i] = x[i] * (1.0 + 0.5 * static_cast<double>(ch)) + static_cast<double>(ch) - 1.0;
    }
    check_layer_gradients(*bn, x, rng, {.rtol = 1e-5, .atol = 1e-7, .mode = mode, .init = false});
    // Replay kept the running statistics as they were.
    EXPECT_TRUE(testing::all_close(bn->running_mean(), saved_mean, 0, 0));
    EXPECT_TRUE(testing::all_close(bn->running_var(), saved_var, 0, 0));
  }
};

TEST_P(BatchNormGradcheck, TrainBatchStatistics) { check(Mode::Train); }
TEST_P(BatchNormGradcheck, EvalRunningStatistics) { check(Mode::Eval); }

INSTANTIATE_TEST_SUITE_P(
    Shapes, BatchNormGradcheck,
    ::testing::Values(
        BatchNormCase{"Bn2d_2x3x4x5", Shape{2, 3, 4, 5}, true, {}},
        BatchNormCase{"Bn2d_Batch1_Odd1x2x3x5", Shape{1, 2, 3, 5}, true, {}},
        BatchNormCase{"Bn2d_OnePixel_3x4x1x1", Shape{3, 4, 1, 1}, true, {}},
        BatchNormCase{"Bn2d_NoAffine_Eps1e-3", Shape{3, 2, 3, 3}, true,
                      {.eps = 1e-3, .affine = false}},
        BatchNormCase{"Bn1d_4x5", Shape{4, 5}, false, {}},
        BatchNormCase{"Bn1d_Batch2_2x3", Shape{2, 3}, false, {.momentum = 0.3}},
        BatchNormCase{"Bn1d_NCL_3x2x4", Shape{3, 2, 4}, false, {}}),
    [](const auto& case_info) {
      std::string name = case_info.param.name;
      std::replace(name.begin(), name.end(), '-', 'm');
      return name;
    });

// A whole model with BatchNorm and Dropout through convnet::gradcheck (training mode, replay).
TEST(ModelGradcheck, BatchNormAndDropout) {
  Sequential<double> m;
  m.emplace<Conv2d>(Conv2dOptions{.out_channels = 3, .kernel = 3, .pad = 1});
  m.emplace<BatchNorm2d>();
  m.emplace<SiLU>();
  m.emplace<MaxPool2d>(Pool2dOptions{.kernel = 2});
  m.emplace<GlobalAvgPool2d>();
  m.emplace<Flatten>();
  m.emplace<Linear>(LinearOptions{.out_features = 6});
  m.emplace<BatchNorm1d>();
  m.emplace<GELU>();
  m.emplace<Dropout>(DropoutOptions{.p = 0.4});
  m.emplace<Linear>(LinearOptions{.out_features = 4});
  m.build(Shape{3, 2, 6, 6}, 7);
  Rng rng(23);
  const Tensor<double> x = testing::random_normal<double>(m.input_shape(), rng);
  const std::vector<int32_t> labels{0, 3, 1};
  std::vector<Tensor<double>> before;
  for (const auto& b : m.buffers()) before.push_back(*b.value);
  SoftmaxCrossEntropy<double> ce;
  const auto report = gradcheck(m, x, {.labels = labels}, ce, {.max_per_tensor = 64});
  ASSERT_EQ(report.size(), 11u + 2 + 2 + 2 + 2 + 2);  // 11 inputs, conv, 2 bn, 2 linear
  for (const auto& e : report) {
    EXPECT_TRUE(e.passed()) << "layer " << e.layer << " " << e.layer_name << " " << e.tensor
                            << ": " << e.failed << " failed, max abs " << e.max_abs_error;
    EXPECT_GT(e.checked, 0) << e.layer_name << " " << e.tensor;
  }
  for (size_t i = 0; i < before.size(); ++i)
    EXPECT_TRUE(testing::all_close(*m.buffers()[i].value, before[i], 0, 0))
        << m.buffers()[i].name << " changed during gradcheck";
}

// d(loss)/d(output) by central differences, in double.
template <class LossT>
void check_loss_gradient(LossT& loss, Tensor<double> out, const Targets<double>& targets) {
  Tensor<double> grad;
  loss.compute(out, targets, &grad);
  const double eps = 1e-6;
  for (int64_t i = 0; i < out.numel(); ++i) {
    const double saved = out[i];
    out[i] = saved + eps;
    const double plus = loss.compute(out, targets, nullptr);
    out[i] = saved - eps;
    const double minus = loss.compute(out, targets, nullptr);
    out[i] = saved;
    const double numeric = (plus - minus) / (2 * eps);
    ASSERT_NEAR(grad[i], numeric, 1e-9 + 1e-6 * std::abs(numeric)) << loss.name() << " at " << i;
  }
}

TEST(LossGradcheck, SoftmaxCrossEntropy) {
  Rng rng(17);
  for (int64_t n : {1, 5}) {
    std::vector<int32_t> labels(static_cast<size_t>(n));
    for (auto& l : labels) l = static_cast<int32_t>(rng.below(7));
    SoftmaxCrossEntropy<double> ce;
    check_loss_gradient(ce, testing::random_normal<double>(Shape{n, 7}, rng, 3.0),
                        {.labels = labels});
  }
}

TEST(LossGradcheck, MeanSquaredError) {
  Rng rng(18);
  for (int64_t n : {1, 4}) {
    const Tensor<double> target = testing::random_normal<double>(Shape{n, 3}, rng);
    MeanSquaredError<double> mse;
    check_loss_gradient(mse, testing::random_normal<double>(Shape{n, 3}, rng), {.values = &target});
  }
}

// L1 and Huber away from their kinks (|p - t| = 0, and = δ): targets at least 0.05 from the
// prediction and from δ, where the central difference of step 1e-6 sees one smooth piece.
static Tensor<double> target_away_from_kinks(const Tensor<double>& p, double delta, Rng& rng) {
  Tensor<double> t(p.shape());
  for (int64_t i = 0; i < p.numel(); ++i) {
    double d = 0;
    while (std::abs(d) < 0.05 || std::abs(std::abs(d) - delta) < 0.05)
      d = testing::random_normal<double>(Shape{1}, rng, 1.5)[0];
    t[i] = p[i] - d;
  }
  return t;
}

TEST(LossGradcheck, RegressionLossesBothReductions) {
  Rng rng(19);
  for (const LossReduction reduction : {LossReduction::Mean, LossReduction::Sum})
    for (int64_t n : {1, 4}) {
      const Tensor<double> p = testing::random_normal<double>(Shape{n, 3}, rng);
      MeanSquaredError<double> mse(reduction);
      L1Loss<double> l1(reduction);
      HuberLoss<double> huber(0.7, reduction);
      const Tensor<double> target = target_away_from_kinks(p, 0.7, rng);
      for (Loss<double>* loss : std::initializer_list<Loss<double>*>{&mse, &l1, &huber})
        check_loss_gradient(*loss, p, {.values = &target});
    }
}

// A classifier trained by a regression loss: the labels are one-hot targets.
TEST(LossGradcheck, RegressionLossesOnLabels) {
  Rng rng(20);
  const std::vector<int32_t> labels = {2, 0, 4};
  MeanSquaredError<double> mse;
  HuberLoss<double> huber(0.5);
  for (Loss<double>* loss : std::initializer_list<Loss<double>*>{&mse, &huber})
    check_loss_gradient(*loss, testing::random_normal<double>(Shape{3, 5}, rng, 0.2),
                        {.labels = labels});
  Tensor<double> out(Shape{3, 5});
  EXPECT_THROW(mse.compute(out, {.labels = std::vector<int32_t>{2, 5, 0}}, nullptr), Error);
}

TEST(Losses, MakeLossByName) {
  EXPECT_EQ(make_loss("cross-entropy")->name(), "softmax_cross_entropy");
  EXPECT_EQ(make_loss("mse")->name(), "mse");
  EXPECT_EQ(make_loss("l1")->name(), "l1");
  const auto huber = make_loss("huber", 0.25);
  EXPECT_FLOAT_EQ(dynamic_cast<HuberLoss<float>&>(*huber).delta(), 0.25f);
  try {
    make_loss("hinge");
    FAIL() << "an unknown loss was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cross-entropy|mse|l1|huber"), std::string::npos);
  }
  EXPECT_THROW(make_loss("huber", 0.0), Error);
}

// Layers reject inputs they cannot take, naming themselves and both shapes.
TEST(LayerErrors, ShapeMismatchesAreClear) {
  Conv2d<float> conv({.in_channels = 3, .out_channels = 4, .kernel = 5});
  try {
    conv.build(Shape{1, 2, 8, 8});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected 3 input channels, got input 1x2x8x8"),
              std::string::npos)
        << e.what();
  }
  Conv2d<float> big({.out_channels = 4, .kernel = 5});
  EXPECT_THROW(big.build(Shape{1, 1, 3, 3}), Error);
  MaxPool2d<float> pool({.kernel = 2, .pad = 2});  // padding more than half the window
  EXPECT_THROW(pool.build(Shape{1, 1, 4, 4}), Error);
  Linear<float> fc({.out_features = 3});
  EXPECT_THROW(fc.build(Shape{1, 2, 3, 3}), Error);  // needs flatten first
  fc.build(Shape{4, 6});
  Tensor<float> x(Shape{4, 5}), y;
  try {
    fc.forward(x, y, Mode::Eval);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected input Nx6, got 4x5"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace convnet
