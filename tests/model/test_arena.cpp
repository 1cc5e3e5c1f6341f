// The parameter arena and the split training step: every parameter and gradient of a model lies
// in one buffer each, in the documented layout; the gradient hook sees the backward pass finish
// the arena range by range and can change what the update sees; forward_backward followed by
// apply_update is train_step, bit for bit; the optimizer's arena and per-tensor forms agree.
#include <cstring>
#include <limits>

#include "convnet/arena.hpp"
#include "convnet/graph.hpp"
#include "convnet/zoo.hpp"
#include "support/testing.hpp"

namespace convnet {
namespace {

constexpr int64_t kAlignFloats = static_cast<int64_t>(kTensorAlignment / sizeof(float));

struct Batch {
  Tensor<float> x;
  std::vector<int32_t> labels;
};

Batch batch_for(const Model<float>& model, uint64_t seed) {
  Rng rng(seed);
  Batch b{testing::random_normal<float>(model.input_shape(), rng), {}};
  for (int64_t n = 0; n < model.input_shape()[0]; ++n)
    b.labels.push_back(static_cast<int32_t>(n % 10));
  return b;
}

bool same_bits(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Records the ranges the backward pass hands over; optionally scales them (as an all-reduce
// that averages would) or poisons one.
class RecordingSync final : public GradientSync<float> {
 public:
  std::vector<std::pair<int64_t, int64_t>> ranges;  // (offset, size)
  int ends = 0;
  size_t end_size = 0;
  float scale = 1;
  bool poison = false;
  void on_gradients_ready(std::span<float> grads, int64_t offset) override {
    ranges.emplace_back(offset, static_cast<int64_t>(grads.size()));
  }
  void on_backward_end(std::span<float> grads) override {
    ++ends;
    end_size = grads.size();
    for (float& g : grads) g *= scale;
    if (poison) grads[grads.size() / 2] = std::numeric_limits<float>::quiet_NaN();
  }
};

}  // namespace

TEST(ParamArena, LayoutIsReverseOrderAndAligned) {
  const int64_t sizes[] = {5, 16, 1, 33};
  int64_t total = 0;
  const auto slots = ParamArena<float>::layout(sizes, total);
  // The last tensor first, each at a multiple of 64 bytes.
  EXPECT_EQ(slots[3].offset, 0);
  EXPECT_EQ(slots[2].offset, 48);  // 33 floats round up to 48
  EXPECT_EQ(slots[1].offset, 64);
  EXPECT_EQ(slots[0].offset, 80);
  EXPECT_EQ(total, 96);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(slots[i].size, sizes[i]);
}

TEST(ParamArena, EveryParameterAndGradientIsAViewOfTheArena) {
  for (const char* name : {"lenet", "resnet-small"}) {
    SCOPED_TRACE(name);
    auto model = make_model<float>(name);
    model->build(Shape{2, 1, 28, 28}, 1);
    ParamArena<float>& arena = model->arena();
    const auto params = model->params();
    ASSERT_EQ(arena.slots().size(), params.size());
    int64_t expected_offset = 0;
    for (size_t i = params.size(); i-- > 0;) {
      const auto& slot = arena.slots()[i];
      EXPECT_EQ(slot.offset, expected_offset) << params[i].name;
      EXPECT_EQ(slot.size, params[i].value->numel());
      EXPECT_FALSE(params[i].value->owns_storage());
      EXPECT_EQ(params[i].value->data(), arena.values().data() + slot.offset) << params[i].name;
      EXPECT_EQ(params[i].grad->data(), arena.grads().data() + slot.offset) << params[i].name;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(params[i].value->data()) % kTensorAlignment, 0u);
      expected_offset += (slot.size + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
    }
    EXPECT_EQ(arena.size(), expected_offset);
    // Assigning a tensor of the same shape to a parameter writes into the arena.
    Tensor<float> ones(params[0].value->shape(), 1.0f);
    *params[0].value = std::move(ones);
    EXPECT_EQ(arena.values()[static_cast<size_t>(arena.slots()[0].offset)], 1.0f);
  }
}

TEST(ParamArena, ARebuildKeepsValuesAndRebinds) {
  auto model = make_model<float>("lenet");
  model->build(Shape{4, 1, 28, 28}, 1);
  const std::vector<float> before(model->arena().values().begin(), model->arena().values().end());
  model->build(Shape{9, 1, 28, 28});  // another batch size: same parameters
  EXPECT_TRUE(same_bits(model->arena().values(), before));
  EXPECT_EQ(model->params()[0].value->data(),
            model->arena().values().data() + model->arena().slots()[0].offset);
}

TEST(SplitStep, ForwardBackwardThenApplyUpdateIsTrainStep) {
  // Two copies of a residual model, one trained with train_step at a set learning rate, one
  // with the split halves given each rate: every bit of every parameter agrees.
  auto a = make_model<float>("resnet-small");
  auto b = make_model<float>("resnet-small");
  a->build(Shape{3, 1, 28, 28}, 7);
  b->build(Shape{3, 1, 28, 28}, 7);
  Adam<float> adam_a, adam_b;
  SoftmaxCrossEntropy<float> loss;
  for (int step = 0; step < 3; ++step) {
    const Batch batch = batch_for(*a, 100 + static_cast<uint64_t>(step));
    const double lr = 1e-3 * (step + 1);
    adam_a.set_learning_rate(lr);
    const StepResult ra = a->train_step(batch.x, {.labels = batch.labels}, loss, adam_a);
    StepResult rb = b->forward_backward(batch.x, {.labels = batch.labels}, loss);
    rb.grad_norm = b->apply_update(adam_b, lr);
    EXPECT_EQ(ra.loss, rb.loss);
    EXPECT_EQ(ra.grad_norm, rb.grad_norm);
  }
  EXPECT_TRUE(same_bits(a->arena().values(), b->arena().values()));
  EXPECT_EQ(adam_b.learning_rate(), AdamOptions{}.lr) << "the rate is the update's argument";
}

TEST(SplitStep, TheHookSeesEveryRangeFromTheFrontThenTheWholeArena) {
  Graph<float> model;  // a graph: a branch and a merge between layers with parameters
  model.add(
      "conv",
      std::make_unique<Conv2d<float>>(Conv2dOptions{.out_channels = 4, .kernel = 3, .pad = 1}),
      {"input"});
  model.add("relu", std::make_unique<ReLU<float>>(), {"conv"});
  model.add(
      "side",
      std::make_unique<Conv2d<float>>(Conv2dOptions{.out_channels = 4, .kernel = 1, .bias = false}),
      {"conv"});
  model.add("sum", std::make_unique<Add<float>>(), {"relu", "side"});
  model.add("flat", std::make_unique<Flatten<float>>(), {"sum"});
  model.add("fc", std::make_unique<Linear<float>>(LinearOptions{.out_features = 10}), {"flat"});
  model.build(Shape{2, 1, 6, 6}, 3);
  RecordingSync sync;
  model.set_gradient_sync(&sync);
  Sgd<float> sgd({.lr = 0.1});
  SoftmaxCrossEntropy<float> loss;
  const Batch batch = batch_for(model, 5);
  model.forward_backward(batch.x, {.labels = batch.labels}, loss);
  // One range per layer with parameters (fc, side, conv: backward order), each starting where
  // the last ended, so the finished part is a prefix of the arena, and together all of it.
  ASSERT_EQ(sync.ranges.size(), 3u);
  int64_t next = 0;
  for (const auto& [offset, size] : sync.ranges) {
    EXPECT_EQ(offset, next);
    EXPECT_GT(size, 0);
    next = offset + size;
  }
  EXPECT_EQ(next, model.arena().size());
  EXPECT_EQ(sync.ends, 1);
  EXPECT_EQ(sync.end_size, static_cast<size_t>(model.arena().size()));
  model.apply_update(sgd, 0.1);
  model.set_gradient_sync(nullptr);
}

TEST(SplitStep, TheUpdateSeesWhatTheHookLeft) {
  // A hook that halves every gradient (an all-reduce averaging over two identical ranks) is
  // SGD at half the rate, bit for bit; a hook that leaves a NaN stops the step before the update.
  auto a = make_model<float>("lenet");
  auto b = make_model<float>("lenet");
  a->build(Shape{4, 1, 28, 28}, 2);
  b->build(Shape{4, 1, 28, 28}, 2);
  RecordingSync halve;
  halve.scale = 0.5f;
  b->set_gradient_sync(&halve);
  Sgd<float> sgd_a, sgd_b;
  SoftmaxCrossEntropy<float> loss;
  const Batch batch = batch_for(*a, 9);
  a->forward_backward(batch.x, {.labels = batch.labels}, loss);
  for (float& g : a->arena().grads()) g *= 0.5f;
  a->apply_update(sgd_a, 0.05);
  b->forward_backward(batch.x, {.labels = batch.labels}, loss);
  b->apply_update(sgd_b, 0.05);
  EXPECT_TRUE(same_bits(a->arena().values(), b->arena().values()));

  RecordingSync poison;
  poison.poison = true;
  b->set_gradient_sync(&poison);
  const std::vector<float> before(b->arena().values().begin(), b->arena().values().end());
  b->forward_backward(batch.x, {.labels = batch.labels}, loss);
  const std::string e = testing::error_of([&] { b->apply_update(sgd_b, 0.05); });
  EXPECT_TRUE(testing::has(e, "gradients are not finite")) << e;
  EXPECT_TRUE(same_bits(b->arena().values(), before)) << "weights were not updated";
}

TEST(Optimizers, ArenaAndPerTensorStepsAgree) {
  // The same three tensors stepped as a model's arena and one by one (continuing each other's
  // state) give the same bits, for every optimizer.
  auto make = [](int which) -> std::unique_ptr<Optimizer<float>> {
    if (which == 0) return std::make_unique<Sgd<float>>(SgdOptions{.lr = 0.1, .momentum = 0.9});
    if (which == 1) return std::make_unique<Adam<float>>(AdamOptions{.lr = 0.01});
    return std::make_unique<RmsProp<float>>(
        RmsPropOptions{.lr = 0.01, .momentum = 0.5, .centered = true});
  };
  for (int which = 0; which < 3; ++which) {
    auto a = make_model<float>("lenet");
    auto b = make_model<float>("lenet");
    a->build(Shape{2, 1, 28, 28}, 4);
    b->build(Shape{2, 1, 28, 28}, 4);
    auto opt_a = make(which), opt_b = make(which);
    SCOPED_TRACE(opt_a->name());
    SoftmaxCrossEntropy<float> loss;
    for (int step = 0; step < 3; ++step) {
      const Batch batch = batch_for(*a, 20 + static_cast<uint64_t>(step));
      a->forward_backward(batch.x, {.labels = batch.labels}, loss);
      a->apply_update(*opt_a, opt_a->learning_rate());
      b->forward_backward(batch.x, {.labels = batch.labels}, loss);
      if (step == 1)
        opt_b->step(b->params());  // tensor by tensor, at its learning_rate()
      else
        b->apply_update(*opt_b, opt_b->learning_rate());
    }
    EXPECT_TRUE(same_bits(a->arena().values(), b->arena().values()));
    for (size_t i = 0; i < a->params().size(); ++i)
      for (size_t k = 0; k < opt_a->state_names().size(); ++k)
        EXPECT_TRUE(same_bits(opt_a->state(i, k), opt_b->state(i, k))) << i << " " << k;
  }
}

}  // namespace convnet
