// Flatten: (N, C, H, W) -> (N, C·H·W). NCHW is contiguous, so this is a copy with a new shape,
// and backward is the same copy in reverse: dx += dy.
#include "layers/common.hpp"
#include "ops/kernels.hpp"

namespace convnet {

template <class T>
Shape Flatten<T>::build(const Shape& input) {
  CONVNET_CHECK(input.rank() >= 2, "flatten: expected an input with a batch dimension and "
                "features, got ", input.str());
  this->built_input_ = input;
  return Shape{input[0], input.numel() / input[0]};
}

template <class T>
void Flatten<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode) {
  this->check_input(x);
  y.resize(Shape{x.dim(0), x.numel() / x.dim(0)});
  ops::copy(this->context(), x.numel(), x.data(), y.data());
}

template <class T>
void Flatten<T>::backward(const Tensor<T>&, const Tensor<T>&, const Tensor<T>& dy,
                          Tensor<T>* dx) {
  if (dx) ops::accumulate(this->context(), dy.numel(), dy.data(), dx->data());
}

template class Flatten<float>;
template class Flatten<double>;

}  // namespace convnet
