// Reference activations and their derivatives. Sigmoid, tanh and softmax differentiate through
// their output y (cheaper and exact); ReLU, leaky ReLU, GELU, SiLU and ELU through their input x.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "ops/ref/ref.hpp"

namespace convnet::ops::ref {

template <class T>
void relu_forward(int64_t count, const T* x, T* y) {
  for (int64_t i = 0; i < count; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
}
template <class T>
void relu_backward(int64_t count, const T* x, const T* dy, T* dx) {
  for (int64_t i = 0; i < count; ++i) dx[i] += x[i] > T(0) ? dy[i] : T(0);
}

template <class T>
void leaky_relu_forward(int64_t count, T slope, const T* x, T* y) {
  for (int64_t i = 0; i < count; ++i) y[i] = x[i] > T(0) ? x[i] : slope * x[i];
}
template <class T>
void leaky_relu_backward(int64_t count, T slope, const T* x, const T* dy, T* dx) {
  for (int64_t i = 0; i < count; ++i) dx[i] += x[i] > T(0) ? dy[i] : slope * dy[i];
}

template <class T>
void sigmoid_forward(int64_t count, const T* x, T* y) {
  // Two branches so e^(-x) never overflows: for x < 0 use e^x / (1 + e^x).
  for (int64_t i = 0; i < count; ++i) {
    if (x[i] >= T(0)) {
      y[i] = T(1) / (T(1) + std::exp(-x[i]));
    } else {
      const T e = std::exp(x[i]);
      y[i] = e / (T(1) + e);
    }
  }
}
template <class T>
void sigmoid_backward(int64_t count, const T* y, const T* dy, T* dx) {
  for (int64_t i = 0; i < count; ++i) dx[i] += dy[i] * y[i] * (T(1) - y[i]);
}

template <class T>
void tanh_forward(int64_t count, const T* x, T* y) {
  for (int64_t i = 0; i < count; ++i) y[i] = std::tanh(x[i]);
}
template <class T>
void tanh_backward(int64_t count, const T* y, const T* dy, T* dx) {
  for (int64_t i = 0; i < count; ++i) dx[i] += dy[i] * (T(1) - y[i] * y[i]);
}

template <class T>
void softmax_forward(int64_t rows, int64_t cols, const T* x, T* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    const T max = *std::max_element(xr, xr + cols);  // shift: e^(x-max) <= 1 cannot overflow
    T sum = 0;
    for (int64_t c = 0; c < cols; ++c) sum += yr[c] = std::exp(xr[c] - max);
    for (int64_t c = 0; c < cols; ++c) yr[c] /= sum;
  }
}
template <class T>
void softmax_backward(int64_t rows, int64_t cols, const T* y, const T* dy, T* dx) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* yr = y + r * cols;
    const T* dyr = dy + r * cols;
    T dot = 0;
    for (int64_t c = 0; c < cols; ++c) dot += dyr[c] * yr[c];
    for (int64_t c = 0; c < cols; ++c) dx[r * cols + c] += yr[c] * (dyr[c] - dot);
  }
}

template <class T>
void gelu_forward(int64_t count, const T* x, T* y) {
  const T inv_sqrt2 = T(1) / std::sqrt(T(2));
  for (int64_t i = 0; i < count; ++i) y[i] = x[i] * T(0.5) * (T(1) + std::erf(x[i] * inv_sqrt2));
}
template <class T>
void gelu_backward(int64_t count, const T* x, const T* dy, T* dx) {
  const T inv_sqrt2 = T(1) / std::sqrt(T(2));
  const T inv_sqrt_2pi = T(1) / std::sqrt(T(2) * std::numbers::pi_v<T>);
  for (int64_t i = 0; i < count; ++i) {
    const T cdf = T(0.5) * (T(1) + std::erf(x[i] * inv_sqrt2));   // Φ(x)
    const T pdf = std::exp(T(-0.5) * x[i] * x[i]) * inv_sqrt_2pi;  // φ(x)
    dx[i] += dy[i] * (cdf + x[i] * pdf);
  }
}

namespace {
// σ(x) without overflow: e^(−x) only for x >= 0, e^x / (1 + e^x) below.
template <class T>
T sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}
}  // namespace

template <class T>
void silu_forward(int64_t count, const T* x, T* y) {
  for (int64_t i = 0; i < count; ++i) y[i] = x[i] * sigmoid(x[i]);
}
template <class T>
void silu_backward(int64_t count, const T* x, const T* dy, T* dx) {
  for (int64_t i = 0; i < count; ++i) {
    const T s = sigmoid(x[i]);
    dx[i] += dy[i] * s * (T(1) + x[i] * (T(1) - s));
  }
}

template <class T>
void elu_forward(int64_t count, T alpha, const T* x, T* y) {
  for (int64_t i = 0; i < count; ++i) y[i] = x[i] > T(0) ? x[i] : alpha * std::expm1(x[i]);
}
template <class T>
void elu_backward(int64_t count, T alpha, const T* x, const T* dy, T* dx) {
  for (int64_t i = 0; i < count; ++i) dx[i] += x[i] > T(0) ? dy[i] : dy[i] * alpha * std::exp(x[i]);
}

#define CONVNET_INSTANTIATE(T)                                                          \
  template void relu_forward<T>(int64_t, const T*, T*);                                 \
  template void relu_backward<T>(int64_t, const T*, const T*, T*);                      \
  template void leaky_relu_forward<T>(int64_t, T, const T*, T*);                        \
  template void leaky_relu_backward<T>(int64_t, T, const T*, const T*, T*);             \
  template void sigmoid_forward<T>(int64_t, const T*, T*);                              \
  template void sigmoid_backward<T>(int64_t, const T*, const T*, T*);                   \
  template void tanh_forward<T>(int64_t, const T*, T*);                                 \
  template void tanh_backward<T>(int64_t, const T*, const T*, T*);                      \
  template void softmax_forward<T>(int64_t, int64_t, const T*, T*);                     \
  template void softmax_backward<T>(int64_t, int64_t, const T*, const T*, T*);         \
  template void gelu_forward<T>(int64_t, const T*, T*);                                 \
  template void gelu_backward<T>(int64_t, const T*, const T*, T*);                      \
  template void silu_forward<T>(int64_t, const T*, T*);                                 \
  template void silu_backward<T>(int64_t, const T*, const T*, T*);                      \
  template void elu_forward<T>(int64_t, T, const T*, T*);                               \
  template void elu_backward<T>(int64_t, T, const T*, const T*, T*);
CONVNET_INSTANTIATE(float)
CONVNET_INSTANTIATE(double)

}  // namespace convnet::ops::ref
