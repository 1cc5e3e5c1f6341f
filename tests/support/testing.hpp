// Test helpers: random tensors, element-wise comparison with a readable failure message, and the
// one finite-difference harness every layer goes through.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <cmath>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "convnet/convnet.hpp"

namespace convnet::testing {

// set_num_threads(n) for the scope, then the previous count again: the process default, which
// models made and layers run outside a model in the scope take.
class ThreadCount {
 public:
  explicit ThreadCount(int n) : saved_(num_threads()) { set_num_threads(n); }
  ~ThreadCount() { set_num_threads(saved_); }
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;

 private:
  int saved_;
};

// A fresh folder for the test (named by the process and the test), removed with everything in it
// at the end of the scope.
class TempDir {
 public:
  TempDir()
      : dir_(std::filesystem::temp_directory_path() /
             ("convnet_" + std::to_string(::getpid()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name() + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  std::filesystem::path dir_;
};

// 4 classes of 1x8x8 images: a bright 3x3 square in one of the four quadrants, on noise.
inline Dataset quadrant_images(int64_t count, uint64_t seed) {
  Rng rng(seed);
  Tensor<float> images(Shape{count, 1, 8, 8});
  std::vector<int32_t> labels;
  for (int64_t n = 0; n < count; ++n) {
    const int32_t label = static_cast<int32_t>(n % 4);
    labels.push_back(label);
    float* img = images.data() + n * 64;
    for (int i = 0; i < 64; ++i) img[i] = static_cast<float>(0.3 * rng.uniform());
    const int top = (label / 2) * 4 + static_cast<int>(rng.below(2));
    const int left = (label % 2) * 4 + static_cast<int>(rng.below(2));
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) img[(top + i) * 8 + left + j] = 1.0f;
  }
  return Dataset::from_floats(std::move(images), std::move(labels), 4);
}

// set_backend(b) for the scope (the process default), then the previous backend again.
class BackendScope {
 public:
  explicit BackendScope(Backend b) : saved_(backend()) { set_backend(b); }
  ~BackendScope() { set_backend(saved_); }
  BackendScope(const BackendScope&) = delete;
  BackendScope& operator=(const BackendScope&) = delete;

 private:
  Backend saved_;
};

class WinogradTileScope {
 public:
  explicit WinogradTileScope(WinogradTile t) : saved_(winograd_tile()) { set_winograd_tile(t); }
  ~WinogradTileScope() { set_winograd_tile(saved_); }
  WinogradTileScope(const WinogradTileScope&) = delete;
  WinogradTileScope& operator=(const WinogradTileScope&) = delete;

 private:
  WinogradTile saved_;
};

class PrecisionScope {
 public:
  explicit PrecisionScope(Precision p) : saved_(precision()) { set_precision(p); }
  ~PrecisionScope() { set_precision(saved_); }
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  Precision saved_;
};
// Fp32, and Bf16 where the CPU has it: the precisions a test can run in here.
inline std::vector<Precision> precisions_here() {
  if (cpu_has_bf16()) return {Precision::Fp32, Precision::Bf16};
  return {Precision::Fp32};
}

template <class T>
Tensor<T> random_normal(const Shape& shape, Rng& rng, double scale = 1.0) {
  Tensor<T> t(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<T>(rng.normal() * scale);
  return t;
}

// Normal values pushed away from 0 by at least `gap`: no element sits on a ReLU kink.
template <class T>
Tensor<T> random_away_from_zero(const Shape& shape, Rng& rng, double gap = 0.05) {
  Tensor<T> t = random_normal<T>(shape, rng);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] += static_cast<T>(t[i] >= 0 ? gap : -gap);
  return t;
}

// A random permutation of {0, 0.01, 0.02, ...}: all values distinct by far more than any
// finite-difference step, so no max-pool window has a tie.
template <class T>
Tensor<T> random_distinct(const Shape& shape, Rng& rng) {
  Tensor<T> t(shape);
  std::vector<int64_t> order(static_cast<size_t>(t.numel()));
  std::iota(order.begin(), order.end(), 0);
  rng.shuffle(std::span(order));
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<T>(0.01 * order[i] - 1.0);
  return t;
}

// The message of the convnet::Error that f throws, or "(no error)".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Passes when `text` contains every one of `parts`, and shows the text when it does not.
template <class... Parts>
::testing::AssertionResult has(const std::string& text, const Parts&... parts) {
  for (const std::string& part : {std::string(parts)...})
    if (text.find(part) == std::string::npos)
      return ::testing::AssertionFailure() << "'" << text << "' lacks '" << part << "'";
  return ::testing::AssertionSuccess();
}

// Asserts |got - want| <= atol + rtol·|want| element-wise; reports the first failure and the
// largest errors.
template <class A, class B>
::testing::AssertionResult all_close(const A* got, const B* want, int64_t n, double rtol,
                                     double atol) {
  int64_t first_bad = -1;
  double max_abs = 0, max_rel = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
    const double err = std::abs(g - w);
    if (!(err <= atol + rtol * std::abs(w)) && first_bad < 0) first_bad = i;
    max_abs = std::max(max_abs, err);
    if (w != 0) max_rel = std::max(max_rel, err / std::abs(w));
  }
  if (first_bad < 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "element " << first_bad << ": got " << got[first_bad] << ", want " << want[first_bad]
         << " (max abs err " << max_abs << ", max rel err " << max_rel << ", rtol " << rtol
         << ", atol " << atol << ", " << n << " elements)";
}

template <class A, class B>
::testing::AssertionResult all_close(const Tensor<A>& got, const Tensor<B>& want, double rtol,
                                     double atol) {
  if (got.numel() != want.numel())
    return ::testing::AssertionFailure() << "size " << got.numel() << " vs " << want.numel();
  return all_close(got.data(), want.data(), got.numel(), rtol, atol);
}

// The layer harness: f(x, θ) = Σ layer(x, θ) ⊙ g with a random g, in double. Checks ∂f/∂x and
// every ∂f/∂θ from backward against central differences, and the accumulate contract: dx is
// pre-filled with a sentinel and must come back as sentinel + gradient; parameter gradients start
// at zero and a second backward must double them.
// `mode` is the function differentiated: every forward runs in it, with the layer's replay on
// (one Dropout mask throughout, BatchNorm's running statistics untouched).
struct LayerCheckOptions {
  double eps = 1e-6;
  double rtol = 1e-6, atol = 1e-8;
  int64_t max_checked = 300;  // per tensor; sampled beyond that
  double sentinel = 7.0;
  Mode mode = Mode::Train;
  bool init = true;  // call layer.init(rng) after build (false: keep the parameters as set)
};

inline void check_layer_gradients(Layer<double>& layer, const Tensor<double>& x_in, Rng& rng,
                                  const LayerCheckOptions& o = {}) {
  const Shape out_shape = layer.build(x_in.shape());
  if (o.init) layer.init(rng);
  struct Replay {  // off again however the check ends
    Layer<double>& l;
    explicit Replay(Layer<double>& layer) : l(layer) { l.set_replay(true); }
    ~Replay() { l.set_replay(false); }
  } replay(layer);
  Tensor<double> x = x_in;
  Tensor<double> y;
  layer.forward(x, y, o.mode);
  ASSERT_EQ(y.shape(), out_shape) << layer.describe();
  const Tensor<double> g = random_normal<double>(y.shape(), rng);

  auto f = [&] {
    Tensor<double> out;
    layer.forward(x, out, o.mode);
    double sum = 0;
    for (int64_t i = 0; i < out.numel(); ++i) sum += out[i] * g[i];
    return sum;
  };
  auto numeric_grad = [&](Tensor<double>& v, int64_t i) {
    const double saved = v[i];
    v[i] = saved + o.eps;
    const double plus = f();
    v[i] = saved - o.eps;
    const double minus = f();
    v[i] = saved;
    return (plus - minus) / (2 * o.eps);
  };
  auto indices = [&](int64_t n) {
    std::vector<int64_t> idx(static_cast<size_t>(n));
    std::iota(idx.begin(), idx.end(), 0);
    if (n > o.max_checked) {
      rng.shuffle(std::span(idx));
      idx.resize(static_cast<size_t>(o.max_checked));
    }
    return idx;
  };

  auto params = layer.params();
  for (auto& p : params) p.grad->zero();
  Tensor<double> dx(x.shape(), o.sentinel);
  layer.forward(x, y, o.mode);
  layer.backward(x, y, g, &dx);

  for (int64_t i : indices(x.numel())) {
    const double analytic = dx[i] - o.sentinel;
    const double numeric = numeric_grad(x, i);
    ASSERT_NEAR(analytic, numeric, o.atol + o.rtol * std::abs(numeric))
        << layer.describe() << ": d/dx at element " << i << " of input " << x.shape().str();
  }
  std::vector<Tensor<double>> analytic;
  for (auto& p : params) analytic.push_back(*p.grad);
  for (size_t k = 0; k < params.size(); ++k)
    for (int64_t i : indices(params[k].value->numel())) {
      const double numeric = numeric_grad(*params[k].value, i);
      ASSERT_NEAR(analytic[k][i], numeric, o.atol + o.rtol * std::abs(numeric))
          << layer.describe() << ": d/d" << params[k].name << " at element " << i;
    }
  // Accumulate contract: a second backward adds the same parameter gradients again.
  layer.forward(x, y, o.mode);
  layer.backward(x, y, g, nullptr);
  for (size_t k = 0; k < params.size(); ++k)
    for (int64_t i = 0; i < analytic[k].numel(); ++i)
      ASSERT_NEAR((*params[k].grad)[i], 2 * analytic[k][i], 1e-12 + 1e-12 * std::abs(analytic[k][i]))
          << layer.describe() << ": backward must accumulate into " << params[k].name;
}

}  // namespace convnet::testing
