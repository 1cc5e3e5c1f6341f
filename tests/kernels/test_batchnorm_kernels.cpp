// Every variant of the batch-norm tables (float, threaded over channels) against the reference
// in double, on edge and random shapes at 1 and 2 threads, and bit-for-bit equal across thread
// counts.
#include <algorithm>
#include <cmath>

#include "ops/kernels.hpp"
#include "support/testing.hpp"

namespace convnet {
namespace {

using ops::BatchNormShape;
using testing::all_close;

std::vector<double> to_double(const Tensor<float>& t) {
  return std::vector<double>(t.data(), t.data() + t.numel());
}

// Statistics are compared on their own; forward and backward then run both kernel families on
// the SAME statistics (the fast ones, widened), because with a tiny batch variance x̂ is
// ill-conditioned in float and would measure the data, not the kernels.
void compare_variants(const BatchNormShape& s, uint64_t seed,
                      const ops::BatchNormStatsVariant& stats,
                      const ops::BatchNormForwardVariant& forward,
                      const ops::BatchNormBackwardVariant& backward) {
  SCOPED_TRACE(::testing::Message()
               << "N=" << s.N << " C=" << s.C << " HW=" << s.HW << " stats " << stats.name
               << " forward " << forward.name << " backward " << backward.name);
  Rng rng(seed);
  const Shape shape{s.N, s.C, s.HW};
  Tensor<float> x = testing::random_normal<float>(shape, rng);
  for (int64_t i = 0; i < x.numel(); ++i)  // channel means far from 0 test the two-pass variance
    x[i] = x[i] * 0.5f + static_cast<float>((i / s.HW) % s.C) * 3.0f - 4.0f;
  const Tensor<float> gamma = testing::random_normal<float>(Shape{s.C}, rng);
  const Tensor<float> beta = testing::random_normal<float>(Shape{s.C}, rng);
  const Tensor<float> dy = testing::random_normal<float>(shape, rng);
  const auto xd = to_double(x), gd = to_double(gamma), bd = to_double(beta), dyd = to_double(dy);
  const double reduce = std::sqrt(static_cast<double>(s.M()));
  double max_x = 0;
  for (double v : xd) max_x = std::max(max_x, std::abs(v));

  // Statistics.
  std::vector<double> mean_ref(s.C), var_ref(s.C);
  ops::ref::batchnorm_stats(s, xd.data(), mean_ref.data(), var_ref.data());
  Tensor<float> mean(Shape{s.C}), var(Shape{s.C}), invstd(Shape{s.C});
  std::vector<float> workspace(static_cast<size_t>(ops::cpu::batchnorm_workspace_size(s)));
  for (int threads : {1, 2}) {
    const Context ctx({.threads = threads});
    mean.fill(NAN), var.fill(NAN);
    stats.run(ctx, s, x.data(), mean.data(), var.data(), workspace.data());
    EXPECT_TRUE(all_close(mean.data(), mean_ref.data(), s.C, 1e-6, 1e-7 * max_x))
        << "mean, threads " << threads;
    EXPECT_TRUE(all_close(var.data(), var_ref.data(), s.C, 1e-5, 1e-6 * max_x))
        << "var, threads " << threads;
  }
  for (int64_t c = 0; c < s.C; ++c) invstd[c] = 1.0f / std::sqrt(var[c] + 1e-5f);
  const auto md = to_double(mean), id = to_double(invstd);

  for (bool affine : {true, false})
    for (bool batch_stats : {true, false}) {
      SCOPED_TRACE(::testing::Message() << "affine " << affine << " batch_stats " << batch_stats);
      const double* g = affine ? gd.data() : nullptr;
      std::vector<double> y(xd.size()), dx(xd.size(), 1.0), dgamma(s.C, 1.0), dbeta(s.C, 1.0);
      ops::ref::batchnorm_forward(s, xd.data(), md.data(), id.data(), g,
                                  affine ? bd.data() : nullptr, y.data());
      ops::ref::batchnorm_backward(s, batch_stats, xd.data(), dyd.data(), md.data(), id.data(), g,
                                   dx.data(), dgamma.data(), dbeta.data());
      Tensor<float> first_dx;
      for (int threads : {1, 2}) {
        SCOPED_TRACE(::testing::Message() << "threads " << threads);
        const Context ctx({.threads = threads});
        // forward assigns (y starts as NaN); backward accumulates (onto a sentinel of 1)
        Tensor<float> yf(x.shape(), NAN), dxf(x.shape(), 1.0f), dgf(Shape{s.C}, 1.0f),
            dbf(Shape{s.C}, 1.0f);
        forward.run(ctx, s, x.data(), mean.data(), invstd.data(), affine ? gamma.data() : nullptr,
                    affine ? beta.data() : nullptr, yf.data());
        backward.run(ctx, s, batch_stats, x.data(), dy.data(), mean.data(), invstd.data(),
                     affine ? gamma.data() : nullptr, dxf.data(), dgf.data(), dbf.data(),
                     workspace.data(), /*accumulate=*/true);
        EXPECT_TRUE(all_close(yf.data(), y.data(), yf.numel(), 1e-4, 1e-5)) << "y";
        EXPECT_TRUE(all_close(dxf.data(), dx.data(), dxf.numel(), 1e-4, 1e-5)) << "dx";
        EXPECT_TRUE(all_close(dgf.data(), dgamma.data(), s.C, 1e-4, 1e-5 * reduce)) << "dgamma";
        EXPECT_TRUE(all_close(dbf.data(), dbeta.data(), s.C, 1e-4, 1e-5 * reduce)) << "dbeta";
        if (threads == 1) {
          first_dx = dxf;
        } else {  // each thread owns whole channels: the thread count changes nothing
          EXPECT_TRUE(all_close(dxf, first_dx, 0, 0)) << "dx differs between 1 and 2 threads";
        }
      }
      // A null dx (first layer) still accumulates dγ and dβ.
      const Context ctx;
      Tensor<float> dgf(Shape{s.C}), dbf(Shape{s.C});
      std::vector<double> dg(s.C, 0.0), db(s.C, 0.0);
      backward.run(ctx, s, batch_stats, x.data(), dy.data(), mean.data(), invstd.data(), nullptr,
                   nullptr, dgf.data(), dbf.data(), workspace.data(), /*accumulate=*/true);
      ops::ref::batchnorm_backward<double>(s, batch_stats, xd.data(), dyd.data(), md.data(),
                                           id.data(), nullptr, nullptr, dg.data(), db.data());
      EXPECT_TRUE(all_close(dgf.data(), dg.data(), s.C, 1e-4, 1e-5 * reduce)) << "null dx";
      EXPECT_TRUE(all_close(dbf.data(), db.data(), s.C, 1e-4, 1e-5 * reduce)) << "null dx";
    }
}

// Every combination of the three tables' variants that support s.
void compare(const BatchNormShape& s, uint64_t seed) {
  const Context ctx;
  for (const auto& stats : ops::batchnorm_stats_variants())
    for (const auto& forward : ops::batchnorm_forward_variants())
      for (const auto& backward : ops::batchnorm_backward_variants())
        if (stats.supports(ctx, s) && forward.supports(ctx, s) && backward.supports(ctx, s))
          compare_variants(s, seed, stats, forward, backward);
}

TEST(BatchNormKernels, EdgeShapesMatchRef) {
  uint64_t seed = 1;
  for (int64_t N : {1, 2, 5})
    for (int64_t C : {1, 3, 17})
      for (int64_t HW : {1, 7, 15, 16, 17, 33}) {
        if (N * HW < 2) continue;
        compare({.N = N, .C = C, .HW = HW}, seed++);
      }
}

TEST(BatchNormKernels, RandomShapesMatchRef) {
  Rng rng(99);
  for (int i = 0; i < 30; ++i) {
    const BatchNormShape s{.N = 1 + static_cast<int64_t>(rng.below(8)),
                           .C = 1 + static_cast<int64_t>(rng.below(20)),
                           .HW = 2 + static_cast<int64_t>(rng.below(900))};
    compare(s, 1000 + static_cast<uint64_t>(i));
  }
}

}  // namespace
}  // namespace convnet
