// Parity with PyTorch 1.13: fixtures written by tools/make_golden.py (float64 PyTorch results)
// against our layers, losses and optimizers, run in double (reference kernels, tolerance 1e-10)
// and in float (the fast kernels, tolerance 1e-5 relative).
#include "support/golden_io.hpp"
#include "support/testing.hpp"

namespace convnet {
namespace {

using testing::GoldenFile;
using testing::GoldenTensor;

GoldenFile fixture(const std::string& name) {
  return GoldenFile(std::string(CONVNET_GOLDEN_DIR) + "/" + name);
}

Shape shape_of(const GoldenTensor& g) {
  switch (g.shape.size()) {
    case 1:
      return Shape{g.shape[0]};
    case 2:
      return Shape{g.shape[0], g.shape[1]};
    case 3:
      return Shape{g.shape[0], g.shape[1], g.shape[2]};
    case 4:
      return Shape{g.shape[0], g.shape[1], g.shape[2], g.shape[3]};
    default:
      return Shape{};
  }
}

template <class T>
Tensor<T> tensor_of(const GoldenTensor& g) {
  Tensor<T> t(shape_of(g));
  for (int64_t i = 0; i < g.size(); ++i) t[i] = static_cast<T>(g.data[i]);
  return t;
}

// Tolerance: double runs match to rounding (1e-10 relative). Float runs: 1e-5 relative, plus an
// absolute part of 1e-6 × the tensor's largest magnitude, because float32 sums that cancel to
// near zero keep the rounding error of their largest terms, which no relative test can bound.
template <class T>
::testing::AssertionResult matches(const Tensor<T>& got, const GoldenTensor& want) {
  if (got.numel() != want.size())
    return ::testing::AssertionFailure() << "size " << got.numel() << " vs golden " << want.size();
  double scale = 0;
  for (double v : want.data) scale = std::max(scale, std::abs(v));
  const bool is_double = std::is_same_v<T, double>;
  return testing::all_close(got.data(), want.data.data(), got.numel(), is_double ? 1e-10 : 1e-5,
                            (is_double ? 1e-12 : 1e-6) * scale);
}

template <class T>
class Golden : public ::testing::Test {
 protected:
  // Backend::Fast for float runs the optimised kernels; double always runs the reference.
};
using Precisions = ::testing::Types<double, float>;
TYPED_TEST_SUITE(Golden, Precisions);

// Runs forward and backward with upstream gradient g; returns (y, dx).
template <class T>
std::pair<Tensor<T>, Tensor<T>> run_layer(Layer<T>& layer, const GoldenFile& f) {
  const Tensor<T> x = tensor_of<T>(f["x"]);
  layer.build(x.shape());
  Tensor<T> y;
  layer.forward(x, y, Mode::Train);
  for (auto& p : layer.params()) p.grad->zero();
  Tensor<T> dx(x.shape());
  layer.backward(x, y, tensor_of<T>(f["g"]), &dx);
  return {std::move(y), std::move(dx)};
}

TYPED_TEST(Golden, Conv2d) {
  using T = TypeParam;
  for (const char* name :
       {"conv2d_basic.bin", "conv2d_stride_pad_nonsquare.bin", "conv2d_dilation_nobias.bin",
        "conv2d_groups2.bin", "conv2d_depthwise_mult2.bin"}) {
    SCOPED_TRACE(name);
    const GoldenFile f = fixture(name);
    const auto& w = f["w"];
    const auto& st = f["stride"].data;
    const auto& pd = f["pad"].data;
    const auto& dl = f["dilation"].data;
    auto i = [](double v) { return static_cast<int64_t>(v); };
    Conv2d<T> conv({.out_channels = w.shape[0],
                    .kernel_h = w.shape[2],
                    .kernel_w = w.shape[3],
                    .stride_h = i(st[0]),
                    .stride_w = i(st[1]),
                    .pad_h = i(pd[0]),
                    .pad_w = i(pd[1]),
                    .dilation_h = i(dl[0]),
                    .dilation_w = i(dl[1]),
                    .groups = f.has("groups") ? i(f["groups"].scalar()) : 1,
                    .bias = f.has("b")});
    conv.build(shape_of(f["x"]));
    conv.weight() = tensor_of<T>(w);
    if (f.has("b")) conv.bias() = tensor_of<T>(f["b"]);
    auto [y, dx] = run_layer(conv, f);
    EXPECT_TRUE(matches(y, f["y"])) << "y";
    EXPECT_TRUE(matches(dx, f["dx"])) << "dx";
    EXPECT_TRUE(matches(conv.grad_weight(), f["dw"])) << "dw";
    if (f.has("b")) {
      EXPECT_TRUE(matches(conv.grad_bias(), f["db"])) << "db";
    }
  }
}

TYPED_TEST(Golden, ConvTranspose2d) {
  using T = TypeParam;
  for (const char* name : {"conv_transpose2d_s2_op1.bin", "conv_transpose2d_groups_dilation.bin"}) {
    SCOPED_TRACE(name);
    const GoldenFile f = fixture(name);
    const auto& w = f["w"];
    auto i = [](double v) { return static_cast<int64_t>(v); };
    const auto& st = f["stride"].data;
    const auto& pd = f["pad"].data;
    const auto& op = f["output_padding"].data;
    const auto& dl = f["dilation"].data;
    const int64_t groups = i(f["groups"].scalar());
    ConvTranspose2d<T> conv({.out_channels = w.shape[1] * groups,
                             .kernel_h = w.shape[2],
                             .kernel_w = w.shape[3],
                             .stride_h = i(st[0]),
                             .stride_w = i(st[1]),
                             .pad_h = i(pd[0]),
                             .pad_w = i(pd[1]),
                             .output_padding_h = i(op[0]),
                             .output_padding_w = i(op[1]),
                             .dilation_h = i(dl[0]),
                             .dilation_w = i(dl[1]),
                             .groups = groups,
                             .bias = f.has("b")});
    conv.build(shape_of(f["x"]));
    conv.weight() = tensor_of<T>(w);
    if (f.has("b")) conv.bias() = tensor_of<T>(f["b"]);
    auto [y, dx] = run_layer(conv, f);
    EXPECT_TRUE(matches(y, f["y"])) << "y";
    EXPECT_TRUE(matches(dx, f["dx"])) << "dx";
    EXPECT_TRUE(matches(conv.grad_weight(), f["dw"])) << "dw";
    if (f.has("b")) {
      EXPECT_TRUE(matches(conv.grad_bias(), f["db"])) << "db";
    }
  }
}

TYPED_TEST(Golden, Pooling) {
  using T = TypeParam;
  for (const char* kind : {"maxpool2d", "avgpool2d"})
    for (const char* suffix : {"_k2s2.bin", "_k3s2p1.bin"}) {
      const std::string name = std::string(kind) + suffix;
      SCOPED_TRACE(name);
      const GoldenFile f = fixture(name);
      auto i = [&](const char* key, int k) { return static_cast<int64_t>(f[key].data[k]); };
      const Pool2dOptions o{.kernel_h = i("kernel", 0),
                            .kernel_w = i("kernel", 1),
                            .stride_h = i("stride", 0),
                            .stride_w = i("stride", 1),
                            .pad_h = i("pad", 0),
                            .pad_w = i("pad", 1)};
      std::unique_ptr<Layer<T>> pool;
      if (std::string(kind) == "maxpool2d")
        pool = std::make_unique<MaxPool2d<T>>(o);
      else
        pool = std::make_unique<AvgPool2d<T>>(o);  // count_pad = true, as the fixture
      auto [y, dx] = run_layer(*pool, f);
      EXPECT_TRUE(matches(y, f["y"])) << "y";
      EXPECT_TRUE(matches(dx, f["dx"])) << "dx";
    }
}

TYPED_TEST(Golden, Linear) {
  using T = TypeParam;
  const GoldenFile f = fixture("linear.bin");
  Linear<T> fc({.out_features = f["w"].shape[0]});
  fc.build(shape_of(f["x"]));
  fc.weight() = tensor_of<T>(f["w"]);
  fc.bias() = tensor_of<T>(f["b"]);
  auto [y, dx] = run_layer(fc, f);
  EXPECT_TRUE(matches(y, f["y"]));
  EXPECT_TRUE(matches(dx, f["dx"]));
  EXPECT_TRUE(matches(fc.grad_weight(), f["dw"]));
  EXPECT_TRUE(matches(fc.grad_bias(), f["db"]));
}

TYPED_TEST(Golden, Activations) {
  using T = TypeParam;
  const GoldenFile f = fixture("activations.bin");
  const Tensor<T> x = tensor_of<T>(f["x"]);
  auto check = [&](Layer<T>& layer, const std::string& prefix, const Tensor<T>& input) {
    SCOPED_TRACE(prefix);
    layer.build(input.shape());
    Tensor<T> y, dx(input.shape());
    layer.forward(input, y, Mode::Train);
    layer.backward(input, y, tensor_of<T>(f[prefix + ".g"]), &dx);
    EXPECT_TRUE(matches(y, f[prefix + ".y"]));
    EXPECT_TRUE(matches(dx, f[prefix + ".dx"]));
  };
  ReLU<T> relu;
  check(relu, "relu", x);
  LeakyReLU<T> leaky(static_cast<T>(f["leaky_relu.negative_slope"].scalar()));
  check(leaky, "leaky_relu", x);
  Sigmoid<T> sigmoid;
  check(sigmoid, "sigmoid", x);
  Tanh<T> tanh_layer;
  check(tanh_layer, "tanh", x);
  Softmax<T> softmax;
  check(softmax, "softmax", tensor_of<T>(f["softmax.x"]));
}

TYPED_TEST(Golden, GeluSiluElu) {
  using T = TypeParam;
  const GoldenFile f = fixture("gelu_silu_elu.bin");
  const Tensor<T> x = tensor_of<T>(f["x"]);
  auto check = [&](Layer<T>& layer, const std::string& prefix) {
    SCOPED_TRACE(prefix);
    layer.build(x.shape());
    Tensor<T> y, dx(x.shape());
    layer.forward(x, y, Mode::Train);
    layer.backward(x, y, tensor_of<T>(f[prefix + ".g"]), &dx);
    EXPECT_TRUE(matches(y, f[prefix + ".y"]));
    EXPECT_TRUE(matches(dx, f[prefix + ".dx"]));
  };
  GELU<T> gelu;
  check(gelu, "gelu");
  SiLU<T> silu;
  check(silu, "silu");
  ELU<T> elu(static_cast<T>(f["elu.alpha"].scalar()));
  check(elu, "elu");
  ELU<T> elu07(static_cast<T>(f["elu_a07.alpha"].scalar()));
  check(elu07, "elu_a07");
}

TYPED_TEST(Golden, GlobalAvgPool2d) {
  using T = TypeParam;
  const GoldenFile f = fixture("global_avgpool2d.bin");
  GlobalAvgPool2d<T> pool;
  auto [y, dx] = run_layer(pool, f);
  EXPECT_EQ(y.shape(), shape_of(f["y"]));
  EXPECT_TRUE(matches(y, f["y"]));
  EXPECT_TRUE(matches(dx, f["dx"]));
}

// BatchNorm from random γ, β and running statistics: a training step (output, input and
// parameter gradients, running statistics), a second training step (running statistics), then
// evaluation with the running statistics (output and gradients).
TYPED_TEST(Golden, BatchNorm) {
  using T = TypeParam;
  for (const char* name : {"batchnorm2d.bin", "batchnorm1d.bin", "batchnorm1d_ncl.bin"}) {
    SCOPED_TRACE(name);
    const GoldenFile f = fixture(name);
    const Tensor<T> x = tensor_of<T>(f["x"]);
    const BatchNormOptions o{.eps = f["eps"].scalar(), .momentum = f["momentum"].scalar()};
    std::unique_ptr<BatchNorm<T>> bn;
    if (x.shape().rank() == 4)
      bn = std::make_unique<BatchNorm2d<T>>(o);
    else
      bn = std::make_unique<BatchNorm1d<T>>(o);
    bn->build(x.shape());
    bn->weight() = tensor_of<T>(f["weight"]);
    bn->bias() = tensor_of<T>(f["bias"]);
    bn->running_mean() = tensor_of<T>(f["running_mean0"]);
    bn->running_var() = tensor_of<T>(f["running_var0"]);

    for (const std::string mode : {"train", "eval"}) {
      SCOPED_TRACE(mode);
      Tensor<T> y, dx(x.shape());
      bn->forward(x, y, mode == "train" ? Mode::Train : Mode::Eval);
      bn->grad_weight().zero();
      bn->grad_bias().zero();
      bn->backward(x, y, tensor_of<T>(f[mode + ".g"]), &dx);
      EXPECT_TRUE(matches(y, f[mode + ".y"])) << "y";
      EXPECT_TRUE(matches(dx, f[mode + ".dx"])) << "dx";
      EXPECT_TRUE(matches(bn->grad_weight(), f[mode + ".dweight"])) << "dweight";
      EXPECT_TRUE(matches(bn->grad_bias(), f[mode + ".dbias"])) << "dbias";
      if (mode == "train") {
        EXPECT_TRUE(matches(bn->running_mean(), f["train.running_mean"])) << "running_mean";
        EXPECT_TRUE(matches(bn->running_var(), f["train.running_var"])) << "running_var";
        Tensor<T> y2;
        bn->forward(tensor_of<T>(f["x2"]), y2, Mode::Train);
        EXPECT_TRUE(matches(bn->running_mean(), f["train2.running_mean"])) << "2 steps: mean";
        EXPECT_TRUE(matches(bn->running_var(), f["train2.running_var"])) << "2 steps: var";
      }
    }
  }
}

TYPED_TEST(Golden, Losses) {
  using T = TypeParam;
  const GoldenFile f = fixture("cross_entropy.bin");
  for (const std::string prefix : {"", "big."}) {
    SCOPED_TRACE("cross entropy " + prefix);
    const Tensor<T> z = tensor_of<T>(f[prefix + "logits"]);
    std::vector<int32_t> labels;
    for (double l : f[prefix + "labels"].data) labels.push_back(static_cast<int32_t>(l));
    SoftmaxCrossEntropy<T> ce;
    Tensor<T> dz;
    const T loss = ce.compute(z, {.labels = labels}, &dz);
    const double want = f[prefix + "loss"].scalar();
    EXPECT_NEAR(loss, want, (std::is_same_v<T, double> ? 1e-10 : 1e-5) * std::abs(want));
    EXPECT_TRUE(matches(dz, f[prefix + "dlogits"]));
  }
  const GoldenFile m = fixture("mse.bin");
  const Tensor<T> target = tensor_of<T>(m["target"]);
  MeanSquaredError<T> mse;
  Tensor<T> dp;
  const T loss = mse.compute(tensor_of<T>(m["pred"]), {.values = &target}, &dp);
  EXPECT_NEAR(loss, m["loss"].scalar(), 1e-5 * std::abs(m["loss"].scalar()));
  EXPECT_TRUE(matches(dp, m["dpred"]));
}

// MSE, L1 and Huber against torch.nn.functional under 'mean' and 'sum', and MSE on one-hot
// targets made from labels.
TYPED_TEST(Golden, RegressionLosses) {
  using T = TypeParam;
  const GoldenFile f = fixture("regression_losses.bin");
  const Tensor<T> pred = tensor_of<T>(f["pred"]), target = tensor_of<T>(f["target"]);
  const double tolerance = std::is_same_v<T, double> ? 1e-12 : 1e-5;
  for (const LossReduction reduction : {LossReduction::Mean, LossReduction::Sum}) {
    const std::string suffix = reduction == LossReduction::Mean ? ".mean" : ".sum";
    MeanSquaredError<T> mse(reduction);
    L1Loss<T> l1(reduction);
    HuberLoss<T> huber1(T(1), reduction), huber03(T(0.3), reduction);
    for (auto [loss, name] : {std::pair<Loss<T>*, const char*>{&mse, "mse"},
                              {&l1, "l1"},
                              {&huber1, "huber1"},
                              {&huber03, "huber0.3"}}) {
      SCOPED_TRACE(name + suffix);
      Tensor<T> dp;
      const T value = loss->compute(pred, {.values = &target}, &dp);
      const double want = f[name + suffix + ".loss"].scalar();
      EXPECT_NEAR(value, want, tolerance * std::abs(want));
      EXPECT_TRUE(matches(dp, f[name + suffix + ".dpred"]));
    }
  }
  std::vector<int32_t> labels;
  for (double l : f["onehot.labels"].data) labels.push_back(static_cast<int32_t>(l));
  MeanSquaredError<T> mse;
  Tensor<T> dz;
  const T value = mse.compute(tensor_of<T>(f["onehot.logits"]), {.labels = labels}, &dz);
  EXPECT_NEAR(value, f["onehot.loss"].scalar(), tolerance * std::abs(f["onehot.loss"].scalar()));
  EXPECT_TRUE(matches(dz, f["onehot.dlogits"]));
}

template <class T>
std::unique_ptr<Optimizer<T>> optimizer_for(const GoldenFile& f, const std::string& config) {
  auto get = [&](const char* key, double fallback) {
    return f.has(config + "." + key) ? f[config + "." + key].scalar() : fallback;
  };
  if (config.rfind("sgd", 0) == 0)
    return std::make_unique<Sgd<T>>(SgdOptions{.lr = get("lr", 0),
                                               .momentum = get("momentum", 0),
                                               .dampening = get("dampening", 0),
                                               .weight_decay = get("weight_decay", 0),
                                               .nesterov = get("nesterov", 0) != 0});
  if (config.rfind("adam", 0) == 0)
    return std::make_unique<Adam<T>>(AdamOptions{.lr = get("lr", 0),
                                                 .beta1 = get("beta1", 0.9),
                                                 .beta2 = get("beta2", 0.999),
                                                 .eps = get("eps", 1e-8),
                                                 .weight_decay = get("weight_decay", 0),
                                                 .decoupled = config == "adamw"});
  return std::make_unique<RmsProp<T>>(RmsPropOptions{.lr = get("lr", 0),
                                                     .alpha = get("alpha", 0.99),
                                                     .eps = get("eps", 1e-8),
                                                     .weight_decay = get("weight_decay", 0),
                                                     .momentum = get("momentum", 0),
                                                     .centered = get("centered", 0) != 0});
}

TYPED_TEST(Golden, Optimizers) {
  using T = TypeParam;
  const GoldenFile f = fixture("optim.bin");
  for (const std::string config :
       {"sgd", "sgd_momentum", "sgd_dampening", "sgd_nesterov_wd", "adam", "adam_wd_amsgrad_off",
        "adamw", "rmsprop", "rmsprop_centered_momentum_wd"}) {
    SCOPED_TRACE(config);
    auto opt = optimizer_for<T>(f, config);
    Tensor<T> p = tensor_of<T>(f[config + ".p0"]);
    Tensor<T> g(p.shape());
    const Param<T> params[] = {{"p", &p, &g}};
    const GoldenTensor& grads = f[config + ".grads"];
    const GoldenTensor& want = f[config + ".params"];
    const int64_t n = p.numel();
    for (int64_t step = 0; step < grads.shape[0]; ++step) {
      for (int64_t i = 0; i < n; ++i) g[i] = static_cast<T>(grads.data[step * n + i]);
      opt->step(params);
      GoldenTensor row{{n}, {want.data.begin() + step * n, want.data.begin() + (step + 1) * n}};
      EXPECT_TRUE(matches(p, row)) << "after step " << step + 1;
    }
  }
}

// LeNet end to end: PyTorch's initial weights, one batch; logits, loss, every parameter
// gradient, then three SGD-momentum steps (losses and final weights).
TYPED_TEST(Golden, LeNet) {
  using T = TypeParam;
  const GoldenFile f = fixture("lenet.bin");
  Sequential<T> model = make_sequential<T>("lenet");
  const Tensor<T> x = tensor_of<T>(f["x"]);
  model.build(x.shape(), 1);
  for (const auto& p : model.params()) *p.value = tensor_of<T>(f[p.name]);
  std::vector<int32_t> labels;
  for (double l : f["labels"].data) labels.push_back(static_cast<int32_t>(l));

  SoftmaxCrossEntropy<T> ce;
  Tensor<T> dz;
  model.zero_grad();
  const Tensor<T>& logits = model.forward(x, Mode::Train);
  EXPECT_TRUE(matches(logits, f["logits"])) << "logits";
  const T loss = ce.compute(logits, {.labels = labels}, &dz);
  EXPECT_NEAR(loss, f["loss"].scalar(), 1e-5 * f["loss"].scalar());
  model.backward(dz);
  for (const auto& p : model.params()) EXPECT_TRUE(matches(*p.grad, f[p.name + ".grad"])) << p.name;

  Sgd<T> sgd({.lr = f["sgd.lr"].scalar(), .momentum = f["sgd.momentum"].scalar()});
  const GoldenTensor& losses = f["sgd.losses"];
  for (int64_t step = 0; step < losses.size(); ++step) {
    const StepResult r = model.train_step(x, {.labels = labels}, ce, sgd);
    EXPECT_NEAR(r.loss, losses.data[step], 1e-5 * losses.data[step]) << "step " << step;
  }
  for (const auto& p : model.params())
    EXPECT_TRUE(matches(*p.value, f["sgd." + p.name])) << "after 3 steps: " << p.name;
}

// Concat in a graph: two branches (one read twice) joined along channels, then a 1x1
// convolution; the input gradient and every parameter gradient against PyTorch's torch.cat.
TYPED_TEST(Golden, ConcatGraph) {
  using T = TypeParam;
  const GoldenFile f = fixture("concat_graph.bin");
  Graph<T> g;
  g.template emplace<Conv2d>("a", {"input"},
                             Conv2dOptions{.out_channels = 4, .kernel = 3, .pad = 1});
  g.template emplace<Conv2d>("b.conv", {"input"}, Conv2dOptions{.out_channels = 2, .kernel = 1});
  g.template emplace<Tanh>("b", {"b.conv"});
  g.template emplace<Concat>("cat", {"a", "b", "a"});
  g.template emplace<Conv2d>("y", {"cat"}, Conv2dOptions{.out_channels = 3, .kernel = 1});
  const Tensor<T> x = tensor_of<T>(f["x"]);
  g.build(x.shape(), 1);
  auto name_in_file = [](const std::string& p) {  // "b.conv.weight" is "b.weight" in the file
    return p.rfind("b.conv.", 0) == 0 ? "b." + p.substr(7) : p;
  };
  for (const auto& p : g.params()) *p.value = tensor_of<T>(f[name_in_file(p.name)]);
  g.zero_grad();
  EXPECT_TRUE(matches(g.forward(x, Mode::Train), f["y"])) << "y";
  Tensor<T> dx;
  g.backward(tensor_of<T>(f["g"]), &dx);
  EXPECT_TRUE(matches(dx, f["dx"])) << "dx";
  for (const auto& p : g.params())
    EXPECT_TRUE(matches(*p.grad, f[name_in_file(p.name) + ".grad"])) << p.name;
}

// resnet-small end to end (a graph: BatchNorm in training and evaluation, residual Adds,
// strided projections): PyTorch's module names are our node names. Logits, loss, every
// parameter gradient and the running statistics after one training forward; two Adam steps
// (their losses, the running statistics after them, and the evaluation-mode logits, which
// depend on every updated weight).
//
// Float runs with F(2x2, 3x3) Winograd throughout. The gradients of this small batch are
// ill-conditioned at ReLU kinks: moving x by 3e-5 (in double) moves stage 1's gradients by up to
// 2.5e-3, the size of the difference F(4x4, 3x3)'s rounding makes. So the default kernels are
// held to the forward pass here (logits and running statistics, to 1e-4: F(4x4, 3x3) rounds
// about 15x coarser than F(2x2, 3x3)), and F(4x4, 3x3) itself to the reference in the kernel
// tests (test_kernels_match_ref.cpp).
TYPED_TEST(Golden, ResNetSmall) {
  using T = TypeParam;
  const GoldenFile f = fixture("resnet_small.bin");
  const Tensor<T> x = tensor_of<T>(f["x"]);
  auto load = [&](Graph<T>& model) {
    model.build(x.shape(), 1);
    for (const auto& p : model.params()) {
      ASSERT_TRUE(f.has(p.name)) << p.name;
      *p.value = tensor_of<T>(f[p.name]);
    }
  };
  if constexpr (std::is_same_v<T, float>) {
    SCOPED_TRACE("default kernels, forward");
    Graph<T> model = make_resnet_small<T>(10, 16);
    load(model);
    auto close = [](const Tensor<T>& got, const GoldenTensor& want) {
      double scale = 0;
      for (double v : want.data) scale = std::max(scale, std::abs(v));
      return testing::all_close(got.data(), want.data.data(), got.numel(), 1e-4, 1e-5 * scale);
    };
    EXPECT_TRUE(close(model.forward(x, Mode::Train), f["logits"])) << "logits";
    for (const auto& b : model.buffers())
      EXPECT_TRUE(close(*b.value, f["after1." + b.name])) << b.name;
  }
  testing::WinogradTileScope tile(WinogradTile::F2x2);
  Graph<T> model = make_resnet_small<T>(10, 16);  // the fixture's width (the built-in is 32)
  load(model);
  std::vector<int32_t> labels;
  for (double l : f["labels"].data) labels.push_back(static_cast<int32_t>(l));
  SoftmaxCrossEntropy<T> ce;
  Tensor<T> dz;
  model.zero_grad();
  const Tensor<T>& logits = model.forward(x, Mode::Train);
  EXPECT_TRUE(matches(logits, f["logits"])) << "logits";
  const T loss = ce.compute(logits, {.labels = labels}, &dz);
  EXPECT_NEAR(loss, f["loss"].scalar(), 1e-5 * f["loss"].scalar());
  model.backward(dz);
  // Float gradients pass through 15 BatchNorm backwards, each subtracting Σdy and x̂·Σ(dy·x̂)
  // from M·dy (cancellation over as few as 36 values per channel here): an absolute bound of
  // 1e-5 of the tensor's largest gradient. Double holds the usual 1e-10.
  for (const auto& p : model.params()) {
    if constexpr (std::is_same_v<T, double>) {
      EXPECT_TRUE(matches(*p.grad, f[p.name + ".grad"])) << p.name;
    } else {
      const GoldenTensor& want = f[p.name + ".grad"];
      double scale = 0;
      for (double v : want.data) scale = std::max(scale, std::abs(v));
      EXPECT_TRUE(
          testing::all_close(p.grad->data(), want.data.data(), p.grad->numel(), 1e-4, 1e-5 * scale))
          << p.name;
    }
  }
  ASSERT_EQ(model.buffers().size(), 2u * 15);  // running mean and variance of 15 BatchNorms
  for (const auto& b : model.buffers())
    EXPECT_TRUE(matches(*b.value, f["after1." + b.name])) << b.name;

  Adam<T> adam({.lr = f["adam.lr"].scalar()});
  const GoldenTensor& losses = f["adam.losses"];
  // Float: Adam divides each gradient by its root mean square, so the float rounding of small
  // gradients becomes a relative error of the update itself; after an update, values are held
  // to 1e-4 (losses) and 1e-3 (statistics, logits) in float (double: 1e-10 as everywhere).
  for (int64_t step = 0; step < losses.size(); ++step) {
    const StepResult r = model.train_step(x, {.labels = labels}, ce, adam);
    const double rtol = std::is_same_v<T, double> ? 1e-10 : step == 0 ? 1e-5 : 1e-4;
    EXPECT_NEAR(r.loss, losses.data[step], rtol * losses.data[step]) << "step " << step;
  }
  auto after_adam = [](const Tensor<T>& got, const GoldenTensor& want) {
    if constexpr (std::is_same_v<T, double>) {
      return matches(got, want);
    } else {
      return testing::all_close(got.data(), want.data.data(), got.numel(), 1e-3, 1e-3);
    }
  };
  for (const auto& b : model.buffers())
    EXPECT_TRUE(after_adam(*b.value, f["adam." + b.name])) << "after Adam: " << b.name;
  EXPECT_TRUE(after_adam(model.predict(x), f["eval_logits"])) << "eval logits";
}

}  // namespace
}  // namespace convnet
