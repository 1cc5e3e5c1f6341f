// GlobalAvgPool2d: (N, C, H, W) -> (N, C, 1, 1), y = mean of each plane. Every element of a
// plane enters the mean with weight 1/(H·W), so backward shares dy equally: dx += dy / (H·W).
#include "layers/common.hpp"
#include "ops/ref/ref.hpp"

namespace convnet {

template <class T>
Shape GlobalAvgPool2d<T>::build(const Shape& input) {
  CONVNET_CHECK(input.rank() == 4 && input.numel() > 0, kind(),
                ": expected a non-empty NxCxHxW input, got ", input.str());
  this->built_input_ = input;
  return Shape{input[0], input[1], 1, 1};
}

template <class T>
void GlobalAvgPool2d<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode) {
  this->check_input(x);
  y.resize(Shape{x.dim(0), x.dim(1), 1, 1});
  ops::ref::global_avgpool_forward(x.dim(0) * x.dim(1), x.dim(2) * x.dim(3), x.data(), y.data());
}

template <class T>
void GlobalAvgPool2d<T>::backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy,
                                  Tensor<T>* dx) {
  if (dx)
    ops::ref::global_avgpool_backward(x.dim(0) * x.dim(1), x.dim(2) * x.dim(3), dy.data(),
                                      dx->data());
}

template class GlobalAvgPool2d<float>;
template class GlobalAvgPool2d<double>;

}  // namespace convnet
