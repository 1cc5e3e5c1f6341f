// Linear (fully connected): y = x·wᵀ + b. Backward: dx = dy·w, dw = dyᵀ·x, db = Σ_n dy.
#include "layers/common.hpp"
#include "ops/kernels.hpp"

namespace convnet {

template <class T>
Linear<T>::Linear(const LinearOptions& o)
    : options_(o),
      in_features_(o.in_features), out_features_(o.out_features), has_bias_(o.bias),
      init_(o.init) {
  CONVNET_CHECK(out_features_ >= 1, "linear: out_features must be at least 1, got ",
                out_features_);
  CONVNET_CHECK(in_features_ >= 0, "linear: in_features must be >= 0 (0 = infer), got ",
                in_features_);
}

template <class T>
std::string Linear<T>::describe() const {
  return detail::concat("linear ", in_features_ ? std::to_string(in_features_) : "?", "->",
                        out_features_, has_bias_ ? "" : " no-bias");
}

template <class T>
std::string Linear<T>::spec() const {
  return detail::join_spec(kind(), detail::options_spec(options_));
}

template <class T>
Shape Linear<T>::build(const Shape& input) {
  CONVNET_CHECK(input.rank() == 2, describe(), ": expected an NxF input (add a flatten layer "
                "before it), got ", input.str());
  if (in_features_ == 0) in_features_ = input[1];
  CONVNET_CHECK(input[1] == in_features_, describe(), ": expected ", in_features_,
                " input features, got input ", input.str());
  // As for convolutions (ops/shapes.cpp): larger is a mistake that would overflow indexing.
  CONVNET_CHECK(out_features_ <= (int64_t{1} << 24) && in_features_ <= (int64_t{1} << 36) &&
                    static_cast<double>(out_features_) * static_cast<double>(in_features_) <=
                        68719476736.0,
                describe(), ": a ", out_features_, "x", in_features_,
                " weight is more than this library accepts (2^24 outputs, 2^36 elements)");
  const Shape wshape{out_features_, in_features_};
  if (weight_.shape() != wshape) {
    weight_ = Tensor<T>(wshape);
    grad_weight_ = Tensor<T>(wshape);
    if (has_bias_) {
      bias_ = Tensor<T>(Shape{out_features_});
      grad_bias_ = Tensor<T>(Shape{out_features_});
    }
  }
  this->built_input_ = input;
  return Shape{input[0], out_features_};
}

template <class T>
void Linear<T>::init(Rng& rng) {
  detail::initialise(init_, rng, in_features_, out_features_, weight_, bias_);
}

template <class T>
void Linear<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode) {
  this->check_input(x);
  const ops::LinearShape s{.N = x.dim(0), .IN = in_features_, .OUT = out_features_};
  y.resize(Shape{s.N, s.OUT});
  const T* b = has_bias_ ? bias_.data() : nullptr;
  ops::linear_forward(this->context(), s, x.data(), weight_.data(), b, y.data());
}

template <class T>
void Linear<T>::backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy,
                         Tensor<T>* dx) {
  const ops::LinearShape s{.N = x.dim(0), .IN = in_features_, .OUT = out_features_};
  T* db = has_bias_ ? grad_bias_.data() : nullptr;
  ops::linear_backward_weights(this->context(), s, x.data(), dy.data(), grad_weight_.data(), db);
  if (dx) ops::linear_backward_data(this->context(), s, weight_.data(), dy.data(), dx->data());
}

template <class T>
std::vector<Param<T>> Linear<T>::params() {
  std::vector<Param<T>> p{{"weight", &weight_, &grad_weight_}};
  if (has_bias_) p.push_back({"bias", &bias_, &grad_bias_});
  return p;
}

template class Linear<float>;
template class Linear<double>;

}  // namespace convnet
