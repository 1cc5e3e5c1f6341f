// Fast batch normalisation (float): the reference's formulas, threaded over channels and
// vectorised by the compiler for each ISA (target_clones). A channel's M values are N planes of
// HW contiguous floats; each plane is reduced in 16 float lanes and the plane sums are added in
// double, so the error does not grow with N.
#include "convnet/runtime.hpp"
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

void batchnorm_stats(const BatchNormShape& s, const float* x, float* mean, float* var) {
  const double M = static_cast<double>(s.M());
  parallel_for(0, s.C, [&](int64_t lo, int64_t hi, int) {
    for (int64_t c = lo; c < hi; ++c) {
      double total = 0;
      for (int64_t n = 0; n < s.N; ++n) total += sum(x + (n * s.C + c) * s.HW, s.HW);
      const float mu = static_cast<float>(total / M);
      double sq = 0;
      for (int64_t n = 0; n < s.N; ++n) sq += sum_sq_dev(x + (n * s.C + c) * s.HW, mu, s.HW);
      mean[c] = mu;
      var[c] = static_cast<float>(sq / M);
    }
  });
}

void batchnorm_forward(const BatchNormShape& s, const float* x, const float* mean,
                       const float* invstd, const float* gamma, const float* beta, float* y) {
  parallel_for(0, s.C, [&](int64_t lo, int64_t hi, int) {
    for (int64_t c = lo; c < hi; ++c) {
      const float a = (gamma ? gamma[c] : 1.0f) * invstd[c], b = beta ? beta[c] : 0.0f;
      for (int64_t n = 0; n < s.N; ++n) {
        const int64_t off = (n * s.C + c) * s.HW;
        affine(x + off, mean[c], a, b, y + off, s.HW);
      }
    }
  });
}

void batchnorm_backward(const BatchNormShape& s, bool batch_stats, const float* x,
                        const float* dy, const float* mean, const float* invstd,
                        const float* gamma, float* dx, float* dgamma, float* dbeta,
                        bool accumulate) {
  const double M = static_cast<double>(s.M());
  parallel_for(0, s.C, [&](int64_t lo, int64_t hi, int) {
    for (int64_t c = lo; c < hi; ++c) {
      double s_dy = 0, s_dy_dev = 0;
      for (int64_t n = 0; n < s.N; ++n) {
        const int64_t off = (n * s.C + c) * s.HW;
        sum_dy_dev(x + off, dy + off, mean[c], s.HW, s_dy, s_dy_dev);
      }
      const double s_dy_xhat = s_dy_dev * invstd[c];
      if (dgamma) dgamma[c] += static_cast<float>(s_dy_xhat);
      if (dbeta) dbeta[c] += static_cast<float>(s_dy);
      if (!dx) continue;
      // dx = k·(dy − mean(dy) − x̂·mean(dy·x̂)), x̂ = (x − mu)·invstd; eval: dx = k·dy.
      const double k = static_cast<double>(gamma ? gamma[c] : 1.0f) * invstd[c];
      const float k_m_dy = batch_stats ? static_cast<float>(k * s_dy / M) : 0.0f;
      const float coef = batch_stats ? static_cast<float>(k * invstd[c] * s_dy_xhat / M) : 0.0f;
      for (int64_t n = 0; n < s.N; ++n) {
        const int64_t off = (n * s.C + c) * s.HW;
        (accumulate ? dx_update : dx_assign)(x + off, dy + off, mean[c], static_cast<float>(k),
                                             k_m_dy, coef, dx + off, s.HW);
      }
    }
  });
}

}  // namespace convnet::ops::cpu
