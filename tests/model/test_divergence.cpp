// Divergence: a NaN or Inf in the loss or a gradient stops the step before the update, with a
// message naming where it first appears; gradient clipping follows clip_grad_norm_.
#include <limits>

#include "support/testing.hpp"

namespace convnet {
namespace {

// Passes x through; backward writes NaN into dx: a gradient that breaks while the loss is fine.
class NanBackward final : public Layer<float> {
 public:
  std::string kind() const override { return "nan_backward"; }
  Shape build(const Shape& input) override { return input; }
  void forward(const Tensor<float>& x, Tensor<float>& y, Mode) override {
    y.resize(x.shape());
    std::copy(x.data(), x.data() + x.numel(), y.data());
  }
  void backward(const Tensor<float>&, const Tensor<float>&, const Tensor<float>& dy,
                Tensor<float>* dx) override {
    if (dx)
      for (int64_t i = 0; i < dy.numel(); ++i) (*dx)[i] += std::numeric_limits<float>::quiet_NaN();
  }
};

std::string step_error(Model<float>& m, const Tensor<float>& x, Optimizer<float>& opt) {
  SoftmaxCrossEntropy<float> loss;
  const std::vector<int32_t> labels(static_cast<size_t>(x.dim(0)), 1);
  try {
    m.train_step(x, {.labels = labels}, loss, opt);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::vector<float> weights(const Model<float>& m) {
  std::vector<float> w;
  for (const auto& p : m.params())
    w.insert(w.end(), p.value->data(), p.value->data() + p.value->numel());
  return w;
}

Sequential<float> chain() {
  Sequential<float> m;
  m.emplace<Linear>(LinearOptions{.out_features = 5});
  m.emplace<ReLU>();
  m.emplace<Linear>(LinearOptions{.out_features = 3});
  return m;
}

TEST(Divergence, NonFiniteLossNamesTheFirstLayerAndKeepsTheWeights) {
  Sequential<float> m = chain();
  m.build(Shape{2, 4}, 1);
  Sgd<float> sgd({.lr = 0.1});
  Rng rng(1);
  Tensor<float> x = testing::random_normal<float>(Shape{2, 4}, rng);
  (*m.params()[2].value)[3] = std::numeric_limits<float>::infinity();  // layer2.weight
  const std::vector<float> before = weights(m);
  const std::string e = step_error(m, x, sgd);
  EXPECT_NE(e.find("softmax_cross_entropy: loss is "), std::string::npos) << e;
  EXPECT_NE(e.find("at optimizer step 1 (batch of 2): the first non-finite values are in the "
                   "output of layer2 (linear 5->3)"),
            std::string::npos)
      << e;
  EXPECT_EQ(weights(m), before);
  EXPECT_EQ(sgd.steps(), 0);

  Sequential<float> clean = chain();
  clean.build(Shape{2, 4}, 1);
  x[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_NE(step_error(clean, x, sgd).find("the first non-finite values are in the input batch"),
            std::string::npos);
}

TEST(Divergence, NonFiniteGradientNamesWhereItStartsFromTheOutput) {
  Sequential<float> m;
  m.emplace<Linear>(LinearOptions{.out_features = 5});
  m.add(std::make_unique<NanBackward>());
  m.emplace<Linear>(LinearOptions{.out_features = 3});
  m.build(Shape{2, 4}, 1);
  Adam<float> adam;
  Rng rng(2);
  const std::vector<float> before = weights(m);
  const std::string e = step_error(m, testing::random_normal<float>(Shape{2, 4}, rng), adam);
  EXPECT_NE(e.find("gradients are not finite at optimizer step 1 (batch of 2, loss "),
            std::string::npos)
      << e;
  // layer2's own gradients are fine; the NaN starts in what layer1 hands back to layer0.
  EXPECT_NE(e.find("the first non-finite values are in the gradient of the output of layer0 "
                   "(linear 4->5)"),
            std::string::npos)
      << e;
  EXPECT_EQ(weights(m), before);
}

// Passes x through in evaluation, and in training until its `healthy` forward passes are
// spent; then its output is NaN: a run that breaks mid-epoch.
class NanAfter final : public Layer<float> {
 public:
  explicit NanAfter(int healthy) : healthy_(healthy) {}
  std::string kind() const override { return "nan_after"; }
  Shape build(const Shape& input) override { return input; }
  void forward(const Tensor<float>& x, Tensor<float>& y, Mode mode) override {
    y.resize(x.shape());
    const bool broken = mode == Mode::Train && healthy_-- <= 0;
    for (int64_t i = 0; i < x.numel(); ++i)
      y[i] = broken ? std::numeric_limits<float>::quiet_NaN() : x[i];
  }
  void backward(const Tensor<float>&, const Tensor<float>&, const Tensor<float>& dy,
                Tensor<float>* dx) override {
    if (dx)
      for (int64_t i = 0; i < dy.numel(); ++i) (*dx)[i] += dy[i];
  }

 private:
  int healthy_;
};

// fit() stops at the batch that diverges with where the run stood before it, and leaves the
// model as it was then: parameters (never updated by that step) and buffers too, although the
// failing forward pass had already folded its NaN batch into BatchNorm's running statistics.
TEST(Divergence, FitReportsTheLastGoodPositionAndKeepsTheBuffers) {
  Sequential<float> m;
  m.emplace<Flatten>();
  m.emplace<Linear>(LinearOptions{.out_features = 6});
  m.add(std::make_unique<NanAfter>(5));  // steps 1-5 are fine, the 6th diverges
  m.emplace<BatchNorm1d>();
  m.emplace<Linear>(LinearOptions{.out_features = 3});
  m.build(Shape{4, 1, 2, 2}, 1);
  Rng rng(4);
  const Dataset data = Dataset::from_floats(testing::random_normal<float>(Shape{12, 1, 2, 2}, rng),
                                            std::vector<int32_t>(12, 1), 3);
  Sgd<float> sgd({.lr = 0.01});
  SoftmaxCrossEntropy<float> loss;
  std::vector<float> params_after_step, buffers_after_step;
  auto values = [](auto list) {
    std::vector<float> out;
    for (const auto& p : list)
      out.insert(out.end(), p.value->data(), p.value->data() + p.value->numel());
    return out;
  };
  FitCallbacks callbacks{.on_batch_end =
                             [&](const BatchStats&) {
                               params_after_step = values(m.params());
                               buffers_after_step = values(m.buffers());
                               return true;
                             },
                         .on_epoch_end = {}};
  try {
    fit(m, data, nullptr, loss, sgd, {.epochs = 3, .batch = 4}, callbacks);
    FAIL() << "no divergence";
  } catch (const Diverged& e) {
    EXPECT_TRUE(testing::has(e.what(), "epoch 2, batch 3/3: softmax_cross_entropy: loss is "));
    EXPECT_EQ(e.completed_epochs, 1);  // 3 batches of epoch 1, 2 of epoch 2
    EXPECT_EQ(e.completed_steps, 2);
  }
  EXPECT_EQ(sgd.steps(), 5);
  EXPECT_EQ(values(m.params()), params_after_step);
  EXPECT_EQ(values(m.buffers()), buffers_after_step);
  for (const float b : values(m.buffers())) EXPECT_TRUE(std::isfinite(b));
}

// clip_grad_norm_: g ← g · max_norm / (||g|| + 1e-6) when that factor is below 1.
TEST(Divergence, ClippingScalesTheJointNormLikePyTorch) {
  auto step = [](double clip, Sequential<float>& m) {
    Sgd<float> sgd({.lr = 1.0});
    SoftmaxCrossEntropy<float> loss;
    Rng rng(3);
    const Tensor<float> x = testing::random_normal<float>(Shape{4, 4}, rng, 10.0);
    const std::vector<int32_t> labels = {0, 1, 2, 0};
    return m.train_step(x, {.labels = labels}, loss, sgd, {.clip_grad_norm = clip});
  };
  Sequential<float> plain = chain(), clipped = chain();
  plain.build(Shape{4, 4}, 7);
  clipped.build(Shape{4, 4}, 7);
  const std::vector<float> w0 = weights(plain);
  const StepResult a = step(0, plain);
  const StepResult b = step(0.01, clipped);
  EXPECT_EQ(a.grad_norm, b.grad_norm);  // reported before clipping
  ASSERT_GT(a.grad_norm, 0.01);
  // With lr 1 the update is the (clipped) gradient itself.
  const std::vector<float> w1 = weights(plain), w2 = weights(clipped);
  double moved_plain = 0, moved_clipped = 0;
  for (size_t i = 0; i < w0.size(); ++i) {
    moved_plain += (w1[i] - w0[i]) * static_cast<double>(w1[i] - w0[i]);
    moved_clipped += (w2[i] - w0[i]) * static_cast<double>(w2[i] - w0[i]);
  }
  EXPECT_NEAR(std::sqrt(moved_plain), a.grad_norm, 1e-4 * a.grad_norm);
  EXPECT_NEAR(std::sqrt(moved_clipped), 0.01, 1e-6);
  // Per-tensor norms add up to the joint one.
  double squares = 0;
  for (double g : plain.grad_norms()) squares += g * g;
  EXPECT_NEAR(std::sqrt(squares), a.grad_norm, 1e-9 * a.grad_norm);
}

}  // namespace
}  // namespace convnet
