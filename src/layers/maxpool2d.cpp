// MaxPool2d: y = max over each window. Forward remembers which element won (argmax); backward
// sends each dy to that element only, since ∂max/∂x is 1 for the winner and 0 for the others.
// An Eval forward skips the argmax; a backward after one finds it again from x.
#include "layers/common.hpp"
#include "layers/pool_common.hpp"
#include "ops/kernels.hpp"

namespace convnet {

template <class T>
MaxPool2d<T>::MaxPool2d(const Pool2dOptions& o) : options_(o) {
  const auto g = detail::resolve_pool(o, "maxpool2d");
  KH_ = g.KH, KW_ = g.KW, SH_ = g.SH, SW_ = g.SW, PH_ = g.PH, PW_ = g.PW;
}

template <class T>
std::string MaxPool2d<T>::describe() const {
  return detail::describe_pool("maxpool2d", {KH_, KW_, SH_, SW_, PH_, PW_});
}

template <class T>
std::string MaxPool2d<T>::spec() const {
  return detail::join_spec(kind(), detail::options_spec(options_, /*count_pad=*/false));
}

template <class T>
Shape MaxPool2d<T>::build(const Shape& input) {
  CONVNET_CHECK(input.rank() == 4, describe(), ": expected an NxCxHxW input, got ", input.str());
  const auto s = detail::pool_shape(input, KH_, KW_, SH_, SW_, PH_, PW_);
  s.validate(describe() + " on input " + input.str());
  this->built_input_ = input;
  const Shape out{s.N, s.C, s.OH(), s.OW()};
  argmax_.resize(static_cast<size_t>(out.numel()));
  return out;
}

template <class T>
void MaxPool2d<T>::run_forward(const Tensor<T>& x, T* y, int32_t* argmax) {
  const auto s = detail::pool_shape(x.shape(), KH_, KW_, SH_, SW_, PH_, PW_);
  ops::maxpool2d_forward(this->context(), s, x.data(), y, argmax);
}

template <class T>
void MaxPool2d<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) {
  this->check_input(x);
  const auto s = detail::pool_shape(x.shape(), KH_, KW_, SH_, SW_, PH_, PW_);
  y.resize(Shape{s.N, s.C, s.OH(), s.OW()});
  int32_t* argmax = nullptr;
  if (mode == Mode::Train) {
    if (argmax_.size() < static_cast<size_t>(y.numel())) argmax_.resize(y.numel());
    argmax = argmax_.data();
  }
  argmax_of_last_forward_ = argmax != nullptr;
  run_forward(x, y.data(), argmax);
}

template <class T>
void MaxPool2d<T>::backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy,
                            Tensor<T>* dx) {
  if (!dx) return;  // no parameters: nothing else to compute
  const auto s = detail::pool_shape(x.shape(), KH_, KW_, SH_, SW_, PH_, PW_);
  if (!argmax_of_last_forward_) {
    // The last forward ran in Eval and skipped the argmax: find it from x now, with the kernels
    // a Train forward runs (so ties resolve as they would have). Only this path allocates.
    recomputed_y_.resize(dy.shape());
    if (argmax_.size() < static_cast<size_t>(dy.numel())) argmax_.resize(dy.numel());
    run_forward(x, recomputed_y_.data(), argmax_.data());
    argmax_of_last_forward_ = true;
  }
  ops::maxpool2d_backward(this->context(), s, dy.data(), argmax_.data(), dx->data());
}

template class MaxPool2d<float>;
template class MaxPool2d<double>;

}  // namespace convnet
