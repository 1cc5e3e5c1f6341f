// Activations: elementwise y = f(x) and dx += f'(·) ⊙ dy, with the formulas in ops/ref/ref.hpp.
// ReLU's, GELU's, SiLU's and ELU's derivatives read x; sigmoid's and tanh's read y (y(1-y),
// 1-y²), which forward kept.
#include <algorithm>

#include "layers/common.hpp"
#include "ops/kernels.hpp"

namespace convnet {

template <class T>
void ReLU<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode) {
  this->check_input(x);
  y.resize(x.shape());
  ops::relu_forward(this->context(), x.numel(), x.data(), y.data());
}
template <class T>
void ReLU<T>::backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy, Tensor<T>* dx) {
  if (!dx) return;
  ops::relu_backward(this->context(), x.numel(), x.data(), dy.data(), dx->data(),
                     /*accumulate=*/true);
}

template <class T>
void ReLU<T>::backward_assign(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy,
                              Tensor<T>& dx) {
  ops::relu_backward(this->context(), x.numel(), x.data(), dy.data(), dx.data(),
                     /*accumulate=*/false);
}

template <class T>
std::string LeakyReLU<T>::describe() const {
  return detail::concat("leaky_relu ", slope_);
}
template <class T>
std::string LeakyReLU<T>::spec() const {
  return slope_ == T(0.01) ? kind() : kind() + " slope=" + detail::format_number(slope_);
}
template <class T>
void LeakyReLU<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode) {
  this->check_input(x);
  y.resize(x.shape());
  ops::elementwise<T>(this->context(), x.numel(), [&](int64_t at, int64_t n) {
    ops::ref::leaky_relu_forward(n, slope_, x.data() + at, y.data() + at);
  });
}
template <class T>
void LeakyReLU<T>::backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy,
                            Tensor<T>* dx) {
  if (dx)
    ops::elementwise<T>(this->context(), x.numel(), [&](int64_t at, int64_t n) {
      ops::ref::leaky_relu_backward(n, slope_, x.data() + at, dy.data() + at, dx->data() + at);
    });
}

template <class T>
void Sigmoid<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode) {
  this->check_input(x);
  y.resize(x.shape());
  ops::elementwise<T>(this->context(), x.numel(), [&](int64_t at, int64_t n) {
    ops::ref::sigmoid_forward(n, x.data() + at, y.data() + at);
  });
}
template <class T>
void Sigmoid<T>::backward(const Tensor<T>&, const Tensor<T>& y, const Tensor<T>& dy,
                          Tensor<T>* dx) {
  if (dx)
    ops::elementwise<T>(this->context(), y.numel(), [&](int64_t at, int64_t n) {
      ops::ref::sigmoid_backward(n, y.data() + at, dy.data() + at, dx->data() + at);
    });
}

template <class T>
void Tanh<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode) {
  this->check_input(x);
  y.resize(x.shape());
  ops::elementwise<T>(this->context(), x.numel(), [&](int64_t at, int64_t n) {
    ops::ref::tanh_forward(n, x.data() + at, y.data() + at);
  });
}
template <class T>
void Tanh<T>::backward(const Tensor<T>&, const Tensor<T>& y, const Tensor<T>& dy, Tensor<T>* dx) {
  if (dx)
    ops::elementwise<T>(this->context(), y.numel(), [&](int64_t at, int64_t n) {
      ops::ref::tanh_backward(n, y.data() + at, dy.data() + at, dx->data() + at);
    });
}

template <class T>
void Softmax<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode) {
  this->check_input(x);
  y.resize(x.shape());
  ops::ref::softmax_forward(x.dim(0), x.numel() / x.dim(0), x.data(), y.data());
}
template <class T>
void Softmax<T>::backward(const Tensor<T>&, const Tensor<T>& y, const Tensor<T>& dy,
                          Tensor<T>* dx) {
  if (dx)
    ops::ref::softmax_backward(y.dim(0), y.numel() / y.dim(0), y.data(), dy.data(), dx->data());
}

template <class T>
void GELU<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode) {
  this->check_input(x);
  y.resize(x.shape());
  ops::elementwise<T>(this->context(), x.numel(), [&](int64_t at, int64_t n) {
    ops::ref::gelu_forward(n, x.data() + at, y.data() + at);
  });
}
template <class T>
void GELU<T>::backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy, Tensor<T>* dx) {
  if (dx)
    ops::elementwise<T>(this->context(), x.numel(), [&](int64_t at, int64_t n) {
      ops::ref::gelu_backward(n, x.data() + at, dy.data() + at, dx->data() + at);
    });
}

template <class T>
void SiLU<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode) {
  this->check_input(x);
  y.resize(x.shape());
  ops::elementwise<T>(this->context(), x.numel(), [&](int64_t at, int64_t n) {
    ops::ref::silu_forward(n, x.data() + at, y.data() + at);
  });
}
template <class T>
void SiLU<T>::backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy, Tensor<T>* dx) {
  if (dx)
    ops::elementwise<T>(this->context(), x.numel(), [&](int64_t at, int64_t n) {
      ops::ref::silu_backward(n, x.data() + at, dy.data() + at, dx->data() + at);
    });
}

template <class T>
std::string ELU<T>::describe() const {
  return detail::concat("elu ", alpha_);
}
template <class T>
std::string ELU<T>::spec() const {
  return alpha_ == T(1) ? kind() : kind() + " alpha=" + detail::format_number(alpha_);
}
template <class T>
void ELU<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode) {
  this->check_input(x);
  y.resize(x.shape());
  ops::elementwise<T>(this->context(), x.numel(), [&](int64_t at, int64_t n) {
    ops::ref::elu_forward(n, alpha_, x.data() + at, y.data() + at);
  });
}
template <class T>
void ELU<T>::backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy, Tensor<T>* dx) {
  if (dx)
    ops::elementwise<T>(this->context(), x.numel(), [&](int64_t at, int64_t n) {
      ops::ref::elu_backward(n, alpha_, x.data() + at, dy.data() + at, dx->data() + at);
    });
}

#define CONVNET_INSTANTIATE(L) \
  template class L<float>;     \
  template class L<double>;
CONVNET_INSTANTIATE(ReLU)
CONVNET_INSTANTIATE(LeakyReLU)
CONVNET_INSTANTIATE(Sigmoid)
CONVNET_INSTANTIATE(Tanh)
CONVNET_INSTANTIATE(Softmax)
CONVNET_INSTANTIATE(GELU)
CONVNET_INSTANTIATE(SiLU)
CONVNET_INSTANTIATE(ELU)

}  // namespace convnet
