// Every variant of every kernel table (ops/kernels.hpp) against the reference kernels run in
// double: one test per variant, named after it (Conv2dForward/Variant.MatchesRef/im2col, ...), on
// edge and random shapes (odd sizes, stride and padding edges, batch 1, grouped), each shape the
// variant supports, with every sgemm micro-kernel the CPU has and in contexts of 1 and 2
// threads. A variant that supports none of them on this CPU (the AVX-512 ones without AVX-512) is
// skipped, saying so. Tolerance |fast - ref| <= atol + rtol·|ref| with atol scaled by the square
// root of the reduction length, since float rounding grows with the number of terms; the
// elementwise, bias and optimizer-update tables, which must keep training runs' bits, against
// the reference run in float, bit for bit.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>

#include "ops/cpu/bf16.hpp"
#include "ops/kernels.hpp"
#include "support/testing.hpp"

namespace convnet {
namespace {

using ops::Conv2dShape;
using testing::all_close;

std::vector<double> to_double(const Tensor<float>& t) {
  return std::vector<double>(t.data(), t.data() + t.numel());
}

std::string describe(const Conv2dShape& s) {
  return detail::concat("N=", s.N, " IC=", s.IC, " IH=", s.IH, " IW=", s.IW, " OC=", s.OC,
                        " K=", s.KH, "x", s.KW, " S=", s.SH, "x", s.SW, " P=", s.PH, "x", s.PW,
                        " D=", s.DH, "x", s.DW, " G=", s.G);
}

// Edge shapes, shapes each specialised variant takes (3x3 stride 1 with >= 8 channels for
// Winograd, wide rows for F(4x4) and F(3x3, 4x4), grouped and depthwise), then random ones.
std::vector<Conv2dShape> conv_shapes() {
  std::vector<Conv2dShape> shapes = {
      {.N = 1, .IC = 1, .IH = 1, .IW = 1, .OC = 1, .KH = 1, .KW = 1},
      {.N = 1, .IC = 3, .IH = 5, .IW = 5, .OC = 7, .KH = 5, .KW = 5},
      {.N = 3, .IC = 8, .IH = 12, .IW = 12, .OC = 17, .KH = 1, .KW = 1},
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
      {.N = 1, .IC = 1, .IH = 3, .IW = 3, .OC = 4, .KH = 5, .KW = 5, .PH = 2, .PW = 2},
      {.N = 5, .IC = 7, .IH = 6, .IW = 6, .OC = 33, .KH = 3, .KW = 3, .PH = 1, .PW = 1},
      {.N = 2, .IC = 1, .IH = 28, .IW = 28, .OC = 6, .KH = 5, .KW = 5, .PH = 2, .PW = 2},
      {.N = 2, .IC = 6, .IH = 14, .IW = 14, .OC = 16, .KH = 5, .KW = 5},
      {.N = 1, .IC = 1, .IH = 7, .IW = 7, .OC = 1, .KH = 1, .KW = 1, .SH = 2, .SW = 2},
      {.N = 2, .IC = 5, .IH = 33, .IW = 31, .OC = 9, .KH = 3, .KW = 3, .PH = 1, .PW = 1},
      {.N = 1, .IC = 8, .IH = 3, .IW = 3, .OC = 8, .KH = 3, .KW = 3, .PH = 1, .PW = 1},
      {.N = 1, .IC = 9, .IH = 13, .IW = 7, .OC = 8, .KH = 3, .KW = 3, .PH = 0, .PW = 2},
      {.N = 2, .IC = 16, .IH = 16, .IW = 16, .OC = 12, .KH = 3, .KW = 3, .PH = 1, .PW = 1},
      {.N = 3, .IC = 12, .IH = 9, .IW = 4, .OC = 10, .KH = 3, .KW = 3, .PH = 1, .PW = 0},
      {.N = 1, .IC = 8, .IH = 20, .IW = 29, .OC = 9, .KH = 3, .KW = 3, .PH = 2, .PW = 1},
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
      {.N = 2, .IC = 16, .IH = 10, .IW = 10, .OC = 16, .KH = 3, .KW = 3, .PH = 1, .PW = 1, .G = 2},
      // Enough output tiles for F(2x2, 3x3) forward (256 of 2x2) and F(3x3, 4x4) weight
      // gradients (128 of 4x4), at odd sizes.
      {.N = 2, .IC = 9, .IH = 23, .IW = 21, .OC = 10, .KH = 3, .KW = 3, .PH = 1, .PW = 1},
      {.N = 3, .IC = 8, .IH = 27, .IW = 26, .OC = 9, .KH = 3, .KW = 3, .PH = 1, .PW = 1},
      // One image, fewer than threads: im2col splits it into blocks of output channels
      // (forward) and input channels (backward data), at odd sizes too.
      {.N = 1, .IC = 64, .IH = 8, .IW = 8, .OC = 128, .KH = 3, .KW = 3, .PH = 1, .PW = 1},
      {.N = 1, .IC = 67, .IH = 9, .IW = 9, .OC = 70, .KH = 3, .KW = 3, .SH = 2, .SW = 2, .PH = 1,
       .PW = 1},
      // and F(4x4, 3x3) into blocks of output channels (20 tiles in one chunk).
      {.N = 1, .IC = 16, .IH = 17, .IW = 15, .OC = 35, .KH = 3, .KW = 3, .PH = 1, .PW = 1},
  };
  Rng rng(4242);
  const int64_t channels[] = {1, 3, 7, 8, 9, 17};
  const int64_t sizes[] = {1, 5, 12, 13};
  while (shapes.size() < 60) {
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
    shapes.push_back(s);
  }
  return shapes;
}

// F(4x4, 3x3)'s transforms have constants up to 8, so its rounding errors are about 15x those of
// the other algorithms.
double atol_per_root(const char* variant) { return std::strstr(variant, "4x4") ? 1e-4 : 1e-5; }

// --- mixed precision (Precision::Bf16) -----------------------------------------------------------
// A bf16 variant rounds the operands of its products to bf16 (8 significant bits: relative error
// at most u = 2⁻⁸ each) and accumulates exactly formed products in float. The tests feed it
// inputs already rounded to bf16 and compare with the double reference on those same inputs:
// - a GEMM variant (im2col, linear) multiplies the inputs themselves, which rounding leaves
//   unchanged, so it must match as closely as its float twin (amplification 0 below);
// - a Winograd variant multiplies transformed tiles, which are rounded afresh: each product term
//   of the transform domain carries an error of at most 2u of its size, which the output
//   transform carries back. With the transforms' absolute coefficients, the error is at most
//   2u · A · Σ|x||w| (Σ over the products the direct computation forms), where
//   A = (max_r Σ_a |Aᵀ_ra| · ‖G_a‖₁ · ‖Bᵀ_a‖₁)² / (products per output):
//     F(2x2, 3x3): 8² / 9 = 7.1;  F(3x3, 2x2) weight gradients: 6² / 4 = 9;
//     F(4x4, 3x3): 48² / 9 = 256; F(3x3, 4x4) weight gradients: 53.3² / 16 = 178.
//   The F(2x2) bounds are the tolerances (9 for both). The F(4x4) ones would allow errors as
//   large as the values themselves, because they assume every rounding error has one sign; the
//   errors are independent and of either sign, and the largest seen over these shapes is 11, so
//   those variants are held to 32. (build/bench_precision, 3x3 convolutions of 32 and 64
//   channels: F(4x4) in bf16 has an RMS error of 1.3% of the output's RMS against 0.2% for bf16
//   products of the untransformed data, the price of its 4x fewer products.)
bool is_bf16(ops::Isa isa) { return isa == ops::Isa::Avx512Bf16; }
double bf16_amplification(const char* variant) {
  if (!std::strstr(variant, "winograd")) return 0.0;
  return std::strstr(variant, "4x4") ? 32.0 : 9.0;
}
void round_to_bf16(Tensor<float>& t, std::vector<double>& copy) {
  for (int64_t i = 0; i < t.numel(); ++i) {
    t.data()[i] = ops::cpu::round_to_bf16(t.data()[i]);
    copy[static_cast<size_t>(i)] = t.data()[i];
  }
}
std::vector<double> absolute(const std::vector<double>& v) {
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = std::abs(v[i]);
  return out;
}
// |got - want| <= atol + rtol·|want| + 2u · amplification · magnitude, element by element.
::testing::AssertionResult within_bf16_bound(const float* got, const double* want,
                                             const double* magnitude, int64_t n, double rtol,
                                             double atol, double amplification) {
  const double u = std::ldexp(1.0, -8);
  double worst = 0;  // the largest error as a multiple of 2u · magnitude
  int64_t first_bad = -1;
  for (int64_t i = 0; i < n; ++i) {
    const double err = std::abs(got[i] - want[i]);
    if (magnitude[i] > 0) worst = std::max(worst, err / (2 * u * magnitude[i]));
    if (!(err <= atol + rtol * std::abs(want[i]) + 2 * u * amplification * magnitude[i]) &&
        first_bad < 0)
      first_bad = i;
  }
  if (first_bad < 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "element " << first_bad << ": got " << got[first_bad] << ", want " << want[first_bad]
         << ", magnitude " << magnitude[first_bad] << " (largest error " << worst
         << " x 2u·magnitude, amplification allowed " << amplification << ", " << n
         << " elements)";
}

// Calls check(shape, ctx) for every test shape that the variant supports, with every sgemm
// micro-kernel and in contexts of 1 and 2 threads; skips the test when there is none.
template <class V, class Shapes, class Check>
void for_supported(const V& variant, const Shapes& shapes, Check&& check) {
  int runs = 0;
  for (const std::string& kernel : ops::cpu::sgemm_kernel_names()) {
    SCOPED_TRACE("micro-kernel " + kernel);
    ops::cpu::sgemm_use_kernel(kernel);
    for (const auto& s : shapes) {
      for (int threads : {1, 2}) {
        // A bf16 variant runs in a bf16 context (on a CPU without bf16 it supports nothing).
        const bool bf16 = is_bf16(variant.isa) && cpu_has_bf16();
        const Context ctx(
            {.threads = threads, .precision = bf16 ? Precision::Bf16 : Precision::Fp32});
        if (!variant.supports(ctx, s)) continue;
        check(s, ctx);
        ++runs;
      }
    }
  }
  ops::cpu::sgemm_use_kernel(ops::cpu::sgemm_kernel_names().front());
  if (runs == 0)
    GTEST_SKIP() << variant.name << " (" << ops::isa_name(variant.isa)
                 << ") supports none of the test shapes on this CPU";
}

template <class V>
auto variant_name(std::span<const V> table) {
  return [table](const ::testing::TestParamInfo<size_t>& info) {
    return std::string(table[info.param].name);
  };
}

// --- convolution ---------------------------------------------------------------------------
struct ConvData {
  Tensor<float> x, w, b, dy;
  std::vector<double> xd, wd, bd, dyd;
  ConvData(const Conv2dShape& s, uint64_t seed) {
    Rng rng(seed);
    x = testing::random_normal<float>(Shape{s.N, s.IC, s.IH, s.IW}, rng);
    w = testing::random_normal<float>(Shape{s.OC, s.IC / s.G, s.KH, s.KW}, rng);
    b = testing::random_normal<float>(Shape{s.OC}, rng);
    dy = testing::random_normal<float>(Shape{s.N, s.OC, s.OH(), s.OW()}, rng);
    xd = to_double(x), wd = to_double(w), bd = to_double(b), dyd = to_double(dy);
  }
  // For a bf16 variant: the inputs rounded to bf16, the kernel and the reference seeing the same.
  void round_for(ops::Isa isa) {
    if (!is_bf16(isa)) return;
    round_to_bf16(x, xd), round_to_bf16(w, wd), round_to_bf16(dy, dyd);
  }
};

class Conv2dForward : public ::testing::TestWithParam<size_t> {};
TEST_P(Conv2dForward, MatchesRef) {
  const auto& variant = ops::conv2d_forward_variants()[GetParam()];
  for_supported(variant, conv_shapes(), [&](const Conv2dShape& s, const Context& ctx) {
    SCOPED_TRACE(describe(s) + " threads " + std::to_string(ctx.num_threads()));
    ConvData d(s, static_cast<uint64_t>(s.IC * 131 + s.IW * 7 + s.KH));
    d.round_for(variant.isa);
    Tensor<float> ws(Shape{ops::cpu::conv2d_workspace_size(s, ctx.num_threads())}, NAN);
    const double atol = atol_per_root(variant.name) * std::sqrt(double(s.IC / s.G * s.KH * s.KW));
    std::vector<double> magnitude(static_cast<size_t>(s.N * s.OC * s.OH() * s.OW()));
    ops::ref::conv2d_forward<double>(s, absolute(d.xd).data(), absolute(d.wd).data(), nullptr,
                                     magnitude.data());
    for (bool bias : {true, false}) {
      Tensor<float> y(Shape{s.N, s.OC, s.OH(), s.OW()}, NAN);  // assigned: garbage before
      std::vector<double> y_ref(static_cast<size_t>(y.numel()));
      variant.run(ctx, s, d.x.data(), d.w.data(), bias ? d.b.data() : nullptr, y.data(), ws.data());
      ops::ref::conv2d_forward<double>(s, d.xd.data(), d.wd.data(), bias ? d.bd.data() : nullptr,
                                       y_ref.data());
      if (is_bf16(variant.isa))
        EXPECT_TRUE(within_bf16_bound(y.data(), y_ref.data(), magnitude.data(), y.numel(), 1e-4,
                                      atol, bf16_amplification(variant.name)))
            << "bias " << bias;
      else
        EXPECT_TRUE(all_close(y.data(), y_ref.data(), y.numel(), 1e-4, atol)) << "bias " << bias;
    }
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, Conv2dForward,
                         ::testing::Range<size_t>(0, ops::conv2d_forward_variants().size()),
                         variant_name(ops::conv2d_forward_variants()));

class Conv2dBackwardData : public ::testing::TestWithParam<size_t> {};
TEST_P(Conv2dBackwardData, MatchesRef) {
  const auto& variant = ops::conv2d_backward_data_variants()[GetParam()];
  for_supported(variant, conv_shapes(), [&](const Conv2dShape& s, const Context& ctx) {
    SCOPED_TRACE(describe(s) + " threads " + std::to_string(ctx.num_threads()));
    ConvData d(s, static_cast<uint64_t>(s.OC * 131 + s.IH * 7 + s.KW));
    d.round_for(variant.isa);
    Tensor<float> ws(Shape{ops::cpu::conv2d_workspace_size(s, ctx.num_threads())}, NAN);
    const double atol = atol_per_root(variant.name) * std::sqrt(double(s.OC / s.G * s.KH * s.KW));
    std::vector<double> magnitude(d.xd.size(), 0.0);
    ops::ref::conv2d_backward_data(s, absolute(d.wd).data(), absolute(d.dyd).data(),
                                   magnitude.data());
    // Accumulate onto a sentinel of 1, and assign over NaN (dx's old contents never read).
    for (bool accumulate : {true, false}) {
      Tensor<float> dx(d.x.shape(), accumulate ? 1.0f : NAN);
      std::vector<double> dx_ref(static_cast<size_t>(dx.numel()), accumulate ? 1.0 : 0.0);
      variant.run(ctx, s, d.w.data(), d.dy.data(), dx.data(), ws.data(), accumulate);
      ops::ref::conv2d_backward_data(s, d.wd.data(), d.dyd.data(), dx_ref.data());
      if (is_bf16(variant.isa))
        EXPECT_TRUE(within_bf16_bound(dx.data(), dx_ref.data(), magnitude.data(), dx.numel(), 1e-4,
                                      atol, bf16_amplification(variant.name)))
            << "accumulate " << accumulate;
      else
        EXPECT_TRUE(all_close(dx.data(), dx_ref.data(), dx.numel(), 1e-4, atol))
            << "accumulate " << accumulate;
    }
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, Conv2dBackwardData,
                         ::testing::Range<size_t>(0, ops::conv2d_backward_data_variants().size()),
                         variant_name(ops::conv2d_backward_data_variants()));

class Conv2dBackwardWeights : public ::testing::TestWithParam<size_t> {};
TEST_P(Conv2dBackwardWeights, MatchesRef) {
  const auto& variant = ops::conv2d_backward_weights_variants()[GetParam()];
  for_supported(variant, conv_shapes(), [&](const Conv2dShape& s, const Context& ctx) {
    SCOPED_TRACE(describe(s) + " threads " + std::to_string(ctx.num_threads()));
    ConvData d(s, static_cast<uint64_t>(s.N * 131 + s.OC * 7 + s.PW));
    d.round_for(variant.isa);
    Tensor<float> ws(Shape{ops::cpu::conv2d_workspace_size(s, ctx.num_threads())}, NAN);
    const double reduce = std::sqrt(double(s.N * s.OH() * s.OW()));
    std::vector<double> magnitude(d.wd.size(), 0.0);
    ops::ref::conv2d_backward_weights<double>(s, absolute(d.xd).data(), absolute(d.dyd).data(),
                                              magnitude.data(), nullptr);
    for (bool bias : {true, false}) {  // accumulate onto a sentinel of 1
      Tensor<float> dw(d.w.shape(), 1.0f), db(d.b.shape(), 1.0f);
      std::vector<double> dw_ref(static_cast<size_t>(dw.numel()), 1.0), db_ref(s.OC, 1.0);
      variant.run(ctx, s, d.x.data(), d.dy.data(), dw.data(), bias ? db.data() : nullptr,
                  ws.data());
      ops::ref::conv2d_backward_weights<double>(s, d.xd.data(), d.dyd.data(), dw_ref.data(),
                                                bias ? db_ref.data() : nullptr);
      if (is_bf16(variant.isa))
        EXPECT_TRUE(within_bf16_bound(dw.data(), dw_ref.data(), magnitude.data(), dw.numel(), 1e-4,
                                      atol_per_root(variant.name) * reduce,
                                      bf16_amplification(variant.name)))
            << "weights, bias " << bias;
      else
        EXPECT_TRUE(all_close(dw.data(), dw_ref.data(), dw.numel(), 1e-4,
                              atol_per_root(variant.name) * reduce))
            << "weights, bias " << bias;
      if (bias) {
        EXPECT_TRUE(all_close(db.data(), db_ref.data(), db.numel(), 1e-4, 1e-5 * reduce)) << "bias";
      }
    }
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, Conv2dBackwardWeights,
                         ::testing::Range<size_t>(0,
                                                  ops::conv2d_backward_weights_variants().size()),
                         variant_name(ops::conv2d_backward_weights_variants()));

// --- linear --------------------------------------------------------------------------------
const ops::LinearShape kLinearShapes[] = {{1, 1, 1},    {1, 400, 120}, {3, 7, 5},
                                          {64, 84, 10}, {5, 33, 65},   {2, 1, 37}};
struct LinearData {
  Tensor<float> x, w, b, dy;
  std::vector<double> xd, wd, bd, dyd;
  double atol;
  // A bf16 variant's inputs are rounded to bf16 first (see round_for above): its GEMMs then
  // multiply exactly these values and must match as closely as the float ones.
  LinearData(const ops::LinearShape& s, ops::Isa isa) {
    Rng rng(static_cast<uint64_t>(s.N * 1000 + s.IN * 10 + s.OUT));
    x = testing::random_normal<float>(Shape{s.N, s.IN}, rng);
    w = testing::random_normal<float>(Shape{s.OUT, s.IN}, rng);
    b = testing::random_normal<float>(Shape{s.OUT}, rng);
    dy = testing::random_normal<float>(Shape{s.N, s.OUT}, rng);
    xd = to_double(x), wd = to_double(w), bd = to_double(b), dyd = to_double(dy);
    if (is_bf16(isa)) round_to_bf16(x, xd), round_to_bf16(w, wd), round_to_bf16(dy, dyd);
    atol = 1e-5 * std::sqrt(static_cast<double>(std::max({s.N, s.IN, s.OUT})));
  }
};

class LinearForward : public ::testing::TestWithParam<size_t> {};
TEST_P(LinearForward, MatchesRef) {
  const auto& variant = ops::linear_forward_variants()[GetParam()];
  for_supported(variant, kLinearShapes, [&](const ops::LinearShape& s, const Context& ctx) {
    const LinearData d(s, variant.isa);
    Tensor<float> y(Shape{s.N, s.OUT}, NAN);
    std::vector<double> y_ref(static_cast<size_t>(y.numel()));
    variant.run(ctx, s, d.x.data(), d.w.data(), d.b.data(), y.data());
    ops::ref::linear_forward(s, d.xd.data(), d.wd.data(), d.bd.data(), y_ref.data());
    EXPECT_TRUE(all_close(y.data(), y_ref.data(), y.numel(), 1e-4, d.atol));
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, LinearForward,
                         ::testing::Range<size_t>(0, ops::linear_forward_variants().size()),
                         variant_name(ops::linear_forward_variants()));

class LinearBackwardData : public ::testing::TestWithParam<size_t> {};
TEST_P(LinearBackwardData, MatchesRef) {
  const auto& variant = ops::linear_backward_data_variants()[GetParam()];
  for_supported(variant, kLinearShapes, [&](const ops::LinearShape& s, const Context& ctx) {
    const LinearData d(s, variant.isa);
    Tensor<float> dx(d.x.shape(), 1.0f);
    std::vector<double> dx_ref(static_cast<size_t>(dx.numel()), 1.0);
    variant.run(ctx, s, d.w.data(), d.dy.data(), dx.data());
    ops::ref::linear_backward_data(s, d.wd.data(), d.dyd.data(), dx_ref.data());
    EXPECT_TRUE(all_close(dx.data(), dx_ref.data(), dx.numel(), 1e-4, d.atol));
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, LinearBackwardData,
                         ::testing::Range<size_t>(0, ops::linear_backward_data_variants().size()),
                         variant_name(ops::linear_backward_data_variants()));

class LinearBackwardWeights : public ::testing::TestWithParam<size_t> {};
TEST_P(LinearBackwardWeights, MatchesRef) {
  const auto& variant = ops::linear_backward_weights_variants()[GetParam()];
  for_supported(variant, kLinearShapes, [&](const ops::LinearShape& s, const Context& ctx) {
    const LinearData d(s, variant.isa);
    Tensor<float> dw(d.w.shape(), 1.0f), db(d.b.shape(), 1.0f);
    std::vector<double> dw_ref(static_cast<size_t>(dw.numel()), 1.0), db_ref(s.OUT, 1.0);
    variant.run(ctx, s, d.x.data(), d.dy.data(), dw.data(), db.data());
    ops::ref::linear_backward_weights(s, d.xd.data(), d.dyd.data(), dw_ref.data(), db_ref.data());
    EXPECT_TRUE(all_close(dw.data(), dw_ref.data(), dw.numel(), 1e-4, d.atol)) << "weights";
    EXPECT_TRUE(all_close(db.data(), db_ref.data(), db.numel(), 1e-4, d.atol)) << "bias";
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, LinearBackwardWeights,
                         ::testing::Range<size_t>(0,
                                                  ops::linear_backward_weights_variants().size()),
                         variant_name(ops::linear_backward_weights_variants()));

// --- max pooling: exactly the reference's values and winners (first maximum wins) ------------
std::vector<ops::Pool2dShape> pool_shapes() {
  std::vector<ops::Pool2dShape> shapes = {
      {.N = 1, .C = 1, .IH = 1, .IW = 1, .KH = 1, .KW = 1},
      {.N = 2, .C = 3, .IH = 8, .IW = 8, .KH = 2, .KW = 2, .SH = 2, .SW = 2},
      {.N = 1, .C = 2, .IH = 7, .IW = 9, .KH = 2, .KW = 2, .SH = 2, .SW = 2},
      {.N = 3, .C = 2, .IH = 5, .IW = 6, .KH = 3, .KW = 3, .SH = 2, .SW = 2, .PH = 1, .PW = 1},
      {.N = 1, .C = 4, .IH = 11, .IW = 4, .KH = 3, .KW = 2, .SH = 1, .SW = 3, .PH = 1},
      // 2x2 stride 2 (its AVX-512 variant): lenet's maps, and rows of more than one vector of
      // windows, odd and with a remainder.
      {.N = 2, .C = 3, .IH = 28, .IW = 28, .KH = 2, .KW = 2, .SH = 2, .SW = 2},
      {.N = 2, .C = 5, .IH = 10, .IW = 10, .KH = 2, .KW = 2, .SH = 2, .SW = 2},
      {.N = 1, .C = 2, .IH = 9, .IW = 67, .KH = 2, .KW = 2, .SH = 2, .SW = 2},
      {.N = 1, .C = 1, .IH = 2, .IW = 32, .KH = 2, .KW = 2, .SH = 2, .SW = 2},
  };
  Rng rng(31);
  while (shapes.size() < 40) {
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
    try {
      s.validate("random");
    } catch (const Error&) {
      continue;
    }
    shapes.push_back(s);
  }
  return shapes;
}

Tensor<float> pool_input(const ops::Pool2dShape& s) {
  Rng rng(static_cast<uint64_t>(s.N * 977 + s.IH * 31 + s.IW));
  Tensor<float> x = testing::random_normal<float>(Shape{s.N, s.C, s.IH, s.IW}, rng);
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = std::max(x[i], 0.0f);  // ties at zero
  return x;
}

class MaxPool2dForward : public ::testing::TestWithParam<size_t> {};
TEST_P(MaxPool2dForward, MatchesRefExactly) {
  const auto& variant = ops::maxpool2d_forward_variants()[GetParam()];
  for_supported(variant, pool_shapes(), [&](const ops::Pool2dShape& s, const Context& ctx) {
    const Tensor<float> x = pool_input(s);
    const int64_t out = s.N * s.C * s.OH() * s.OW();
    std::vector<float> y(out, NAN), y_ref(out);
    std::vector<int32_t> idx(out, -7), idx_ref(out);
    variant.run(ctx, s, x.data(), y.data(), idx.data());
    ops::ref::maxpool2d_forward(s, x.data(), y_ref.data(), idx_ref.data());
    EXPECT_EQ(y, y_ref);
    EXPECT_EQ(idx, idx_ref);
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, MaxPool2dForward,
                         ::testing::Range<size_t>(0, ops::maxpool2d_forward_variants().size()),
                         variant_name(ops::maxpool2d_forward_variants()));

class MaxPool2dBackward : public ::testing::TestWithParam<size_t> {};
TEST_P(MaxPool2dBackward, MatchesRefExactly) {
  const auto& variant = ops::maxpool2d_backward_variants()[GetParam()];
  for_supported(variant, pool_shapes(), [&](const ops::Pool2dShape& s, const Context& ctx) {
    const Tensor<float> x = pool_input(s);
    const int64_t out = s.N * s.C * s.OH() * s.OW();
    std::vector<float> y(out);
    std::vector<int32_t> idx(out);
    ops::ref::maxpool2d_forward(s, x.data(), y.data(), idx.data());
    Rng rng(static_cast<uint64_t>(out));
    const Tensor<float> dy = testing::random_normal<float>(Shape{out}, rng);
    std::vector<float> dx(x.numel(), 1.0f), dx_ref(x.numel(), 1.0f);  // scatter onto 1
    variant.run(ctx, s, dy.data(), idx.data(), dx.data());
    ops::ref::maxpool2d_backward(s, dy.data(), idx.data(), dx_ref.data());
    EXPECT_EQ(dx, dx_ref);
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, MaxPool2dBackward,
                         ::testing::Range<size_t>(0, ops::maxpool2d_backward_variants().size()),
                         variant_name(ops::maxpool2d_backward_variants()));

// --- ReLU: exactly the reference, on sizes around the thread split and vector tails ----------
const int64_t kCounts[] = {1, 7, 16, 17, 1000, (1 << 14) - 1, (1 << 15) + 3, 100003};

class ReluForward : public ::testing::TestWithParam<size_t> {};
TEST_P(ReluForward, MatchesRefExactly) {
  const auto& variant = ops::relu_forward_variants()[GetParam()];
  for_supported(variant, kCounts, [&](int64_t n, const Context& ctx) {
    Rng rng(static_cast<uint64_t>(n));
    Tensor<float> x = testing::random_normal<float>(Shape{n}, rng);
    x[0] = 0.0f;  // the kink
    Tensor<float> y(Shape{n}, NAN), y_ref(Shape{n});
    variant.run(ctx, n, x.data(), y.data());
    ops::ref::relu_forward(n, x.data(), y_ref.data());
    EXPECT_TRUE(all_close(y, y_ref, 0, 0)) << n;
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, ReluForward,
                         ::testing::Range<size_t>(0, ops::relu_forward_variants().size()),
                         variant_name(ops::relu_forward_variants()));

class ReluBackward : public ::testing::TestWithParam<size_t> {};
TEST_P(ReluBackward, MatchesRefExactly) {
  const auto& variant = ops::relu_backward_variants()[GetParam()];
  for_supported(variant, kCounts, [&](int64_t n, const Context& ctx) {
    Rng rng(static_cast<uint64_t>(n));
    Tensor<float> x = testing::random_normal<float>(Shape{n}, rng);
    x[0] = 0.0f;  // ReLU'(0) = 0 in both
    const Tensor<float> dy = testing::random_normal<float>(Shape{n}, rng);
    for (bool accumulate : {true, false}) {
      Tensor<float> dx(Shape{n}, accumulate ? 2.0f : NAN), dx_ref(Shape{n}, accumulate ? 2 : 0);
      variant.run(ctx, n, x.data(), dy.data(), dx.data(), accumulate);
      ops::ref::relu_backward(n, x.data(), dy.data(), dx_ref.data());
      EXPECT_TRUE(all_close(dx, dx_ref, 0, 0)) << n << " accumulate " << accumulate;
    }
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, ReluBackward,
                         ::testing::Range<size_t>(0, ops::relu_backward_variants().size()),
                         variant_name(ops::relu_backward_variants()));

// --- Add: exactly the reference, for 2 to 5 inputs, one of them given twice -----------------
class AddForward : public ::testing::TestWithParam<size_t> {};
TEST_P(AddForward, MatchesRefExactly) {
  const auto& variant = ops::add_forward_variants()[GetParam()];
  for_supported(variant, kCounts, [&](int64_t n, const Context& ctx) {
    Rng rng(static_cast<uint64_t>(n));
    std::vector<Tensor<float>> xs;
    for (int i = 0; i < 4; ++i) xs.push_back(testing::random_normal<float>(Shape{n}, rng));
    for (size_t inputs = 2; inputs <= 5; ++inputs) {
      const float* in[5];
      for (size_t i = 0; i < inputs; ++i) in[i] = xs[i % 4].data();  // input 4 repeats input 0
      Tensor<float> y(Shape{n}, NAN), y_ref(Shape{n}, NAN);
      variant.run(ctx, n, std::span<const float* const>(in, inputs), y.data());
      ops::ref::add_forward<float>(n, std::span<const float* const>(in, inputs), y_ref.data());
      EXPECT_TRUE(all_close(y, y_ref, 0, 0)) << n << " values, " << inputs << " inputs";
    }
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, AddForward,
                         ::testing::Range<size_t>(0, ops::add_forward_variants().size()),
                         variant_name(ops::add_forward_variants()));

class AddBackward : public ::testing::TestWithParam<size_t> {};
TEST_P(AddBackward, MatchesRefExactly) {
  // Input 0 assigned, input 1 accumulated, input 2 not needed (null), input 3 the same tensor
  // as input 0 (added to after its assignment).
  const auto& variant = ops::add_backward_variants()[GetParam()];
  for_supported(variant, kCounts, [&](int64_t n, const Context& ctx) {
    Rng rng(static_cast<uint64_t>(n));
    const Tensor<float> dy = testing::random_normal<float>(Shape{n}, rng);
    const Tensor<float> start = testing::random_normal<float>(Shape{n}, rng);
    Tensor<float> a(Shape{n}, NAN), b = start, a_ref(Shape{n}, NAN), b_ref = start;
    float* dxs[] = {a.data(), b.data(), nullptr, a.data()};
    float* dxs_ref[] = {a_ref.data(), b_ref.data(), nullptr, a_ref.data()};
    const bool assign[] = {true, false, true, false};
    variant.run(ctx, n, dy.data(), std::span<float* const>(dxs), std::span<const bool>(assign));
    ops::ref::add_backward<float>(n, dy.data(), std::span<float* const>(dxs_ref), assign);
    EXPECT_TRUE(all_close(a, a_ref, 0, 0)) << n;
    EXPECT_TRUE(all_close(b, b_ref, 0, 0)) << n;
    EXPECT_EQ(a[n - 1], 2 * dy[n - 1]) << "assigned, then added to";
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, AddBackward,
                         ::testing::Range<size_t>(0, ops::add_backward_variants().size()),
                         variant_name(ops::add_backward_variants()));

// --- elementwise utilities and optimizer updates: exactly the reference, in float ----------
// The model's gradient zeroing and clipping, Flatten, Dropout and the optimizers' updates run
// these, and must leave a training run's bits as they were: each variant is compared with the
// reference run in float, bit for bit, on sizes around the thread split (1 chunk below 2^14
// values, 2 from 2^15 at 2 threads) and vector tails.
const int64_t kUpdateCounts[] = {
    1, 7, 16, 17, 1000, (1 << 14) - 1, 1 << 14, (1 << 15) - 1, 1 << 15, (1 << 15) + 3, 100003};

// Bit for bit (signed zeros and NaNs included), naming the first element that differs.
::testing::AssertionResult same_bits(const Tensor<float>& got, const Tensor<float>& want) {
  if (got.numel() != want.numel())
    return ::testing::AssertionFailure() << "size " << got.numel() << " vs " << want.numel();
  for (int64_t i = 0; i < got.numel(); ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0)
      return ::testing::AssertionFailure() << "element " << i << " of " << got.numel() << ": got "
                                           << got[i] << ", want " << want[i];
  return ::testing::AssertionSuccess();
}

// Values with every sign and a spread of magnitudes (and some exact zeros).
Tensor<float> spread(int64_t n, uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  Tensor<float> t = testing::random_normal<float>(Shape{n}, rng, scale);
  for (int64_t i = 0; i < n; i += 97) t[i] = 0.0f;
  return t;
}
// Non-negative values (second moments).
Tensor<float> positive(int64_t n, uint64_t seed) {
  Tensor<float> t = spread(n, seed);
  for (int64_t i = 0; i < n; ++i) t[i] = t[i] * t[i] * 0.01f;
  return t;
}

class Fill : public ::testing::TestWithParam<size_t> {};
TEST_P(Fill, MatchesRefExactly) {
  const auto& variant = ops::fill_variants()[GetParam()];
  for_supported(variant, kUpdateCounts, [&](int64_t n, const Context& ctx) {
    Tensor<float> y = spread(n, 1), y_ref = y;
    variant.run(ctx, n, -0.0f, y.data());
    ops::ref::fill(n, -0.0f, y_ref.data());
    EXPECT_TRUE(same_bits(y, y_ref)) << n;
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, Fill, ::testing::Range<size_t>(0, ops::fill_variants().size()),
                         variant_name(ops::fill_variants()));

class Scale : public ::testing::TestWithParam<size_t> {};
TEST_P(Scale, MatchesRefExactly) {
  const auto& variant = ops::scale_variants()[GetParam()];
  for_supported(variant, kUpdateCounts, [&](int64_t n, const Context& ctx) {
    Tensor<float> x = spread(n, 2), x_ref = x;
    variant.run(ctx, n, 0.3712f, x.data());
    ops::ref::scale(n, 0.3712f, x_ref.data());
    EXPECT_TRUE(same_bits(x, x_ref)) << n;
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, Scale, ::testing::Range<size_t>(0, ops::scale_variants().size()),
                         variant_name(ops::scale_variants()));

class Copy : public ::testing::TestWithParam<size_t> {};
TEST_P(Copy, MatchesRefExactly) {
  const auto& variant = ops::copy_variants()[GetParam()];
  for_supported(variant, kUpdateCounts, [&](int64_t n, const Context& ctx) {
    const Tensor<float> x = spread(n, 3);
    Tensor<float> y(Shape{n}, NAN);
    variant.run(ctx, n, x.data(), y.data());
    EXPECT_TRUE(same_bits(y, x)) << n;
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, Copy, ::testing::Range<size_t>(0, ops::copy_variants().size()),
                         variant_name(ops::copy_variants()));

class Accumulate : public ::testing::TestWithParam<size_t> {};
TEST_P(Accumulate, MatchesRefExactly) {
  const auto& variant = ops::accumulate_variants()[GetParam()];
  for_supported(variant, kUpdateCounts, [&](int64_t n, const Context& ctx) {
    const Tensor<float> x = spread(n, 4);
    Tensor<float> y = spread(n, 5), y_ref = y;
    variant.run(ctx, n, x.data(), y.data());
    ops::ref::accumulate(n, x.data(), y_ref.data());
    EXPECT_TRUE(same_bits(y, y_ref)) << n;
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, Accumulate,
                         ::testing::Range<size_t>(0, ops::accumulate_variants().size()),
                         variant_name(ops::accumulate_variants()));

class Multiply : public ::testing::TestWithParam<size_t> {};
TEST_P(Multiply, MatchesRefExactly) {
  const auto& variant = ops::multiply_variants()[GetParam()];
  for_supported(variant, kUpdateCounts, [&](int64_t n, const Context& ctx) {
    const Tensor<float> x = spread(n, 6), m = spread(n, 7);
    Tensor<float> y(Shape{n}, NAN), y_ref(Shape{n}, NAN);
    variant.run(ctx, n, x.data(), m.data(), y.data());
    ops::ref::multiply(n, x.data(), m.data(), y_ref.data());
    EXPECT_TRUE(same_bits(y, y_ref)) << n;
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, Multiply,
                         ::testing::Range<size_t>(0, ops::multiply_variants().size()),
                         variant_name(ops::multiply_variants()));

// y + x·m rounds twice in the reference; a fused multiply-add would round once and differ.
class MultiplyAccumulate : public ::testing::TestWithParam<size_t> {};
TEST_P(MultiplyAccumulate, MatchesRefExactly) {
  const auto& variant = ops::multiply_accumulate_variants()[GetParam()];
  for_supported(variant, kUpdateCounts, [&](int64_t n, const Context& ctx) {
    const Tensor<float> x = spread(n, 8), m = spread(n, 9);
    Tensor<float> y = spread(n, 10), y_ref = y;
    variant.run(ctx, n, x.data(), m.data(), y.data());
    ops::ref::multiply_accumulate(n, x.data(), m.data(), y_ref.data());
    EXPECT_TRUE(same_bits(y, y_ref)) << n;
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, MultiplyAccumulate,
                         ::testing::Range<size_t>(0, ops::multiply_accumulate_variants().size()),
                         variant_name(ops::multiply_accumulate_variants()));

// Bias over channels: small shapes (one call) and shapes past the thread split, odd sizes.
const ops::BiasShape kBiasShapes[] = {{1, 1, 1},     {2, 3, 5},     {3, 7, 1000}, {64, 6, 196},
                                      {5, 17, 2048}, {1, 33, 1023}, {7, 1, 4099}};

class BiasForward : public ::testing::TestWithParam<size_t> {};
TEST_P(BiasForward, MatchesRefExactly) {
  const auto& variant = ops::bias_forward_variants()[GetParam()];
  for_supported(variant, kBiasShapes, [&](const ops::BiasShape& s, const Context& ctx) {
    const int64_t n = s.N * s.C * s.HW;
    const Tensor<float> b = spread(s.C, 11);
    Tensor<float> y = spread(n, 12), y_ref = y;
    variant.run(ctx, s, b.data(), y.data());
    ops::ref::bias_forward(s, b.data(), y_ref.data());
    EXPECT_TRUE(same_bits(y, y_ref)) << s.N << "x" << s.C << "x" << s.HW;
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, BiasForward,
                         ::testing::Range<size_t>(0, ops::bias_forward_variants().size()),
                         variant_name(ops::bias_forward_variants()));

// The bias gradient is a sum: exactly the reference's means in the reference's order.
class BiasBackward : public ::testing::TestWithParam<size_t> {};
TEST_P(BiasBackward, MatchesRefExactly) {
  const auto& variant = ops::bias_backward_variants()[GetParam()];
  for_supported(variant, kBiasShapes, [&](const ops::BiasShape& s, const Context& ctx) {
    const Tensor<float> dy = spread(s.N * s.C * s.HW, 13);
    Tensor<float> db = spread(s.C, 14), db_ref = db;  // accumulates
    variant.run(ctx, s, dy.data(), db.data());
    ops::ref::bias_backward(s, dy.data(), db_ref.data());
    EXPECT_TRUE(same_bits(db, db_ref)) << s.N << "x" << s.C << "x" << s.HW;
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, BiasBackward,
                         ::testing::Range<size_t>(0, ops::bias_backward_variants().size()),
                         variant_name(ops::bias_backward_variants()));

// Every option of each optimizer, at the first step and a later one: parameters and state
// exactly the reference's.
class SgdUpdate : public ::testing::TestWithParam<size_t> {};
TEST_P(SgdUpdate, MatchesRefExactly) {
  const auto& variant = ops::sgd_update_variants()[GetParam()];
  for_supported(variant, kUpdateCounts, [&](int64_t n, const Context& ctx) {
    const Tensor<float> g = spread(n, 15);
    for (const ops::SgdStep<float> c :
         {ops::SgdStep<float>{0.05f, 0.0f, 0.0f, 1.0f, true, false},
          ops::SgdStep<float>{0.05f, 1e-4f, 0.9f, 1.0f, true, false},
          ops::SgdStep<float>{0.05f, 1e-4f, 0.9f, 0.9f, false, false},
          ops::SgdStep<float>{0.01f, 5e-4f, 0.9f, 1.0f, false, true}}) {
      SCOPED_TRACE(::testing::Message()
                   << n << " values, wd " << c.weight_decay << " momentum " << c.momentum
                   << " first " << c.first << " nesterov " << c.nesterov);
      Tensor<float> p = spread(n, 16), buf = spread(n, 17, 0.1), p_ref = p, buf_ref = buf;
      float* b = c.momentum > 0 ? buf.data() : nullptr;
      float* b_ref = c.momentum > 0 ? buf_ref.data() : nullptr;
      variant.run(ctx, n, c, p.data(), g.data(), b);
      ops::ref::sgd_update(n, c, p_ref.data(), g.data(), b_ref);
      EXPECT_TRUE(same_bits(p, p_ref)) << "p";
      EXPECT_TRUE(same_bits(buf, buf_ref)) << "momentum buffer";
    }
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, SgdUpdate,
                         ::testing::Range<size_t>(0, ops::sgd_update_variants().size()),
                         variant_name(ops::sgd_update_variants()));

class AdamUpdate : public ::testing::TestWithParam<size_t> {};
TEST_P(AdamUpdate, MatchesRefExactly) {
  const auto& variant = ops::adam_update_variants()[GetParam()];
  for_supported(variant, kUpdateCounts, [&](int64_t n, const Context& ctx) {
    const Tensor<float> g = spread(n, 18);
    for (int t : {1, 7})
      for (bool decoupled : {false, true}) {
        SCOPED_TRACE(::testing::Message()
                     << n << " values, step " << t << " decoupled " << decoupled);
        const double lr = 1e-3, wd = decoupled ? 1e-2 : 1e-4;
        const ops::AdamStep<float> c{
            .beta1 = 0.9f,
            .beta2 = 0.999f,
            .step_size = static_cast<float>(lr / (1.0 - std::pow(0.9, t))),
            .sqrt_bc2 = static_cast<float>(std::sqrt(1.0 - std::pow(0.999, t))),
            .eps = 1e-8f,
            .weight_decay = static_cast<float>(wd),
            .decay = static_cast<float>(1.0 - lr * wd),
            .decoupled = decoupled};
        Tensor<float> p = spread(n, 19), m = spread(n, 20, 0.1), v = positive(n, 21);
        Tensor<float> p_ref = p, m_ref = m, v_ref = v;
        variant.run(ctx, n, c, p.data(), g.data(), m.data(), v.data());
        ops::ref::adam_update(n, c, p_ref.data(), g.data(), m_ref.data(), v_ref.data());
        EXPECT_TRUE(same_bits(p, p_ref)) << "p";
        EXPECT_TRUE(same_bits(m, m_ref)) << "m";
        EXPECT_TRUE(same_bits(v, v_ref)) << "v";
      }
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, AdamUpdate,
                         ::testing::Range<size_t>(0, ops::adam_update_variants().size()),
                         variant_name(ops::adam_update_variants()));

class RmsPropUpdate : public ::testing::TestWithParam<size_t> {};
TEST_P(RmsPropUpdate, MatchesRefExactly) {
  const auto& variant = ops::rmsprop_update_variants()[GetParam()];
  for_supported(variant, kUpdateCounts, [&](int64_t n, const Context& ctx) {
    const Tensor<float> g = spread(n, 22);
    for (bool centered : {false, true})
      for (float momentum : {0.0f, 0.9f}) {
        SCOPED_TRACE(::testing::Message()
                     << n << " values, centered " << centered << " momentum " << momentum);
        const ops::RmsPropStep<float> c{.lr = 1e-2f,
                                        .alpha = 0.99f,
                                        .eps = 1e-8f,
                                        .weight_decay = 1e-4f,
                                        .momentum = momentum,
                                        .centered = centered,
                                        .use_momentum = momentum > 0};
        // v ≥ g_avg² keeps the centered square root real, as the update's history does.
        Tensor<float> p = spread(n, 23), v = positive(n, 24), g_avg = spread(n, 25, 0.01),
                      buf = spread(n, 26, 0.1);
        for (int64_t i = 0; i < n; ++i) v[i] += g_avg[i] * g_avg[i];
        Tensor<float> p_ref = p, v_ref = v, g_avg_ref = g_avg, buf_ref = buf;
        variant.run(ctx, n, c, p.data(), g.data(), v.data(), g_avg.data(), buf.data());
        ops::ref::rmsprop_update(n, c, p_ref.data(), g.data(), v_ref.data(), g_avg_ref.data(),
                                 buf_ref.data());
        EXPECT_TRUE(same_bits(p, p_ref)) << "p";
        EXPECT_TRUE(same_bits(v, v_ref)) << "v";
        EXPECT_TRUE(same_bits(g_avg, g_avg_ref)) << "g_avg";
        EXPECT_TRUE(same_bits(buf, buf_ref)) << "momentum buffer";
      }
  });
}
INSTANTIATE_TEST_SUITE_P(Variant, RmsPropUpdate,
                         ::testing::Range<size_t>(0, ops::rmsprop_update_variants().size()),
                         variant_name(ops::rmsprop_update_variants()));

// Concatenation has no fast variant; its reference, worked by hand: two images of 1 and 2
// channels of 2 values each interleave per image, and backward splits them back.
TEST(ConcatRef, HandWorked) {
  const double x0[] = {1, 2, 3, 4};                 // (2, 1, 2)
  const double x1[] = {5, 6, 7, 8, 9, 10, 11, 12};  // (2, 2, 2)
  const int64_t channels[] = {1, 2};
  const double* xs[] = {x0, x1};
  double y[12];
  ops::ref::concat_forward<double>(2, 2, channels, xs, y);
  const double want[] = {1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12};
  for (int k = 0; k < 12; ++k) EXPECT_EQ(y[k], want[k]) << k;
  double dx0[4] = {100, 100, 100, 100};
  double* dxs[] = {dx0, nullptr};  // input 1's gradient not needed
  ops::ref::concat_backward<double>(2, 2, channels, y, dxs);
  for (int k = 0; k < 4; ++k) EXPECT_EQ(dx0[k], 100 + x0[k]) << k;  // accumulates
}

// --- the tables themselves -------------------------------------------------------------------
template <class V>
void expect_well_formed(const char* op, std::span<const V> table) {
  SCOPED_TRACE(op);
  ASSERT_FALSE(table.empty());
  std::set<std::string> names;
  std::string listed;
  for (const V& v : table) {
    EXPECT_TRUE(names.insert(v.name).second) << "two variants named " << v.name;
    EXPECT_NE(v.run, nullptr) << v.name;
    listed += detail::concat(" ", v.name, "(", ops::isa_name(v.isa), ")");
  }
  std::printf("%-24s%s\n", op, listed.c_str());
}

// Names unique; printed, so that the test log shows every table's variants in dispatch order.
TEST(KernelTables, ListEveryVariant) {
  expect_well_formed("conv2d forward", ops::conv2d_forward_variants());
  expect_well_formed("conv2d backward data", ops::conv2d_backward_data_variants());
  expect_well_formed("conv2d backward weights", ops::conv2d_backward_weights_variants());
  expect_well_formed("linear forward", ops::linear_forward_variants());
  expect_well_formed("linear backward data", ops::linear_backward_data_variants());
  expect_well_formed("linear backward weights", ops::linear_backward_weights_variants());
  expect_well_formed("maxpool2d forward", ops::maxpool2d_forward_variants());
  expect_well_formed("maxpool2d backward", ops::maxpool2d_backward_variants());
  expect_well_formed("relu forward", ops::relu_forward_variants());
  expect_well_formed("relu backward", ops::relu_backward_variants());
  expect_well_formed("add forward", ops::add_forward_variants());
  expect_well_formed("add backward", ops::add_backward_variants());
  expect_well_formed("batchnorm stats", ops::batchnorm_stats_variants());
  expect_well_formed("batchnorm forward", ops::batchnorm_forward_variants());
  expect_well_formed("batchnorm backward", ops::batchnorm_backward_variants());
  expect_well_formed("fill", ops::fill_variants());
  expect_well_formed("scale", ops::scale_variants());
  expect_well_formed("copy", ops::copy_variants());
  expect_well_formed("accumulate", ops::accumulate_variants());
  expect_well_formed("multiply", ops::multiply_variants());
  expect_well_formed("multiply accumulate", ops::multiply_accumulate_variants());
  expect_well_formed("bias forward", ops::bias_forward_variants());
  expect_well_formed("bias backward", ops::bias_backward_variants());
  expect_well_formed("sgd update", ops::sgd_update_variants());
  expect_well_formed("adam update", ops::adam_update_variants());
  expect_well_formed("rmsprop update", ops::rmsprop_update_variants());
}

// Some variant supports every shape: grouped convolutions go to "grouped", and dense ones to
// "im2col" unless an AVX-512 variant takes them (with the generic micro-kernel none does).
TEST(KernelTables, EveryShapeHasAVariant) {
  for (const std::string& kernel : ops::cpu::sgemm_kernel_names()) {
    ops::cpu::sgemm_use_kernel(kernel);
    for (const Conv2dShape& s : conv_shapes()) {
      SCOPED_TRACE(describe(s) + " micro-kernel " + kernel);
      const Context ctx;
      const char* names[] = {ops::select(ctx, ops::conv2d_forward_variants(), s).name,
                             ops::select(ctx, ops::conv2d_backward_data_variants(), s).name,
                             ops::select(ctx, ops::conv2d_backward_weights_variants(), s).name};
      for (const char* name : names) {
        if (s.G > 1) {
          EXPECT_STREQ(name, "grouped");
        } else if (kernel != "avx512") {
          EXPECT_STREQ(name, "im2col");
        }
      }
    }
  }
  ops::cpu::sgemm_use_kernel(ops::cpu::sgemm_kernel_names().front());
}

// The F(4x4) variants read the context's Winograd tile: under F2x2 dispatch passes them by.
TEST(KernelTables, WinogradTileIsTheContexts) {
  const Conv2dShape s{
      .N = 4, .IC = 16, .IH = 16, .IW = 16, .OC = 16, .KH = 3, .KW = 3, .PH = 1, .PW = 1};
  const Context f4, f2({.winograd_tile = WinogradTile::F2x2});
  const std::string chosen = ops::select(f4, ops::conv2d_forward_variants(), s).name;
  if (chosen != "winograd_f4x4")
    GTEST_SKIP() << "F(4x4, 3x3) does not run on this CPU (" << chosen << " does)";
  EXPECT_STREQ(ops::select(f2, ops::conv2d_forward_variants(), s).name, "winograd_f2x2");
  EXPECT_STREQ(ops::select(f2, ops::conv2d_backward_data_variants(), s).name, "winograd_f2x2");
  EXPECT_STREQ(ops::select(f2, ops::conv2d_backward_weights_variants(), s).name,
               "winograd_f3x3_2x2");
}

// Winograd's products have one column per output tile; with few tiles (small batches on small
// maps: batch-1 inference) the tables fall back to the GEMM kernels, by the tile counts in
// conv2d.cpp.
TEST(KernelTables, FewTilesLeaveWinograd) {
  const auto at = [](int64_t batch, int64_t size) {
    return Conv2dShape{.N = batch, .IC = 128, .IH = size, .IW = size, .OC = 128, .KH = 3,
                       .KW = 3, .PH = 1, .PW = 1};
  };
  const Context ctx;
  if (std::string(ops::select(ctx, ops::conv2d_forward_variants(), at(64, 8)).name) !=
      "winograd_f4x4")
    GTEST_SKIP() << "F(4x4, 3x3) does not run on this CPU";
  const auto forward = [&](const Conv2dShape& s) {
    return std::string(ops::select(ctx, ops::conv2d_forward_variants(), s).name);
  };
  const auto data = [&](const Conv2dShape& s) {
    return std::string(ops::select(ctx, ops::conv2d_backward_data_variants(), s).name);
  };
  const auto weights = [&](const Conv2dShape& s) {
    return std::string(ops::select(ctx, ops::conv2d_backward_weights_variants(), s).name);
  };
  // 8x8 maps: 4 tiles of 4x4 per image.
  EXPECT_EQ(forward(at(1, 8)), "im2col");
  EXPECT_EQ(data(at(1, 8)), "im2col");
  EXPECT_EQ(weights(at(1, 8)), "im2col");
  EXPECT_EQ(forward(at(4, 8)), "winograd_f4x4");
  EXPECT_EQ(data(at(4, 8)), "winograd_f4x4");
  EXPECT_EQ(weights(at(4, 8)), "winograd_f3x3_2x2");
  EXPECT_EQ(weights(at(31, 8)), "winograd_f3x3_2x2");  // 124 tiles
  EXPECT_EQ(weights(at(32, 8)), "winograd_f3x3_4x4");
  // 16x16 and 32x32: Winograd forward from one image; F(3x3, 4x4) weight gradients from 128 tiles.
  EXPECT_EQ(forward(at(1, 16)), "winograd_f4x4");
  EXPECT_EQ(weights(at(1, 16)), "winograd_f3x3_2x2");
  EXPECT_EQ(weights(at(1, 32)), "winograd_f3x3_2x2");
  EXPECT_EQ(weights(at(2, 32)), "winograd_f3x3_4x4");
}

}  // namespace
}  // namespace convnet
