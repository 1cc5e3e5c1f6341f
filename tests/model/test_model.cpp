// Sequential: shape inference, summaries, errors, batch-size changes, divergence, and the
// README's example staying in sync with examples/quickstart.cpp.
#include <fstream>
#include <sstream>

#include "support/testing.hpp"

namespace convnet {
namespace {

TEST(Sequential, LeNetShapesAndParameterCount) {
  Sequential<float> m = make_sequential<float>("lenet");
  m.build(Shape{64, 1, 28, 28}, 1);
  EXPECT_EQ(m.layer_output_shape(0), (Shape{64, 6, 28, 28}));
  EXPECT_EQ(m.layer_output_shape(2), (Shape{64, 6, 14, 14}));
  EXPECT_EQ(m.layer_output_shape(5), (Shape{64, 16, 5, 5}));
  EXPECT_EQ(m.layer_output_shape(6), (Shape{64, 400}));
  EXPECT_EQ(m.output_shape(), (Shape{64, 10}));
  // 6·25+6 + 16·6·25+16 + 400·120+120 + 120·84+84 + 84·10+10
  EXPECT_EQ(m.param_count(), 156 + 2416 + 48120 + 10164 + 850);
  const std::string s = m.summary();
  EXPECT_NE(s.find("Nx16x5x5"), std::string::npos) << s;
  EXPECT_NE(s.find("48120"), std::string::npos) << s;
  EXPECT_NE(s.find("Total params: 61706"), std::string::npos) << s;
}

TEST(Sequential, VggSmallInfersShapes) {
  Sequential<float> m = make_sequential<float>("vgg-small");
  m.build(Shape{2, 3, 32, 32}, 1);
  EXPECT_EQ(m.layer_output_shape(12), (Shape{2, 128, 4, 4}));  // after the third pool
  EXPECT_EQ(m.output_shape(), (Shape{2, 10}));
  Sequential<float> mnist = make_sequential<float>("vgg-small");
  mnist.build(Shape{2, 1, 28, 28}, 1);  // 28 -> 14 -> 7 -> 3
  EXPECT_EQ(mnist.layer_output_shape(13), (Shape{2, 128 * 3 * 3}));
}

TEST(Sequential, ImpossibleNetworkNamesLayerAndShapes) {
  Sequential<float> m = make_sequential<float>("lenet");
  const std::string msg = testing::error_of([&] { m.build(Shape{1, 1, 8, 8}); });
  // 8 -> pool 4 -> conv 5x5 without padding cannot fit.
  EXPECT_NE(msg.find("layer 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("conv2d 5x5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1x6x4x4"), std::string::npos) << msg;
  EXPECT_NE(msg.find("smaller than the (dilated) kernel 5x5"), std::string::npos) << msg;
  EXPECT_NE(testing::error_of([] { make_model<float>("resnet"); }).find("known: lenet, vgg-small, resnet-small"),
            std::string::npos);
}

TEST(Sequential, WrongInputShapeAtForward) {
  Sequential<float> m = make_sequential<float>("lenet");
  m.build(Shape{4, 1, 28, 28}, 1);
  Tensor<float> x(Shape{4, 3, 28, 28});
  const std::string msg = testing::error_of([&] { m.forward(x, Mode::Eval); });
  EXPECT_NE(msg.find("expected input Nx1x28x28, got 4x3x28x28"), std::string::npos) << msg;
}

// Any batch size works after build; up to the built size nothing is reallocated.
TEST(Sequential, BatchSizeCanChange) {
  Sequential<float> m = make_sequential<float>("lenet");
  m.build(Shape{8, 1, 28, 28}, 1);
  Rng rng(1);
  const Tensor<float> big = testing::random_normal<float>(Shape{8, 1, 28, 28}, rng);
  Tensor<float> one(Shape{1, 1, 28, 28});
  std::copy_n(big.data() + 3 * 784, 784, one.data());
  const Tensor<float> all = m.predict(big);
  const Tensor<float> single = m.predict(one);
  ASSERT_EQ(single.shape(), (Shape{1, 10}));
  EXPECT_TRUE(testing::all_close(single.data(), all.data() + 30, 10, 1e-5, 1e-6));
  const Tensor<float> larger(Shape{12, 1, 28, 28});
  EXPECT_EQ(m.predict(larger).shape(), (Shape{12, 10}));
}

TEST(Sequential, DivergenceIsAnErrorAndWeightsAreKept) {
  Sequential<float> m;
  m.emplace<Linear>(LinearOptions{.out_features = 3});
  m.build(Shape{2, 4}, 1);
  Tensor<float> x(Shape{2, 4}, 1.0f);
  x[0] = NAN;
  const std::vector<int32_t> labels{0, 1};
  SoftmaxCrossEntropy<float> ce;
  Sgd<float> sgd({.lr = 0.1});
  const Tensor<float> before = *m.params()[0].value;
  const std::string msg = testing::error_of([&] { m.train_step(x, {.labels = labels}, ce, sgd); });
  EXPECT_NE(msg.find("loss is nan"), std::string::npos) << msg;
  EXPECT_TRUE(testing::all_close(*m.params()[0].value, before, 0, 0));
}

TEST(Sequential, LabelOutOfRange) {
  Sequential<float> m;
  m.emplace<Linear>(LinearOptions{.out_features = 3});
  m.build(Shape{1, 2}, 1);
  const std::vector<int32_t> labels{3};
  SoftmaxCrossEntropy<float> ce;
  Sgd<float> sgd;
  const std::string msg =
      testing::error_of([&] { m.train_step(Tensor<float>(Shape{1, 2}), {.labels = labels}, ce, sgd); });
  EXPECT_NE(msg.find("label 3 of sample 0 is outside [0, 3)"), std::string::npos) << msg;
}

TEST(Init, SchemesHaveTheirStatedSpread) {
  // fan_in = 100, fan_out = 50 (linear 100 -> 50): check the sample std of 5000 weights.
  auto stddev = [](Init init) {
    Linear<double> fc({.in_features = 100, .out_features = 50, .init = init});
    fc.build(Shape{1, 100});
    Rng rng(3);
    fc.init(rng);
    double sum = 0, sq = 0;
    const auto& w = fc.weight();
    for (int64_t i = 0; i < w.numel(); ++i) sum += w[i], sq += w[i] * w[i];
    const double n = static_cast<double>(w.numel());
    return std::sqrt(sq / n - (sum / n) * (sum / n));
  };
  EXPECT_NEAR(stddev(Init::Default), 0.1 / std::sqrt(3.0), 0.003);  // U(±1/√100): b/√3
  EXPECT_NEAR(stddev(Init::KaimingUniform), std::sqrt(6.0 / 100) / std::sqrt(3.0), 0.004);
  EXPECT_NEAR(stddev(Init::KaimingNormal), std::sqrt(2.0 / 100), 0.004);
  EXPECT_NEAR(stddev(Init::XavierUniform), std::sqrt(6.0 / 150) / std::sqrt(3.0), 0.004);
  EXPECT_NEAR(stddev(Init::XavierNormal), std::sqrt(2.0 / 150), 0.004);
}

// The README's C++ examples are examples/quickstart.cpp and examples/trainer.cpp verbatim (which
// CMake builds).
TEST(Docs, ReadmeExampleIsTheBuiltExample) {
  auto slurp = [](const char* path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  const std::string readme = slurp(CONVNET_README);
  for (const char* path : {CONVNET_QUICKSTART, CONVNET_TRAINER_EXAMPLE}) {
    const std::string example = slurp(path);
    ASSERT_FALSE(example.empty()) << path;
    EXPECT_NE(readme.find(example), std::string::npos)
        << "README.md must contain " << path << " verbatim";
  }
}

}  // namespace
}  // namespace convnet
