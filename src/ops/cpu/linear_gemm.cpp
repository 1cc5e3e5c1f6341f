// Fully connected layer as GEMMs:
//   forward:          y (N × OUT)  = x (N × IN) · wᵀ (IN × OUT) + b
//   backward data:    dx (N × IN) += dy (N × OUT) · w (OUT × IN)
//   backward weights: dw (OUT × IN) += dyᵀ (OUT × N) · x (N × IN),  db += column sums of dy
// Threads split the output columns of each product, so no two threads write the same element.
#include <algorithm>

#include "convnet/context.hpp"
#include "ops/cpu/cpu.hpp"

namespace convnet::ops::cpu {

template <Precision P>
void linear_forward(const Context& ctx, const LinearShape& s, const float* x, const float* w,
                    const float* b, float* y) {
  parallel_for(ctx, 0, s.OUT, [&](int64_t lo, int64_t hi, int) {
    if (b)
      for (int64_t n = 0; n < s.N; ++n) std::copy(b + lo, b + hi, y + n * s.OUT + lo);
    sgemm(false, true, s.N, hi - lo, s.IN, x, s.IN, w + lo * s.IN, s.IN, b != nullptr, y + lo,
          s.OUT, P);
  });
}

template <Precision P>
void linear_backward_data(const Context& ctx, const LinearShape& s, const float* w, const float* dy,
                          float* dx) {
  parallel_for(ctx, 0, s.IN, [&](int64_t lo, int64_t hi, int) {
    sgemm(false, false, s.N, hi - lo, s.OUT, dy, s.OUT, w + lo, s.IN, true, dx + lo, s.IN, P);
  });
}

template <Precision P>
void linear_backward_weights(const Context& ctx, const LinearShape& s, const float* x,
                             const float* dy, float* dw, float* db) {
  parallel_for(ctx, 0, s.OUT, [&](int64_t lo, int64_t hi, int) {
    sgemm(true, false, hi - lo, s.IN, s.N, dy + lo, s.OUT, x, s.IN, true, dw + lo * s.IN, s.IN, P);
    if (db)
      for (int64_t o = lo; o < hi; ++o) {
        float sum = 0.0f;
        for (int64_t n = 0; n < s.N; ++n) sum += dy[n * s.OUT + o];
        db[o] += sum;
      }
  });
}

#define CONVNET_LINEAR_GEMM(P)                                                                 \
  template void linear_forward<P>(const Context&, const LinearShape&, const float*, const float*, \
                                  const float*, float*);                                        \
  template void linear_backward_data<P>(const Context&, const LinearShape&, const float*,         \
                                        const float*, float*);                                  \
  template void linear_backward_weights<P>(const Context&, const LinearShape&, const float*,      \
                                           const float*, float*, float*);
CONVNET_LINEAR_GEMM(Precision::Fp32)
CONVNET_LINEAR_GEMM(Precision::Bf16)
#undef CONVNET_LINEAR_GEMM

}  // namespace convnet::ops::cpu
