// Reference fully connected layer: y = x · wᵀ + b and its two backward products.
#include "ops/ref/ref.hpp"

namespace convnet::ops::ref {

template <class T>
void linear_forward(const LinearShape& s, const T* x, const T* w, const T* b, T* y) {
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t o = 0; o < s.OUT; ++o) {
      T sum = b ? b[o] : T(0);
      for (int64_t i = 0; i < s.IN; ++i) sum += x[n * s.IN + i] * w[o * s.IN + i];
      y[n * s.OUT + o] = sum;
    }
}

template <class T>
void linear_backward_data(const LinearShape& s, const T* w, const T* dy, T* dx) {
  // dx = dy · w   (N,OUT)·(OUT,IN)
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t o = 0; o < s.OUT; ++o) {
      const T g = dy[n * s.OUT + o];
      for (int64_t i = 0; i < s.IN; ++i) dx[n * s.IN + i] += g * w[o * s.IN + i];
    }
}

template <class T>
void linear_backward_weights(const LinearShape& s, const T* x, const T* dy, T* dw, T* db) {
  // dw = dyᵀ · x   (OUT,N)·(N,IN);  db = column sums of dy
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t o = 0; o < s.OUT; ++o) {
      const T g = dy[n * s.OUT + o];
      if (db) db[o] += g;
      for (int64_t i = 0; i < s.IN; ++i) dw[o * s.IN + i] += g * x[n * s.IN + i];
    }
}

#define CONVNET_INSTANTIATE(T)                                                              \
  template void linear_forward<T>(const LinearShape&, const T*, const T*, const T*, T*);    \
  template void linear_backward_data<T>(const LinearShape&, const T*, const T*, T*);        \
  template void linear_backward_weights<T>(const LinearShape&, const T*, const T*, T*, T*);
CONVNET_INSTANTIATE(float)
CONVNET_INSTANTIATE(double)

}  // namespace convnet::ops::ref
