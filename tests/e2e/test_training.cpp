// End to end: small networks learn tiny synthetic problems, and a seed reproduces a run bit for
// bit.
#include <cstring>

#include "support/testing.hpp"

namespace convnet {
namespace {

Sequential<float> small_cnn() {
  Sequential<float> m;
  m.emplace<Conv2d>(Conv2dOptions{.out_channels = 4, .kernel = 3, .pad = 1});
  m.emplace<ReLU>();
  m.emplace<MaxPool2d>(Pool2dOptions{.kernel = 2});
  m.emplace<Flatten>();
  m.emplace<Linear>(LinearOptions{.out_features = 4});
  return m;
}

TEST(Training, SmallCnnReachesFullTrainingAccuracy) {
  const Dataset data = testing::quadrant_images(64, 3);
  for (const char* name : {"sgd", "adam", "rmsprop"}) {
    SCOPED_TRACE(name);
    Sequential<float> model = small_cnn();
    model.build(Shape{16, 1, 8, 8}, 5);
    std::unique_ptr<Optimizer<float>> opt;
    if (std::string(name) == "sgd") opt = std::make_unique<Sgd<float>>(SgdOptions{.lr = 0.1, .momentum = 0.9});
    if (std::string(name) == "adam") opt = std::make_unique<Adam<float>>(AdamOptions{.lr = 0.01});
    if (std::string(name) == "rmsprop") opt = std::make_unique<RmsProp<float>>(RmsPropOptions{.lr = 0.003});
    SoftmaxCrossEntropy<float> loss;
    const auto history =
        fit(model, data, nullptr, loss, *opt, {.epochs = 30, .batch = 16, .seed = 7}).epochs;
    EXPECT_LT(history.back().train_loss, history.front().train_loss / 4);
    const EvalStats e = evaluate(model, data, loss);
    EXPECT_EQ(e.accuracy, 1.0) << "loss " << e.loss;
  }
}

// FitOptions::test_confusion is filled by the epoch's own test evaluation: it counts every test
// image once, its diagonal is the accuracy fit reported, and it matches evaluate_classifier's.
TEST(Training, TestConfusionComesFromTheEpochsEvaluation) {
  const Dataset train = testing::quadrant_images(48, 3), test = testing::quadrant_images(30, 4);
  Sequential<float> model = small_cnn();
  model.build(Shape{16, 1, 8, 8}, 5);
  Sgd<float> sgd(SgdOptions{.lr = 0.05});
  SoftmaxCrossEntropy<float> loss;
  ConfusionMatrix confusion(7);  // reset to the test set's 4 classes by fit
  confusion.add(0, 0);
  const auto history = fit(model, train, &test, loss, sgd,
                           {.epochs = 2, .batch = 16, .seed = 7, .test_confusion = &confusion})
                           .epochs;
  ASSERT_EQ(confusion.classes(), 4);
  EXPECT_EQ(confusion.total(), test.size());
  int64_t diagonal = 0;
  for (int64_t k = 0; k < 4; ++k) diagonal += confusion.count(k, k);
  EXPECT_DOUBLE_EQ(static_cast<double>(diagonal) / static_cast<double>(test.size()),
                   history.back().test_acc);
  const ClassificationReport again = evaluate_classifier(model, test, loss, 1, 16);
  for (int64_t k = 0; k < 4; ++k)
    for (int64_t j = 0; j < 4; ++j) EXPECT_EQ(confusion.count(k, j), again.confusion.count(k, j));
}

// Regression with MSE: a linear layer learns y = 2·x0 - x1 + 0.5.
TEST(Training, LinearRegressionWithMse) {
  Sequential<float> model;
  model.emplace<Linear>(LinearOptions{.out_features = 1});
  model.build(Shape{32, 2}, 1);
  Rng rng(2);
  Tensor<float> x(Shape{32, 2}), y(Shape{32, 1});
  for (int64_t n = 0; n < 32; ++n) {
    x[2 * n] = static_cast<float>(rng.uniform(-1, 1));
    x[2 * n + 1] = static_cast<float>(rng.uniform(-1, 1));
    y[n] = 2 * x[2 * n] - x[2 * n + 1] + 0.5f;
  }
  MeanSquaredError<float> mse;
  Sgd<float> sgd({.lr = 0.1});
  double last = 0;
  for (int step = 0; step < 500; ++step) last = model.train_step(x, {.values = &y}, mse, sgd).loss;
  EXPECT_LT(last, 1e-6);
  auto& fc = dynamic_cast<Linear<float>&>(model.layer(0));
  EXPECT_NEAR(fc.weight()[0], 2.0, 1e-3);
  EXPECT_NEAR(fc.weight()[1], -1.0, 1e-3);
  EXPECT_NEAR(fc.bias()[0], 0.5, 1e-3);
}

// Same seed, same thread count: identical weights after training, bit for bit. A short last
// batch (50 = 3·16 + 2) is part of the run.
TEST(Training, SeedReproducesRunBitForBit) {
  const Dataset data = testing::quadrant_images(50, 4);
  auto run = [&] {
    Sequential<float> model = small_cnn();
    model.build(Shape{16, 1, 8, 8}, 9);
    Adam<float> adam({.lr = 0.01});
    SoftmaxCrossEntropy<float> loss;
    fit(model, data, nullptr, loss, adam, {.epochs = 2, .batch = 16, .seed = 3});
    std::vector<float> weights;
    for (const auto& p : model.params())
      weights.insert(weights.end(), p.value->data(), p.value->data() + p.value->numel());
    return weights;
  };
  for (int threads : {1, 2}) {
    const testing::ThreadCount use(threads);
    const auto a = run(), b = run();
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << threads;
  }
}

// The fast and reference kernel families train the same model to the same place.
TEST(Training, FastAndReferenceBackendsAgree) {
  const Dataset data = testing::quadrant_images(32, 5);
  auto run = [&](Backend b) {
    const testing::BackendScope use(b);
    Sequential<float> model = small_cnn();
    model.build(Shape{8, 1, 8, 8}, 2);
    Sgd<float> sgd({.lr = 0.05, .momentum = 0.9});
    SoftmaxCrossEntropy<float> loss;
    const auto h = fit(model, data, nullptr, loss, sgd, {.epochs = 3, .batch = 8, .seed = 1}).epochs;
    return h.back().train_loss;
  };
  const double fast = run(Backend::Fast), ref = run(Backend::Reference);
  EXPECT_NEAR(fast, ref, 1e-4 * std::abs(ref));
}

// Mixed precision (bf16 products, float everything else) takes every built-in model along the
// same path as float: lenet (direct and GEMM convolutions, fully connected layers), vgg-small
// (Winograd) and resnet-small (strided GEMM convolutions, BatchNorm). Ten SGD steps on one batch
// from the same weights: each step's loss within 3% of float's, and not equal to it.
TEST(Training, Bf16StepsTrackFloat) {
  if (!cpu_has_bf16()) GTEST_SKIP() << "this CPU has no AVX512_BF16";
  struct Case {
    const char* model;
    int64_t channels, size;
  };
  for (const Case& c : {Case{"lenet", 1, 28}, Case{"vgg-small", 3, 32}, Case{"resnet-small", 1, 28}}) {
    SCOPED_TRACE(c.model);
    Rng rng(5);
    const Tensor<float> x = testing::random_normal<float>(Shape{16, c.channels, c.size, c.size}, rng);
    std::vector<int32_t> labels(16);
    for (auto& l : labels) l = static_cast<int32_t>(rng.below(10));
    auto losses = [&](Precision precision) {
      const testing::PrecisionScope use(precision);
      std::unique_ptr<Model<float>> model = make_model<float>(c.model);
      model->build(x.shape(), 3);
      EXPECT_EQ(model->context().precision(), precision);
      SoftmaxCrossEntropy<float> loss;
      Sgd<float> sgd({.lr = 0.01, .momentum = 0.9});
      std::vector<double> out;
      for (int step = 0; step < 10; ++step)
        out.push_back(model->train_step(x, {.labels = labels}, loss, sgd).loss);
      return out;
    };
    const std::vector<double> fp32 = losses(Precision::Fp32), bf16 = losses(Precision::Bf16);
    for (size_t i = 0; i < fp32.size(); ++i) EXPECT_NEAR(bf16[i], fp32[i], 0.03 * fp32[i]) << i;
    EXPECT_NE(bf16, fp32) << "bf16 must not be running the float kernels";
  }
}

}  // namespace
}  // namespace convnet

namespace convnet {
namespace {

std::vector<float> weights_of(const Model<float>& model) {
  std::vector<float> w;
  for (const auto& p : model.params()) w.insert(w.end(), p.value->data(), p.value->data() + p.value->numel());
  return w;
}

// A batch callback stops mid-epoch; continuing from where the result says (with the optimizer
// carried over, as a checkpoint would) ends on the weights of an unbroken run, augmentation and
// a step schedule included. Epoch callbacks see the scheduled rate and one gradient norm per
// parameter tensor.
TEST(Training, CallbacksStopAndRunsContinueExactly) {
  const Dataset data = testing::quadrant_images(50, 4);  // 4 batches of 16: 16, 16, 16, 2
  FitOptions options{.epochs = 3, .batch = 16, .seed = 3,
                     .augment = {.crop_padding = 1, .horizontal_flip = true}};
  options.schedule.kind = LrSchedule::Kind::Step;
  options.schedule.step_size = 1;
  options.schedule.gamma = 0.5;
  SoftmaxCrossEntropy<float> loss;

  Sequential<float> unbroken = small_cnn();
  unbroken.build(Shape{16, 1, 8, 8}, 9);
  Adam<float> adam1({.lr = 0.01});
  std::vector<double> rates;
  const FitResult full = fit(unbroken, data, nullptr, loss, adam1, options,
                             {.on_batch_end = {}, .on_epoch_end = [&](const EpochStats& s) {
                                rates.push_back(s.learning_rate);
                                EXPECT_EQ(s.grad_norms.size(), unbroken.params().size());
                                for (double g : s.grad_norms) EXPECT_GT(g, 0);
                                return true;
                              }});
  EXPECT_FALSE(full.stopped);
  EXPECT_EQ(full.completed_epochs, 3);
  EXPECT_EQ(rates, (std::vector<double>{0.01, 0.005, 0.0025}));

  Sequential<float> stopped = small_cnn();
  stopped.build(Shape{16, 1, 8, 8}, 9);
  Adam<float> adam2({.lr = 0.01});
  const FitResult first = fit(stopped, data, nullptr, loss, adam2, options,
                              {.on_batch_end = [](const BatchStats& b) {
                                 EXPECT_EQ(b.steps, 4);
                                 return !(b.epoch == 2 && b.step == 1);  // stop after 2 batches
                               },
                               .on_epoch_end = {}});
  EXPECT_TRUE(first.stopped);
  EXPECT_EQ(first.completed_epochs, 1);
  EXPECT_EQ(first.completed_steps, 2);
  EXPECT_EQ(first.epochs.size(), 1u);
  adam2.set_learning_rate(0.01);  // the run's initial rate, as the CLI rebuilds it from its flags
  FitOptions rest = options;
  rest.completed_epochs = first.completed_epochs;
  rest.completed_steps = first.completed_steps;
  const FitResult second = fit(stopped, data, nullptr, loss, adam2, rest);
  EXPECT_EQ(second.completed_epochs, 3);
  EXPECT_EQ(weights_of(stopped), weights_of(unbroken));

  // An epoch callback that says stop ends the run after that epoch.
  Sequential<float> early = small_cnn();
  early.build(Shape{16, 1, 8, 8}, 9);
  Adam<float> adam3({.lr = 0.01});
  const FitResult one = fit(early, data, nullptr, loss, adam3, options,
                            {.on_batch_end = {}, .on_epoch_end = [](const EpochStats&) { return false; }});
  EXPECT_TRUE(one.stopped);
  EXPECT_EQ(one.completed_epochs, 1);
  EXPECT_EQ(one.epochs.size(), 1u);
}

}  // namespace
}  // namespace convnet
