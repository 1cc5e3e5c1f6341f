// Fast batch normalisation (float): the reference's formulas, threaded over planes and
// vectorised by the compiler for each ISA (target_clones). A channel's M values are N planes of
// HW contiguous floats; each plane is reduced in 16 float lanes and the plane sums are added in
// double, so the error does not grow with N.
#include "convnet/context.hpp"
#include "ops/cpu/cpu.hpp"
#include "ops/cpu/multiversion.hpp"

namespace convnet::ops::cpu {
namespace {

constexpr int kLanes = 16;

// Σ x[i] for i < n.
CONVNET_MULTIVERSION
double sum(const float* __restrict x, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += x[i + j];
  double total = 0;
  for (int j = 0; j < kLanes; ++j) total += acc[j];
  for (; i < n; ++i) total += x[i];
  return total;
}

// Σ (x[i] − mu)² for i < n.
CONVNET_MULTIVERSION
double sum_sq_dev(const float* __restrict x, float mu, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const float d = x[i + j] - mu;
      acc[j] += d * d;
    }
  double total = 0;
  for (int j = 0; j < kLanes; ++j) total += acc[j];
  for (; i < n; ++i) total += static_cast<double>(x[i] - mu) * (x[i] - mu);
  return total;
}

// Σ dy[i] and Σ dy[i]·(x[i] − mu) for i < n (the caller scales the second by invstd).
CONVNET_MULTIVERSION
void sum_dy_dev(const float* __restrict x, const float* __restrict dy, float mu, int64_t n,
                double& s_dy, double& s_dy_dev) {
  float a[kLanes] = {}, b[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      a[j] += dy[i + j];
      b[j] += dy[i + j] * (x[i + j] - mu);
    }
  double ta = 0, tb = 0;
  for (int j = 0; j < kLanes; ++j) ta += a[j], tb += b[j];
  for (; i < n; ++i) ta += dy[i], tb += static_cast<double>(dy[i]) * (x[i] - mu);
  s_dy += ta;
  s_dy_dev += tb;
}

// y = (x − mu)·a + b.
CONVNET_MULTIVERSION
void affine(const float* __restrict x, float mu, float a, float b, float* __restrict y,
            int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mu) * a + b;
}

// dx += k·dy − k·m_dy − (x − mu)·c.
CONVNET_MULTIVERSION
void dx_update(const float* __restrict x, const float* __restrict dy, float mu, float k,
               float k_m_dy, float c, float* __restrict dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] += k * dy[i] - k_m_dy - (x[i] - mu) * c;
}

// dx = k·dy − k·m_dy − (x − mu)·c.
CONVNET_MULTIVERSION
void dx_assign(const float* __restrict x, const float* __restrict dy, float mu, float k,
               float k_m_dy, float c, float* __restrict dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = k * dy[i] - k_m_dy - (x[i] - mu) * c;
}

}  // namespace

// Every pass walks the tensor in memory order, threads splitting it into runs of whole planes
// (n, c): long sequential reads that the hardware prefetcher keeps ahead of, where a channel
// at a time would read N separate planes of HW floats, each far from the last. A reduction
// keeps one double per plane in the workspace and then adds a channel's N of them in order n =
// 0, 1, ..., so every sum is the same whatever the thread count.
int64_t batchnorm_workspace_size(const BatchNormShape& s) { return 4 * s.N * s.C + 3 * s.C; }

namespace {
// Runs body(p) for every plane p = n·C + c, contiguous runs of planes per thread.
template <class Body>
void for_planes(const Context& ctx, const BatchNormShape& s, Body&& body) {
  parallel_for(ctx, 0, s.N * s.C, [&](int64_t lo, int64_t hi, int) {
    for (int64_t p = lo; p < hi; ++p) body(p);
  });
}
// Σ_n part[n·C + c] in order n = 0 .. N-1.
double channel_total(const BatchNormShape& s, const double* part, int64_t c) {
  double total = 0;
  for (int64_t n = 0; n < s.N; ++n) total += part[n * s.C + c];
  return total;
}
}  // namespace

void batchnorm_stats(const Context& ctx, const BatchNormShape& s, const float* x, float* mean,
                     float* var, float* workspace) {
  const double M = static_cast<double>(s.M());
  double* part = reinterpret_cast<double*>(workspace);
  for_planes(ctx, s, [&](int64_t p) { part[p] = sum(x + p * s.HW, s.HW); });
  for (int64_t c = 0; c < s.C; ++c) mean[c] = static_cast<float>(channel_total(s, part, c) / M);
  for_planes(ctx, s, [&](int64_t p) { part[p] = sum_sq_dev(x + p * s.HW, mean[p % s.C], s.HW); });
  for (int64_t c = 0; c < s.C; ++c) var[c] = static_cast<float>(channel_total(s, part, c) / M);
}

void batchnorm_forward(const Context& ctx, const BatchNormShape& s, const float* x,
                       const float* mean, const float* invstd, const float* gamma,
                       const float* beta, float* y) {
  for_planes(ctx, s, [&](int64_t p) {
    const int64_t c = p % s.C;
    const float a = (gamma ? gamma[c] : 1.0f) * invstd[c], b = beta ? beta[c] : 0.0f;
    affine(x + p * s.HW, mean[c], a, b, y + p * s.HW, s.HW);
  });
}

void batchnorm_backward(const Context& ctx, const BatchNormShape& s, bool batch_stats,
                        const float* x, const float* dy, const float* mean, const float* invstd,
                        const float* gamma, float* dx, float* dgamma, float* dbeta,
                        float* workspace, bool accumulate) {
  const double M = static_cast<double>(s.M());
  double* part_dy = reinterpret_cast<double*>(workspace);  // Σ dy per plane
  double* part_dy_dev = part_dy + s.N * s.C;                // Σ dy·(x − mu) per plane
  for_planes(ctx, s, [&](int64_t p) {
    part_dy[p] = 0;
    part_dy_dev[p] = 0;
    sum_dy_dev(x + p * s.HW, dy + p * s.HW, mean[p % s.C], s.HW, part_dy[p], part_dy_dev[p]);
  });
  // dx = k·(dy − mean(dy) − x̂·mean(dy·x̂)), x̂ = (x − mu)·invstd, k = γ·invstd, per channel
  // as dx = k·dy − k_m_dy − (x − mu)·coef; in eval, dx = k·dy.
  float* k = workspace + 4 * s.N * s.C;
  float* k_m_dy = k + s.C;
  float* coef = k_m_dy + s.C;
  for (int64_t c = 0; c < s.C; ++c) {
    const double s_dy = channel_total(s, part_dy, c);
    const double s_dy_xhat = channel_total(s, part_dy_dev, c) * invstd[c];
    if (dgamma) dgamma[c] += static_cast<float>(s_dy_xhat);
    if (dbeta) dbeta[c] += static_cast<float>(s_dy);
    const double kc = static_cast<double>(gamma ? gamma[c] : 1.0f) * invstd[c];
    k[c] = static_cast<float>(kc);
    k_m_dy[c] = batch_stats ? static_cast<float>(kc * s_dy / M) : 0.0f;
    coef[c] = batch_stats ? static_cast<float>(kc * invstd[c] * s_dy_xhat / M) : 0.0f;
  }
  if (!dx) return;
  for_planes(ctx, s, [&](int64_t p) {
    const int64_t c = p % s.C, off = p * s.HW;
    (accumulate ? dx_update : dx_assign)(x + off, dy + off, mean[c], k[c], k_m_dy[c], coef[c],
                                         dx + off, s.HW);
  });
}

}  // namespace convnet::ops::cpu
