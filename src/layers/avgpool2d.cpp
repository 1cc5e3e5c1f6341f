// AvgPool2d: y = (1/divisor) Σ window. Every element of a window contributed with weight
// 1/divisor, so backward shares dy equally: dx += dy / divisor. With count_pad (the default)
// padding counts as zeros and the divisor is always KH·KW; see Pool2dOptions.
#include "layers/common.hpp"
#include "layers/pool_common.hpp"
#include "ops/ref/ref.hpp"

namespace convnet {

template <class T>
AvgPool2d<T>::AvgPool2d(const Pool2dOptions& o) : options_(o), count_pad_(o.count_pad) {
  const auto g = detail::resolve_pool(o, "avgpool2d");
  KH_ = g.KH, KW_ = g.KW, SH_ = g.SH, SW_ = g.SW, PH_ = g.PH, PW_ = g.PW;
}

template <class T>
std::string AvgPool2d<T>::describe() const {
  std::string d = detail::describe_pool("avgpool2d", {KH_, KW_, SH_, SW_, PH_, PW_});
  if (!count_pad_ && (PH_ || PW_)) d += " exclude-pad";
  return d;
}

template <class T>
std::string AvgPool2d<T>::spec() const {
  return detail::join_spec(kind(), detail::options_spec(options_, /*count_pad=*/true));
}

template <class T>
Shape AvgPool2d<T>::build(const Shape& input) {
  CONVNET_CHECK(input.rank() == 4, describe(), ": expected an NxCxHxW input, got ", input.str());
  const auto s = detail::pool_shape(input, KH_, KW_, SH_, SW_, PH_, PW_);
  s.validate(describe() + " on input " + input.str());
  this->built_input_ = input;
  return Shape{s.N, s.C, s.OH(), s.OW()};
}

template <class T>
void AvgPool2d<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode) {
  this->check_input(x);
  const auto s = detail::pool_shape(x.shape(), KH_, KW_, SH_, SW_, PH_, PW_);
  y.resize(Shape{s.N, s.C, s.OH(), s.OW()});
  ops::ref::avgpool2d_forward(s, count_pad_, x.data(), y.data());
}

template <class T>
void AvgPool2d<T>::backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy,
                            Tensor<T>* dx) {
  if (!dx) return;
  const auto s = detail::pool_shape(x.shape(), KH_, KW_, SH_, SW_, PH_, PW_);
  ops::ref::avgpool2d_backward(s, count_pad_, dy.data(), dx->data());
}

template class AvgPool2d<float>;
template class AvgPool2d<double>;

}  // namespace convnet
