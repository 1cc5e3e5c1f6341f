// Every fast kernel against its reference twin (run in double) on random and edge shapes, at
// 1 thread and 2 threads. Tolerance |fast - ref| <= atol + rtol·|ref| with atol scaled by the
// square root of the reduction length, since float rounding grows with the number of terms.
#include <cmath>
#include <cstring>

#include "ops/cpu/cpu.hpp"
#include "ops/ref/ref.hpp"
#include "support/testing.hpp"

namespace convnet {
namespace {

using ops::Conv2dShape;
using testing::all_close;

template <class T>
std::vector<T> to(const Tensor<float>& t) {
  return std::vector<T>(t.data(), t.data() + t.numel());
}

using testing::ThreadCount;

// Runs forward, backward data and backward weights through both kernel families.
void compare_conv(const Conv2dShape& s, uint64_t seed) {
  SCOPED_TRACE(::testing::Message()
               << "N=" << s.N << " IC=" << s.IC << " IH=" << s.IH << " IW=" << s.IW
               << " OC=" << s.OC << " K=" << s.KH << "x" << s.KW << " S=" << s.SH << "x" << s.SW
               << " P=" << s.PH << "x" << s.PW << " D=" << s.DH << "x" << s.DW << " G=" << s.G);
  Rng rng(seed);
  const int64_t OH = s.OH(), OW = s.OW();
  const Tensor<float> x = testing::random_normal<float>(Shape{s.N, s.IC, s.IH, s.IW}, rng);
  const Tensor<float> w = testing::random_normal<float>(Shape{s.OC, s.IC / s.G, s.KH, s.KW}, rng);
  const Tensor<float> b = testing::random_normal<float>(Shape{s.OC}, rng);
  const Tensor<float> dy = testing::random_normal<float>(Shape{s.N, s.OC, OH, OW}, rng);
  const auto xd = to<double>(x), wd = to<double>(w), bd = to<double>(b), dyd = to<double>(dy);
  const double reduce_fwd = static_cast<double>(s.IC / s.G * s.KH * s.KW);
  const double reduce_dw = static_cast<double>(s.N * OH * OW);
  const double rtol = 1e-4;

  // Every micro-kernel the CPU supports: with AVX-512, stride-1 shapes take the direct
  // convolution; with the others, the im2col GEMM.
  for (const std::string& kernel : ops::cpu::sgemm_kernel_names())
    for (int threads : {1, 2}) {
      SCOPED_TRACE("micro-kernel " + kernel);
      ops::cpu::sgemm_use_kernel(kernel);
      const Context ctx({.threads = threads});
      Tensor<float> ws(Shape{ops::cpu::conv2d_workspace_size(s, threads)},
                       NAN);  // unwritten reads show
      // forward (assign: y starts as garbage)
      Tensor<float> y(Shape{s.N, s.OC, OH, OW}, NAN);
      std::vector<double> y_ref(static_cast<size_t>(y.numel()));
      ops::cpu::conv2d_forward(ctx, s, x.data(), w.data(), b.data(), y.data(), ws.data());
      ops::ref::conv2d_forward(s, xd.data(), wd.data(), bd.data(), y_ref.data());
      EXPECT_TRUE(all_close(y.data(), y_ref.data(), y.numel(), rtol, 1e-5 * std::sqrt(reduce_fwd)))
          << "forward, threads " << threads;
      ops::cpu::conv2d_forward(ctx, s, x.data(), w.data(), nullptr, y.data(), ws.data());
      ops::ref::conv2d_forward<double>(s, xd.data(), wd.data(), nullptr, y_ref.data());
      EXPECT_TRUE(all_close(y.data(), y_ref.data(), y.numel(), rtol, 1e-5 * std::sqrt(reduce_fwd)))
          << "forward without bias, threads " << threads;

      // backward data (accumulate onto a sentinel of 1)
      Tensor<float> dx(x.shape(), 1.0f);
      std::vector<double> dx_ref(static_cast<size_t>(x.numel()), 1.0);
      ops::cpu::conv2d_backward_data(ctx, s, w.data(), dy.data(), dx.data(), ws.data());
      ops::ref::conv2d_backward_data(s, wd.data(), dyd.data(), dx_ref.data());
      EXPECT_TRUE(all_close(dx.data(), dx_ref.data(), dx.numel(), rtol,
                            1e-5 * std::sqrt(static_cast<double>(s.OC * s.KH * s.KW))))
          << "backward data, threads " << threads;

      // backward weights (accumulate onto a sentinel of 1)
      Tensor<float> dw(w.shape(), 1.0f), db(b.shape(), 1.0f);
      std::vector<double> dw_ref(static_cast<size_t>(w.numel()), 1.0), db_ref(s.OC, 1.0);
      ops::cpu::conv2d_backward_weights(ctx, s, x.data(), dy.data(), dw.data(), db.data(),
                                        ws.data());
      ops::ref::conv2d_backward_weights(s, xd.data(), dyd.data(), dw_ref.data(), db_ref.data());
      EXPECT_TRUE(
          all_close(dw.data(), dw_ref.data(), dw.numel(), rtol, 1e-5 * std::sqrt(reduce_dw)))
          << "backward weights, threads " << threads;
      EXPECT_TRUE(
          all_close(db.data(), db_ref.data(), db.numel(), rtol, 1e-5 * std::sqrt(reduce_dw)))
          << "backward bias, threads " << threads;
    }
  ops::cpu::sgemm_use_kernel(ops::cpu::sgemm_kernel_names().front());
}

TEST(Conv2dKernels, EdgeShapesMatchRef) {
  const Conv2dShape cases[] = {
      {.N = 1, .IC = 1, .IH = 1, .IW = 1, .OC = 1, .KH = 1, .KW = 1},     // 1x1 all
      {.N = 1, .IC = 3, .IH = 5, .IW = 5, .OC = 7, .KH = 5, .KW = 5},     // K = input
      {.N = 3, .IC = 8, .IH = 12, .IW = 12, .OC = 17, .KH = 1, .KW = 1},  // 1x1 GEMM
      {.N = 2,
       .IC = 3,
       .IH = 13,
       .IW = 11,
       .OC = 5,
       .KH = 3,
       .KW = 3,
       .SH = 2,
       .SW = 2,
       .PH = 1,
       .PW = 1},
      {.N = 1,
       .IC = 2,
       .IH = 9,
       .IW = 8,
       .OC = 3,
       .KH = 3,
       .KW = 2,
       .SH = 2,
       .SW = 3,
       .PH = 2,
       .PW = 1},
      {.N = 3, .IC = 2, .IH = 8, .IW = 8, .OC = 2, .KH = 3, .KW = 3, .PH = 1, .DH = 2, .DW = 1},
      {.N = 1, .IC = 1, .IH = 3, .IW = 3, .OC = 4, .KH = 5, .KW = 5, .PH = 2, .PW = 2},   // pad >
                                                                                          // input
      {.N = 5, .IC = 7, .IH = 6, .IW = 6, .OC = 33, .KH = 3, .KW = 3, .PH = 1, .PW = 1},  // OC > NR
      {.N = 2, .IC = 1, .IH = 28, .IW = 28, .OC = 6, .KH = 5, .KW = 5, .PH = 2, .PW = 2},  // lenet
                                                                                           // 1
      {.N = 2, .IC = 6, .IH = 14, .IW = 14, .OC = 16, .KH = 5, .KW = 5},  // lenet 2
      {.N = 1, .IC = 1, .IH = 7, .IW = 7, .OC = 1, .KH = 1, .KW = 1, .SH = 2, .SW = 2},
      // large enough for the in-place weight-gradient path (>= 512 padded positions)
      {.N = 2, .IC = 5, .IH = 33, .IW = 31, .OC = 9, .KH = 3, .KW = 3, .PH = 1, .PW = 1},
      {.N = 1,
       .IC = 3,
       .IH = 24,
       .IW = 40,
       .OC = 4,
       .KH = 5,
       .KW = 3,
       .PH = 2,
       .PW = 1,
       .DH = 2},  // strided
                  // 1x1
  };
  uint64_t seed = 100;
  for (const auto& s : cases) {
    s.validate("test");
    compare_conv(s, seed++);
  }
}

TEST(Conv2dKernels, RandomShapesMatchRef) {
  Rng rng(2024);
  const int64_t channels[] = {1, 3, 7, 8, 9, 17, 32, 33};
  const int64_t sizes[] = {1, 5, 12, 13};
  int tested = 0;
  while (tested < 60) {
    auto pick = [&](auto& arr) { return arr[rng.below(std::size(arr))]; };
    Conv2dShape s{.N = 1 + static_cast<int64_t>(rng.below(3)),
                  .IC = pick(channels),
                  .IH = pick(sizes),
                  .IW = pick(sizes),
                  .OC = pick(channels),
                  .KH = 1 + 2 * static_cast<int64_t>(rng.below(3)),
                  .KW = 1 + 2 * static_cast<int64_t>(rng.below(3)),
                  .SH = 1 + static_cast<int64_t>(rng.below(2)),
                  .SW = 1 + static_cast<int64_t>(rng.below(2)),
                  .PH = static_cast<int64_t>(rng.below(3)),
                  .PW = static_cast<int64_t>(rng.below(3)),
                  .DH = 1 + static_cast<int64_t>(rng.below(2)),
                  .DW = 1 + static_cast<int64_t>(rng.below(2))};
    try {
      s.validate("random");
    } catch (const Error&) {
      continue;  // kernel larger than the padded input: not a valid convolution
    }
    compare_conv(s, rng.next_u64());
    ++tested;
  }
}

// Grouped and depthwise convolutions (channel multipliers 1 and 3), every stride, padding and
// dilation edge the direct depthwise kernel handles (columns clipped on either side), batch 1.
TEST(Conv2dKernels, GroupedAndDepthwiseMatchRef) {
  const Conv2dShape cases[] = {
      {.N = 2, .IC = 4, .IH = 7, .IW = 9, .OC = 6, .KH = 3, .KW = 3, .PH = 1, .PW = 1, .G = 2},
      {.N = 1, .IC = 6, .IH = 5, .IW = 5, .OC = 9, .KH = 1, .KW = 1, .G = 3},
      {.N = 3, .IC = 8, .IH = 13, .IW = 11, .OC = 8, .KH = 3, .KW = 3, .PH = 1, .PW = 1, .G = 8},
      {.N = 1,
       .IC = 5,
       .IH = 9,
       .IW = 10,
       .OC = 15,
       .KH = 3,
       .KW = 5,
       .SH = 2,
       .SW = 3,
       .PH = 2,
       .PW = 1,
       .G = 5},
      {.N = 2,
       .IC = 3,
       .IH = 12,
       .IW = 12,
       .OC = 3,
       .KH = 3,
       .KW = 3,
       .PH = 2,
       .PW = 2,
       .DH = 2,
       .DW = 2,
       .G = 3},
      {.N = 1,
       .IC = 32,
       .IH = 28,
       .IW = 28,
       .OC = 32,
       .KH = 3,
       .KW = 3,
       .SH = 2,
       .SW = 2,
       .PH = 1,
       .PW = 1,
       .G = 32},
      {.N = 2, .IC = 2, .IH = 3, .IW = 4, .OC = 2, .KH = 5, .KW = 5, .PH = 2, .PW = 2, .G = 2},
  };
  uint64_t seed = 500;
  for (const auto& s : cases) {
    s.validate("test");
    compare_conv(s, seed++);
  }
}

// Winograd called directly (the dispatcher only picks it for >= 8 channels): F(2x2,3x3) and
// F(4x4,3x3) as a forward pass with bias and as backward data (flipped, channel-swapped weights,
// accumulating onto a sentinel), F(3x3,2x2) for weight and bias gradients: every padding they
// accept, odd sizes (a last tile partly outside the output), rows of tiles that straddle the
// micro-kernel's 32-tile panels (OW 28: 14 tiles a row), F(4x4)'s pairs of tiles from
// different tile rows in one vector (OW 8) and part empty (OW 2, 5, 33), long and short rows of
// F(3x3,4x4)'s dot products, and single channels and images.
struct WinogradVariant {
  const char* name;
  int64_t (*workspace_size)(const Conv2dShape&, int);
  void (*run)(const Context&, const Conv2dShape&, const float*, const float*, bool, const float*,
              float*, bool, float*);
  const char* weights_name;
  int64_t (*weights_workspace_size)(const Conv2dShape&, int);
  void (*weights)(const Context&, const Conv2dShape&, const float*, const float*, float*, float*,
                  float*);
  double atol;  // per square root of the reduction length
};
// F(4x4, 3x3)'s transforms have constants up to 8 (F(2x2, 3x3)'s up to 1), so its rounding errors
// are about 15x larger: here at most 3.2e-5 per square root of the reduction length, against
// 1.3e-6 for F(2x2, 3x3).
const WinogradVariant kWinogradVariants[] = {
    {"F(2x2,3x3)", ops::cpu::conv2d_winograd_workspace_size, ops::cpu::conv2d_winograd,
     "F(3x3,2x2)", ops::cpu::conv2d_winograd_backward_weights_workspace_size,
     [](const Context& ctx, const Conv2dShape& s, const float* x, const float* dy, float* dw,
        float* db, float* ws) {
       ops::cpu::conv2d_winograd_backward_weights(ctx, s, x, dy, dw, db, ws);
     },
     1e-5},
    {"F(4x4,3x3)", ops::cpu::conv2d_winograd4_workspace_size,
     [](const Context& ctx, const Conv2dShape& s, const float* x, const float* w, bool flip_swap,
        const float* b, float* y, bool accumulate, float* ws) {
       ops::cpu::conv2d_winograd4(ctx, s, x, w, flip_swap, b, y, accumulate, ws);
     },
     "F(3x3,4x4)", ops::cpu::conv2d_winograd4_backward_weights_workspace_size,
     [](const Context& ctx, const Conv2dShape& s, const float* x, const float* dy, float* dw,
        float* db, float* ws) {
       ops::cpu::conv2d_winograd4_backward_weights(ctx, s, x, dy, dw, db, ws);
     },
     1e-4},
};

TEST(Conv2dKernels, WinogradMatchesRef) {
  if (!ops::cpu::conv2d_winograd_supported({.KH = 3, .KW = 3, .PH = 1, .PW = 1}))
    GTEST_SKIP() << "no AVX-512 on this CPU: the Winograd kernel is not used";
  const Conv2dShape cases[] = {
      {.N = 1, .IC = 1, .IH = 1, .IW = 1, .OC = 1, .KH = 3, .KW = 3, .PH = 1, .PW = 1},
      {.N = 1, .IC = 1, .IH = 3, .IW = 3, .OC = 1, .KH = 3, .KW = 3},
      {.N = 2, .IC = 3, .IH = 5, .IW = 7, .OC = 5, .KH = 3, .KW = 3, .PH = 2, .PW = 0},
      {.N = 3, .IC = 17, .IH = 28, .IW = 28, .OC = 9, .KH = 3, .KW = 3, .PH = 1, .PW = 1},
      {.N = 2, .IC = 8, .IH = 13, .IW = 35, .OC = 33, .KH = 3, .KW = 3, .PH = 0, .PW = 2},
      {.N = 5, .IC = 32, .IH = 8, .IW = 8, .OC = 16, .KH = 3, .KW = 3, .PH = 1, .PW = 1},
      {.N = 1, .IC = 9, .IH = 34, .IW = 33, .OC = 7, .KH = 3, .KW = 3, .PH = 2, .PW = 1},
      {.N = 2, .IC = 40, .IH = 16, .IW = 16, .OC = 70, .KH = 3, .KW = 3, .PH = 1, .PW = 1},
      {.N = 4, .IC = 16, .IH = 12, .IW = 12, .OC = 16, .KH = 3, .KW = 3, .PH = 1, .PW = 1},
      {.N = 3, .IC = 12, .IH = 9, .IW = 4, .OC = 10, .KH = 3, .KW = 3, .PH = 1, .PW = 0},
      // Enough tiles for F(3x3,4x4)'s dot products to run 512 tiles long at 1 thread.
      {.N = 2, .IC = 8, .IH = 64, .IW = 64, .OC = 8, .KH = 3, .KW = 3, .PH = 1, .PW = 1},
  };
  uint64_t seed = 300;
  for (const Conv2dShape& s : cases)
    for (int threads : {1, 2}) {
      SCOPED_TRACE(::testing::Message()
                   << "N=" << s.N << " IC=" << s.IC << " IH=" << s.IH << " IW=" << s.IW
                   << " OC=" << s.OC << " P=" << s.PH << "x" << s.PW << " threads " << threads);
      const Context ctx({.threads = threads});
      Rng rng(seed++);
      const int64_t OH = s.OH(), OW = s.OW();
      const Tensor<float> x = testing::random_normal<float>(Shape{s.N, s.IC, s.IH, s.IW}, rng);
      const Tensor<float> w = testing::random_normal<float>(Shape{s.OC, s.IC, 3, 3}, rng);
      const Tensor<float> b = testing::random_normal<float>(Shape{s.OC}, rng);
      const Tensor<float> dy = testing::random_normal<float>(Shape{s.N, s.OC, OH, OW}, rng);
      const auto xd = to<double>(x), wd = to<double>(w), bd = to<double>(b), dyd = to<double>(dy);

      // Backward data: dx += conv(dy, w flipped, channels swapped), padded by 2 - P.
      const Conv2dShape back{.N = s.N,
                             .IC = s.OC,
                             .IH = OH,
                             .IW = OW,
                             .OC = s.IC,
                             .KH = 3,
                             .KW = 3,
                             .PH = 2 - s.PH,
                             .PW = 2 - s.PW};
      ASSERT_EQ(back.OH(), s.IH);
      ASSERT_EQ(back.OW(), s.IW);
      for (const WinogradVariant& variant : kWinogradVariants) {
        SCOPED_TRACE(variant.name);
        Tensor<float> ws(Shape{variant.workspace_size(s, threads)}, NAN);
        Tensor<float> y(Shape{s.N, s.OC, OH, OW}, NAN);
        std::vector<double> y_ref(static_cast<size_t>(y.numel()));
        variant.run(ctx, s, x.data(), w.data(), false, b.data(), y.data(), false, ws.data());
        ops::ref::conv2d_forward(s, xd.data(), wd.data(), bd.data(), y_ref.data());
        EXPECT_TRUE(all_close(y.data(), y_ref.data(), y.numel(), 1e-4,
                              variant.atol * std::sqrt(static_cast<double>(9 * s.IC))))
            << "forward";

        Tensor<float> ws_back(Shape{variant.workspace_size(back, threads)}, NAN);
        Tensor<float> dx(x.shape(), 1.0f);
        std::vector<double> dx_ref(static_cast<size_t>(x.numel()), 1.0);
        variant.run(ctx, back, dy.data(), w.data(), true, nullptr, dx.data(), true, ws_back.data());
        ops::ref::conv2d_backward_data(s, wd.data(), dyd.data(), dx_ref.data());
        EXPECT_TRUE(all_close(dx.data(), dx_ref.data(), dx.numel(), 1e-4,
                              variant.atol * std::sqrt(static_cast<double>(9 * s.OC))))
            << "backward data";
      }

      // Weight and bias gradients (accumulate onto a sentinel of 1).
      std::vector<double> dw_ref(static_cast<size_t>(w.numel()), 1.0), db_ref(s.OC, 1.0);
      ops::ref::conv2d_backward_weights(s, xd.data(), dyd.data(), dw_ref.data(), db_ref.data());
      const double reduce_dw = static_cast<double>(s.N * OH * OW);
      for (const WinogradVariant& variant : kWinogradVariants) {
        SCOPED_TRACE(variant.weights_name);
        Tensor<float> ws_w(Shape{variant.weights_workspace_size(s, threads)}, NAN);
        Tensor<float> dw(w.shape(), 1.0f), db(b.shape(), 1.0f);
        variant.weights(ctx, s, x.data(), dy.data(), dw.data(), db.data(), ws_w.data());
        EXPECT_TRUE(all_close(dw.data(), dw_ref.data(), dw.numel(), 1e-4,
                              variant.atol * std::sqrt(reduce_dw)))
            << "backward weights";
        EXPECT_TRUE(all_close(db.data(), db_ref.data(), db.numel(), 1e-4,
                              1e-5 * std::sqrt(reduce_dw)))
            << "backward bias";
      }
    }
}

// The elementwise activations, which split large tensors across threads in float: the float
// layer against the double one on a tensor large enough to be split, at 1 and 2 threads.
TEST(ActivationKernels, ThreadedMatchRef) {
  Rng rng(77);
  const Shape shape{3, 5, 61, 59};  // 54,000 elements: several blocks of 4096, a ragged end
  const Tensor<double> x = testing::random_normal<double>(shape, rng, 3.0);
  const Tensor<double> dy = testing::random_normal<double>(shape, rng);
  Tensor<float> xf(shape), dyf(shape);
  for (int64_t i = 0; i < x.numel(); ++i)
    xf[i] = static_cast<float>(x[i]), dyf[i] = static_cast<float>(dy[i]);
  auto run = [&](auto make) {
    for (int threads : {1, 2}) {
      ThreadCount tc(threads);
      auto ref = make(double{});
      auto fast = make(float{});
      ref->build(shape);
      fast->build(shape);
      Tensor<double> y, dx(shape, 0.5);
      Tensor<float> yf, dxf(shape, 0.5f);
      ref->forward(x, y, Mode::Train);
      fast->forward(xf, yf, Mode::Train);
      ref->backward(x, y, dy, &dx);
      fast->backward(xf, yf, dyf, &dxf);
      EXPECT_TRUE(testing::all_close(yf, y, 1e-5, 1e-6))
          << ref->kind() << " forward, threads " << threads;
      EXPECT_TRUE(testing::all_close(dxf, dx, 1e-5, 1e-6))
          << ref->kind() << " backward, threads " << threads;
    }
  };
  run([](auto v) { return std::make_unique<GELU<decltype(v)>>(); });
  run([](auto v) { return std::make_unique<SiLU<decltype(v)>>(); });
  run([](auto v) { return std::make_unique<ELU<decltype(v)>>(0.7); });
  run([](auto v) { return std::make_unique<Sigmoid<decltype(v)>>(); });
  run([](auto v) { return std::make_unique<Tanh<decltype(v)>>(); });
  run([](auto v) { return std::make_unique<LeakyReLU<decltype(v)>>(0.1); });
}

// GEMM against a naive triple loop in double: every transpose combination, accumulate on and
// off, sizes around the register tile (6x32) and the packing blocks (KC 256, MC 120).
TEST(Sgemm, MatchesNaive) {
  const auto kernels = ops::cpu::sgemm_kernel_names();
  ASSERT_EQ(kernels.back(), "generic");
  for (const std::string& name : kernels) {
    SCOPED_TRACE("micro-kernel " + name);
    ops::cpu::sgemm_use_kernel(name);
    Rng rng(7);
    const int64_t dims[][3] = {{1, 1, 1},     {5, 31, 7},   {6, 32, 8},  {7, 33, 9},
                               {13, 65, 257}, {121, 3, 2},  {2, 100, 1}, {64, 16, 300},
                               {1, 2049, 3},  {37, 70, 513}};
    for (const auto& d : dims)
      for (int trans = 0; trans < 4; ++trans)
        for (bool accumulate : {false, true}) {
          const int64_t M = d[0], N = d[1], K = d[2];
          const bool ta = trans & 1, tb = trans & 2;
          const Tensor<float> a = testing::random_normal<float>(Shape{M * K}, rng);
          const Tensor<float> b = testing::random_normal<float>(Shape{K * N}, rng);
          Tensor<float> c = testing::random_normal<float>(Shape{M * N}, rng);
          std::vector<double> want(static_cast<size_t>(M * N));
          for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j) {
              double sum = accumulate ? c[i * N + j] : 0.0;
              for (int64_t p = 0; p < K; ++p)
                sum += static_cast<double>(ta ? a[p * M + i] : a[i * K + p]) *
                       static_cast<double>(tb ? b[j * K + p] : b[p * N + j]);
              want[static_cast<size_t>(i * N + j)] = sum;
            }
          ops::cpu::sgemm(ta, tb, M, N, K, a.data(), ta ? M : K, b.data(), tb ? K : N, accumulate,
                          c.data(), N);
          EXPECT_TRUE(all_close(c.data(), want.data(), M * N, 1e-4,
                                1e-5 * std::sqrt(static_cast<double>(K))))
              << "M=" << M << " N=" << N << " K=" << K << " ta=" << ta << " tb=" << tb
              << " accumulate=" << accumulate;
        }
  }
  ops::cpu::sgemm_use_kernel(kernels.front());
}

TEST(LinearKernels, MatchRef) {
  Rng rng(8);
  const ops::LinearShape shapes[] = {
      {1, 1, 1}, {1, 400, 120}, {3, 7, 5}, {64, 84, 10}, {5, 33, 65}};
  for (const auto& s : shapes)
    for (int threads : {1, 2}) {
      const Context ctx({.threads = threads});
      const Tensor<float> x = testing::random_normal<float>(Shape{s.N, s.IN}, rng);
      const Tensor<float> w = testing::random_normal<float>(Shape{s.OUT, s.IN}, rng);
      const Tensor<float> b = testing::random_normal<float>(Shape{s.OUT}, rng);
      const Tensor<float> dy = testing::random_normal<float>(Shape{s.N, s.OUT}, rng);
      const auto xd = to<double>(x), wd = to<double>(w), bd = to<double>(b), dyd = to<double>(dy);
      Tensor<float> y(dy.shape(), NAN), dx(x.shape(), 1.0f), dw(w.shape(), 1.0f),
          db(b.shape(), 1.0f);
      std::vector<double> y_ref(y.numel()), dx_ref(x.numel(), 1.0), dw_ref(w.numel(), 1.0),
          db_ref(b.numel(), 1.0);
      ops::cpu::linear_forward(ctx, s, x.data(), w.data(), b.data(), y.data());
      ops::ref::linear_forward(s, xd.data(), wd.data(), bd.data(), y_ref.data());
      ops::cpu::linear_backward_data(ctx, s, w.data(), dy.data(), dx.data());
      ops::ref::linear_backward_data(s, wd.data(), dyd.data(), dx_ref.data());
      ops::cpu::linear_backward_weights(ctx, s, x.data(), dy.data(), dw.data(), db.data());
      ops::ref::linear_backward_weights(s, xd.data(), dyd.data(), dw_ref.data(), db_ref.data());
      const double atol = 1e-5 * std::sqrt(static_cast<double>(std::max({s.N, s.IN, s.OUT})));
      EXPECT_TRUE(all_close(y.data(), y_ref.data(), y.numel(), 1e-4, atol)) << "forward";
      EXPECT_TRUE(all_close(dx.data(), dx_ref.data(), dx.numel(), 1e-4, atol)) << "data";
      EXPECT_TRUE(all_close(dw.data(), dw_ref.data(), dw.numel(), 1e-4, atol)) << "weights";
      EXPECT_TRUE(all_close(db.data(), db_ref.data(), db.numel(), 1e-4, atol)) << "bias";
    }
}

// Max pooling: identical values and winners (both keep the first maximum), on shapes with
// padding, overlap, odd sizes, the 2x2/2 fast path, and plateaus of equal values (ReLU zeros).
TEST(MaxPoolKernels, MatchRefExactly) {
  Rng rng(10);
  int tested = 0;
  while (tested < 80) {
    ops::Pool2dShape s{.N = 1 + static_cast<int64_t>(rng.below(3)),
                       .C = 1 + static_cast<int64_t>(rng.below(5)),
                       .IH = 1 + static_cast<int64_t>(rng.below(13)),
                       .IW = 1 + static_cast<int64_t>(rng.below(13)),
                       .KH = 1 + static_cast<int64_t>(rng.below(3)),
                       .KW = 1 + static_cast<int64_t>(rng.below(3)),
                       .SH = 1 + static_cast<int64_t>(rng.below(3)),
                       .SW = 1 + static_cast<int64_t>(rng.below(3))};
    s.PH = static_cast<int64_t>(rng.below(static_cast<uint64_t>(s.KH / 2 + 1)));
    s.PW = static_cast<int64_t>(rng.below(static_cast<uint64_t>(s.KW / 2 + 1)));
    if (tested % 4 == 0) s.KH = s.KW = s.SH = s.SW = 2, s.PH = s.PW = 0;  // the fast path
    try {
      s.validate("random");
    } catch (const Error&) {
      continue;
    }
    Tensor<float> x = testing::random_normal<float>(Shape{s.N, s.C, s.IH, s.IW}, rng);
    for (int64_t i = 0; i < x.numel(); ++i) x[i] = std::max(x[i], 0.0f);  // ties at zero
    const int64_t out = s.N * s.C * s.OH() * s.OW();
    for (int threads : {1, 2}) {
      const Context ctx({.threads = threads});
      std::vector<float> y(out, NAN), y_ref(out);
      std::vector<int32_t> idx(out, -7), idx_ref(out);
      ops::cpu::maxpool2d_forward(ctx, s, x.data(), y.data(), idx.data());
      ops::ref::maxpool2d_forward(s, x.data(), y_ref.data(), idx_ref.data());
      ASSERT_EQ(y, y_ref) << "IH=" << s.IH << " IW=" << s.IW << " K=" << s.KH << "x" << s.KW
                          << " S=" << s.SH << "x" << s.SW << " P=" << s.PH << "x" << s.PW;
      ASSERT_EQ(idx, idx_ref);
      // backward: scatter onto a sentinel of 1
      const Tensor<float> dy = testing::random_normal<float>(Shape{out}, rng);
      std::vector<float> dx(x.numel(), 1.0f), dx_ref(x.numel(), 1.0f);
      ops::cpu::maxpool2d_backward(ctx, s, dy.data(), idx.data(), dx.data());
      ops::ref::maxpool2d_backward(s, dy.data(), idx_ref.data(), dx_ref.data());
      ASSERT_EQ(dx, dx_ref);
    }
    ++tested;
  }
}

// Elementwise kernels: exact agreement, on sizes around the thread split and vector tails.
TEST(EltwiseKernels, MatchRefExactly) {
  Rng rng(11);
  for (int64_t n : {1, 7, 16, 17, 1000, (1 << 14) - 1, (1 << 15) + 3, 100003})
    for (int threads : {1, 2}) {
      const Context ctx({.threads = threads});
      Tensor<float> x = testing::random_normal<float>(Shape{n}, rng);
      x[0] = 0.0f;  // the kink: ReLU'(0) = 0 in both
      const Tensor<float> dy = testing::random_normal<float>(Shape{n}, rng);
      Tensor<float> y(Shape{n}, NAN), y_ref(Shape{n}), dx(Shape{n}, 2.0f), dx_ref(Shape{n}, 2.0f);
      ops::cpu::relu_forward(ctx, n, x.data(), y.data());
      ops::ref::relu_forward(n, x.data(), y_ref.data());
      ops::cpu::relu_backward(ctx, n, x.data(), dy.data(), dx.data());
      ops::ref::relu_backward(n, x.data(), dy.data(), dx_ref.data());
      EXPECT_TRUE(all_close(y, y_ref, 0, 0)) << n;
      EXPECT_TRUE(all_close(dx, dx_ref, 0, 0)) << n;
      ops::cpu::fill(ctx, n, 3.5f, y.data());
      EXPECT_TRUE(all_close(y, Tensor<float>(Shape{n}, 3.5f), 0, 0)) << n;
    }
}

// Same seed and thread count: bitwise identical results (no atomics, fixed reduction order).
TEST(Conv2dKernels, DeterministicForAThreadCount) {
  const Conv2dShape s{
      .N = 7, .IC = 3, .IH = 9, .IW = 9, .OC = 5, .KH = 3, .KW = 3, .PH = 1, .PW = 1};
  Rng rng(9);
  const Tensor<float> x = testing::random_normal<float>(Shape{s.N, s.IC, s.IH, s.IW}, rng);
  const Tensor<float> dy = testing::random_normal<float>(Shape{s.N, s.OC, s.OH(), s.OW()}, rng);
  const Context ctx({.threads = 2});
  Tensor<float> ws(Shape{ops::cpu::conv2d_workspace_size(s, 2)});
  Tensor<float> dw1(Shape{s.OC, s.IC, 3, 3}), dw2(dw1.shape()), db1(Shape{s.OC}), db2(db1.shape());
  ops::cpu::conv2d_backward_weights(ctx, s, x.data(), dy.data(), dw1.data(), db1.data(), ws.data());
  ops::cpu::conv2d_backward_weights(ctx, s, x.data(), dy.data(), dw2.data(), db2.data(), ws.data());
  EXPECT_EQ(0, std::memcmp(dw1.data(), dw2.data(), sizeof(float) * dw1.numel()));
  EXPECT_EQ(0, std::memcmp(db1.data(), db2.data(), sizeof(float) * db1.numel()));
}

}  // namespace
}  // namespace convnet
