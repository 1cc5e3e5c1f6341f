// Reference elementwise kernels: fill, scale, copy, accumulate and multiply (the parameter
// arena's zeroing and clipping, Flatten, Dropout, a transposed convolution's gradient), the
// squared norm of a gradient, a bias over channels, and Dropout's mask.
#include <algorithm>

#include "ops/ref/ref.hpp"

namespace convnet::ops::ref {

template <class T>
void fill(int64_t count, T value, T* y) {
  std::fill_n(y, count, value);
}
template <class T>
void scale(int64_t count, T s, T* x) {
  for (int64_t i = 0; i < count; ++i) x[i] *= s;
}
template <class T>
void copy(int64_t count, const T* x, T* y) {
  std::copy_n(x, count, y);
}
template <class T>
void accumulate(int64_t count, const T* x, T* y) {
  for (int64_t i = 0; i < count; ++i) y[i] += x[i];
}
template <class T>
void multiply(int64_t count, const T* x, const T* m, T* y) {
  for (int64_t i = 0; i < count; ++i) y[i] = x[i] * m[i];
}
template <class T>
void multiply_accumulate(int64_t count, const T* x, const T* m, T* y) {
  for (int64_t i = 0; i < count; ++i) y[i] += x[i] * m[i];
}
template <class T>
double sum_squares(int64_t count, const T* x) {
  double sum = 0;
  for (int64_t i = 0; i < count; ++i) sum += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  return sum;
}

template <class T>
void bias_forward(const BiasShape& s, const T* b, T* y) {
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t c = 0; c < s.C; ++c) {
      T* out = y + (n * s.C + c) * s.HW;
      for (int64_t i = 0; i < s.HW; ++i) out[i] += b[c];
    }
}
template <class T>
void bias_backward(const BiasShape& s, const T* dy, T* db) {
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t c = 0; c < s.C; ++c) {
      const T* g = dy + (n * s.C + c) * s.HW;
      T sum = 0;
      for (int64_t i = 0; i < s.HW; ++i) sum += g[i];
      db[c] += sum;
    }
}

template <class T>
void dropout_mask(int64_t count, double p, T scale, Rng& rng, T* m) {
  for (int64_t i = 0; i < count; ++i) m[i] = rng.uniform() >= p ? scale : T(0);
}

#define CONVNET_INSTANTIATE(T)                                           \
  template void fill<T>(int64_t, T, T*);                                 \
  template void scale<T>(int64_t, T, T*);                                \
  template void copy<T>(int64_t, const T*, T*);                          \
  template void accumulate<T>(int64_t, const T*, T*);                    \
  template void multiply<T>(int64_t, const T*, const T*, T*);            \
  template void multiply_accumulate<T>(int64_t, const T*, const T*, T*); \
  template double sum_squares<T>(int64_t, const T*);                     \
  template void bias_forward<T>(const BiasShape&, const T*, T*);         \
  template void bias_backward<T>(const BiasShape&, const T*, T*);        \
  template void dropout_mask<T>(int64_t, double, T, Rng&, T*);
CONVNET_INSTANTIATE(float)
CONVNET_INSTANTIATE(double)

}  // namespace convnet::ops::ref
