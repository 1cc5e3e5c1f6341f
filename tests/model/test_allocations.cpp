// The steady-state training step allocates nothing: this binary's global operator new counts
// calls, and after warm-up steps (optimizer state, packing buffers, thread pool) a train_step
// must not call it.
#include <atomic>
#include <cstdlib>
#include <new>

#include "support/testing.hpp"

namespace {
std::atomic<int64_t> g_allocations{0};
}

// These replacements pair malloc with free by construction; GCC's -Wmismatched-new-delete
// cannot see that the global operator new it compares against is this file's.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

// ThreadSanitizer's runtime defines the global operator new itself (statically linked with
// Clang), so under it these are left out and the test is skipped (CONVNET_NO_NEW_COUNTING).
#ifndef CONVNET_NO_NEW_COUNTING
void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, std::align_val_t align) {  // Tensor storage uses this one
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  const std::size_t a = static_cast<std::size_t>(align);
  if (void* p = std::aligned_alloc(a, (size + a - 1) / a * a)) return p;
  throw std::bad_alloc();
}
// The nothrow forms too (std::stable_sort's temporary buffer uses them): otherwise the library's
// nothrow new would pair with this file's delete.
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);
}
void* operator new(std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  const std::size_t a = static_cast<std::size_t>(align);
  return std::aligned_alloc(a, (size + a - 1) / a * a);
}
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
#endif

namespace convnet {
namespace {

// Every built-in model: lenet (5x5 convolutions: direct and GEMM kernels), vgg-small (3x3
// ones: Winograd) and resnet-small (a graph: BatchNorm, residual Adds, strided convolutions).
struct AllocationCase {
  const char* model;
  int64_t channels, size;
};
class Allocations : public ::testing::TestWithParam<AllocationCase> {};

TEST_P(Allocations, TrainStepAllocatesNothingAfterWarmUp) {
#ifdef CONVNET_NO_NEW_COUNTING
  GTEST_SKIP() << "the sanitizer's runtime owns operator new; allocations are not counted";
#endif
  const AllocationCase c = GetParam();
  for (int threads : {1, 2})
    for (Precision precision : testing::precisions_here()) {
    SCOPED_TRACE(precision_name(precision));
    const testing::PrecisionScope use_precision(precision);
    const testing::ThreadCount use(threads);
    const int64_t at_start = g_allocations.load();
    std::unique_ptr<Model<float>> owned = make_model<float>(c.model);
    Model<float>& model = *owned;
    model.build(Shape{8, c.channels, c.size, c.size}, 1);
    Rng rng(1);
    const Tensor<float> x =
        testing::random_normal<float>(Shape{8, c.channels, c.size, c.size}, rng);
    const Tensor<float> short_batch =
        testing::random_normal<float>(Shape{3, c.channels, c.size, c.size}, rng);
    const std::vector<int32_t> labels{0, 1, 2, 3, 4, 5, 6, 7};
    const std::span<const int32_t> short_labels(labels.data(), 3);
    SoftmaxCrossEntropy<float> loss;
    Adam<float> adam;
    for (int i = 0; i < 2; ++i) model.train_step(x, {.labels = labels}, loss, adam);
    const int64_t before = g_allocations.load();
    EXPECT_GT(before - at_start, 20) << "the counter must see the model's own allocations";
    for (int i = 0; i < 3; ++i) {
      model.train_step(x, {.labels = labels}, loss, adam);
      model.train_step(short_batch, {.labels = short_labels}, loss, adam);  // a short last batch
    }
    EXPECT_EQ(g_allocations.load() - before, 0) << "threads " << threads;
    }
}
INSTANTIATE_TEST_SUITE_P(BuiltInModels, Allocations,
                         ::testing::Values(AllocationCase{"lenet", 1, 28},
                                           AllocationCase{"vgg-small", 3, 32},
                                           AllocationCase{"resnet-small", 1, 28}),
                         [](const ::testing::TestParamInfo<AllocationCase>& param_info) {
                           std::string name = param_info.param.model;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// BatchNorm (statistics, running-statistic updates) and Dropout (mask draws) keep the step free
// of allocation too, as do evaluation passes.
TEST(Allocations, BatchNormAndDropoutStepAllocatesNothing) {
#ifdef CONVNET_NO_NEW_COUNTING
  GTEST_SKIP() << "the sanitizer's runtime owns operator new; allocations are not counted";
#endif
  for (int threads : {1, 2}) {
    const testing::ThreadCount use(threads);
    Sequential<float> model;
    model.emplace<Conv2d>(Conv2dOptions{.out_channels = 8, .kernel = 3, .pad = 1});
    model.emplace<BatchNorm2d>();
    model.emplace<ReLU>();
    model.emplace<MaxPool2d>(Pool2dOptions{.kernel = 2});
    model.emplace<GlobalAvgPool2d>();
    model.emplace<Flatten>();
    model.emplace<Linear>(LinearOptions{.out_features = 16});
    model.emplace<BatchNorm1d>();
    model.emplace<GELU>();
    model.emplace<Dropout>(DropoutOptions{.p = 0.25});
    model.emplace<Linear>(LinearOptions{.out_features = 10});
    model.build(Shape{8, 3, 12, 12}, 1);
    Rng rng(1);
    const Tensor<float> x = testing::random_normal<float>(Shape{8, 3, 12, 12}, rng);
    const Tensor<float> short_batch = testing::random_normal<float>(Shape{3, 3, 12, 12}, rng);
    const std::vector<int32_t> labels{0, 1, 2, 3, 4, 5, 6, 7};
    const std::span<const int32_t> short_labels(labels.data(), 3);
    SoftmaxCrossEntropy<float> loss;
    Sgd<float> sgd({.lr = 0.01, .momentum = 0.9, .weight_decay = 1e-4});
    for (int i = 0; i < 2; ++i) model.train_step(x, {.labels = labels}, loss, sgd);
    const int64_t before = g_allocations.load();
    for (int i = 0; i < 3; ++i) {
      model.train_step(x, {.labels = labels}, loss, sgd);
      model.train_step(short_batch, {.labels = short_labels}, loss, sgd);
      model.evaluate(x, {.labels = labels}, loss);
    }
    EXPECT_EQ(g_allocations.load() - before, 0) << "threads " << threads;
    }
}

// fit()'s steps allocate nothing either, whole batches and batches in parts (micro-batches:
// the parts' gradients summed in a buffer sized once), counted between two batch callbacks.
TEST(Allocations, FitStepsInPartsAllocateNothing) {
#ifdef CONVNET_NO_NEW_COUNTING
  GTEST_SKIP() << "the sanitizer's runtime owns operator new; allocations are not counted";
#endif
  const testing::ThreadCount use(2);
  const Dataset train = testing::quadrant_images(100, 1);
  for (const int parts : {1, 3}) {
    Sequential<float> model;
    model.emplace<Conv2d>(Conv2dOptions{.out_channels = 4, .kernel = 3, .pad = 1});
    model.emplace<BatchNorm2d>();
    model.emplace<ReLU>();
    model.emplace<MaxPool2d>(Pool2dOptions{.kernel = 2});
    model.emplace<Flatten>();
    model.emplace<Dropout>(DropoutOptions{.p = 0.25});
    model.emplace<Linear>(LinearOptions{.out_features = 4});
    model.build(Shape{4, 1, 8, 8}, 1);  // a part of the batch of 10, or more
    SoftmaxCrossEntropy<float> loss;
    Adam<float> adam;
    int64_t at_step_2 = 0, at_step_9 = 0;
    fit(model, train, nullptr, loss, adam,
        {.epochs = 1, .batch = parts == 1 ? 4 : 10, .micro_batches = parts},
        {.on_batch_end =
             [&](const BatchStats& b) {
               if (b.step == 2) at_step_2 = g_allocations.load();
               if (b.step == 9) at_step_9 = g_allocations.load();
               return true;
             },
         .on_epoch_end = {}});
    EXPECT_GT(at_step_2, 0);
    EXPECT_EQ(at_step_9 - at_step_2, 0) << parts << " parts";
  }
}

// The same for the regression targets: real values (normalised, L1, in parts too) and the input
// itself with noise (an autoencoder); the targets' buffers are sized once, like the images'.
TEST(Allocations, RegressionFitStepsAllocateNothing) {
#ifdef CONVNET_NO_NEW_COUNTING
  GTEST_SKIP() << "the sanitizer's runtime owns operator new; allocations are not counted";
#endif
  const testing::ThreadCount use(2);
  Dataset train = testing::quadrant_images(100, 1);
  std::vector<float> values;
  for (int64_t n = 0; n < train.size(); ++n) values.push_back(static_cast<float>(n % 7) - 3);
  train.set_targets(std::move(values), {"y"});
  train.set_target_normalization({0.5f}, {2.0f});
  for (const Target target : {Target::Values, Target::Input})
    for (const int parts : {1, 3}) {
      Sequential<float> model;
      model.emplace<Conv2d>(Conv2dOptions{.out_channels = 4, .kernel = 3, .pad = 1});
      model.emplace<ReLU>();
      if (target == Target::Values) {
        model.emplace<Flatten>();
        model.emplace<Linear>(LinearOptions{.out_features = 1});
      } else {
        model.emplace<Conv2d>(Conv2dOptions{.out_channels = 1, .kernel = 3, .pad = 1});
      }
      model.build(Shape{4, 1, 8, 8}, 1);
      L1Loss<float> loss;
      Adam<float> adam;
      int64_t at_step_2 = 0, at_step_9 = 0;
      FitOptions options{.epochs = 1, .batch = parts == 1 ? 4 : 10, .micro_batches = parts};
      options.target = target;
      options.noise = target == Target::Input ? 0.1 : 0.0;
      FitCallbacks callbacks;
      callbacks.on_batch_end = [&](const BatchStats& b) {
        if (b.step == 2) at_step_2 = g_allocations.load();
        if (b.step == 9) at_step_9 = g_allocations.load();
        return true;
      };
      fit(model, train, nullptr, loss, adam, options, callbacks);
      EXPECT_GT(at_step_2, 0);
      EXPECT_EQ(at_step_9 - at_step_2, 0)
          << target_name(target) << ", " << parts << " parts";
    }
}

}  // namespace
}  // namespace convnet
