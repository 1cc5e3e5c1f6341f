// Fast optimizer updates: the reference's loop (ops/ref/optim_ref.cpp) over ranges of the
// parameter arena split across threads, compiled for each ISA (target_clones) so that the
// compiler vectorises it. Every element is independent and computes the reference's expression
// in the reference's order, so the results are the reference's bit for bit, at any thread count:
// this file is built with -ffp-contract=off (no clone fuses a multiply and an add into an FMA,
// which rounds once where the reference rounds twice) and -fno-math-errno (sqrt vectorises; it
// returns the same values).
#include <cmath>

#include "convnet/context.hpp"
#include "ops/cpu/cpu.hpp"
#include "ops/cpu/multiversion.hpp"

namespace convnet::ops::cpu {
namespace {

// The branches are on step constants, so the compiler unswitches them out of the loops.
CONVNET_MULTIVERSION
void sgd_range(const SgdStep<float>& c, float* __restrict p, const float* __restrict g,
               float* __restrict buf, int64_t lo, int64_t hi) {
  const float lr = c.lr, wd = c.weight_decay, mu = c.momentum, damp = c.damp;
  const bool first = c.first, nesterov = c.nesterov;
  if (!buf) {
    for (int64_t i = lo; i < hi; ++i) p[i] -= lr * (g[i] + wd * p[i]);
    return;
  }
  for (int64_t i = lo; i < hi; ++i) {
    float d = g[i] + wd * p[i];
    buf[i] = first ? d : mu * buf[i] + damp * d;
    d = nesterov ? d + mu * buf[i] : buf[i];
    p[i] -= lr * d;
  }
}

CONVNET_MULTIVERSION
void adam_range(const AdamStep<float>& c, float* __restrict p, const float* __restrict g,
                float* __restrict m, float* __restrict v, int64_t lo, int64_t hi) {
  const float b1 = c.beta1, b2 = c.beta2, step_size = c.step_size, sqrt_bc2 = c.sqrt_bc2;
  const float eps = c.eps, wd = c.weight_decay, decay = c.decay;
  const bool decoupled = c.decoupled;
  for (int64_t i = lo; i < hi; ++i) {
    float d = g[i];
    if (decoupled)
      p[i] *= decay;
    else
      d += wd * p[i];
    m[i] = b1 * m[i] + (1.0f - b1) * d;
    v[i] = b2 * v[i] + (1.0f - b2) * d * d;
    p[i] -= step_size * m[i] / (std::sqrt(v[i]) / sqrt_bc2 + eps);
  }
}

CONVNET_MULTIVERSION
void rmsprop_range(const RmsPropStep<float>& c, float* __restrict p, const float* __restrict g,
                   float* __restrict v, float* __restrict g_avg, float* __restrict buf, int64_t lo,
                   int64_t hi) {
  const float lr = c.lr, alpha = c.alpha, eps = c.eps, wd = c.weight_decay, mu = c.momentum;
  const bool centered = c.centered, use_momentum = c.use_momentum;
  for (int64_t i = lo; i < hi; ++i) {
    const float d = g[i] + wd * p[i];
    v[i] = alpha * v[i] + (1.0f - alpha) * d * d;
    float avg;
    if (centered) {
      g_avg[i] = alpha * g_avg[i] + (1.0f - alpha) * d;
      avg = std::sqrt(v[i] - g_avg[i] * g_avg[i]) + eps;
    } else {
      avg = std::sqrt(v[i]) + eps;
    }
    if (use_momentum) {
      buf[i] = mu * buf[i] + d / avg;
      p[i] -= lr * buf[i];
    } else {
      p[i] -= lr * d / avg;
    }
  }
}

}  // namespace

void sgd_update(const Context& ctx, int64_t count, const SgdStep<float>& c, float* p,
                const float* g, float* buf) {
  split_elementwise(ctx, count, [&](int64_t lo, int64_t hi) { sgd_range(c, p, g, buf, lo, hi); });
}

void adam_update(const Context& ctx, int64_t count, const AdamStep<float>& c, float* p,
                 const float* g, float* m, float* v) {
  split_elementwise(ctx, count, [&](int64_t lo, int64_t hi) { adam_range(c, p, g, m, v, lo, hi); });
}

void rmsprop_update(const Context& ctx, int64_t count, const RmsPropStep<float>& c, float* p,
                    const float* g, float* v, float* g_avg, float* buf) {
  split_elementwise(ctx, count,
                    [&](int64_t lo, int64_t hi) { rmsprop_range(c, p, g, v, g_avg, buf, lo, hi); });
}

}  // namespace convnet::ops::cpu
