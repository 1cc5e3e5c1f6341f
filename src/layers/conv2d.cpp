// Conv2d: y = W ⊛ x + b (cross-correlation), and its backward pass, which needs two products:
//   ∂L/∂x = the transposed convolution of dy with W  (backward data)
//   ∂L/∂W = the correlation of x with dy, ∂L/∂b = Σ dy over batch and positions (backward weights)
// The loops live in ops/ref (the specification) and ops/cpu (the variants of the tables in
// ops/kernels.hpp: im2col + GEMM, direct, Winograd, grouped).
#include "layers/common.hpp"
#include "ops/kernels.hpp"

namespace convnet {
namespace {
template <class T>
ops::Conv2dShape kernel_shape(const Shape& x, int64_t OC, int64_t KH, int64_t KW, int64_t SH,
                              int64_t SW, int64_t PH, int64_t PW, int64_t DH, int64_t DW,
                              int64_t G) {
  return {.N = x[0],
          .IC = x[1],
          .IH = x[2],
          .IW = x[3],
          .OC = OC,
          .KH = KH,
          .KW = KW,
          .SH = SH,
          .SW = SW,
          .PH = PH,
          .PW = PW,
          .DH = DH,
          .DW = DW,
          .G = G};
}
}  // namespace

template <class T>
Conv2d<T>::Conv2d(const Conv2dOptions& o)
    : options_(o),
      in_channels_(o.in_channels),
      out_channels_(o.out_channels),
      groups_(o.groups),
      has_bias_(o.bias),
      init_(o.init) {
  CONVNET_CHECK(out_channels_ >= 1, "conv2d: out_channels must be at least 1, got ", out_channels_);
  CONVNET_CHECK(in_channels_ >= 0, "conv2d: in_channels must be >= 0 (0 = infer), got ",
                in_channels_);
  const auto kernel = detail::checked_axes("conv2d", "kernel", o.kernel, o.kernel_h, o.kernel_w, 1);
  const auto stride = detail::checked_axes("conv2d", "stride", o.stride, o.stride_h, o.stride_w, 1);
  const auto pad = detail::checked_axes("conv2d", "pad", o.pad, o.pad_h, o.pad_w, 0);
  const auto dilation =
      detail::checked_axes("conv2d", "dilation", o.dilation, o.dilation_h, o.dilation_w, 1);
  KH_ = kernel.h, KW_ = kernel.w, SH_ = stride.h, SW_ = stride.w;
  PH_ = pad.h, PW_ = pad.w, DH_ = dilation.h, DW_ = dilation.w;
  CONVNET_CHECK(groups_ >= 1 && out_channels_ % groups_ == 0, "conv2d: groups (", groups_,
                ") must be at least 1 and divide out_channels (", out_channels_, ")");
}

template <class T>
std::string Conv2d<T>::describe() const {
  std::string d = detail::concat("conv2d ", KH_, "x", KW_, " ->", out_channels_);
  if (SH_ != 1 || SW_ != 1) d += detail::concat(" stride ", SH_, "x", SW_);
  if (PH_ != 0 || PW_ != 0) d += detail::concat(" pad ", PH_, "x", PW_);
  if (DH_ != 1 || DW_ != 1) d += detail::concat(" dilation ", DH_, "x", DW_);
  if (groups_ != 1) d += detail::concat(" groups ", groups_);
  if (!has_bias_) d += " no-bias";
  return d;
}

template <class T>
std::string Conv2d<T>::spec() const {
  return detail::join_spec(kind(), detail::options_spec(options_));
}

template <class T>
Shape Conv2d<T>::build(const Shape& input) {
  CONVNET_CHECK(input.rank() == 4, describe(), ": expected an NxCxHxW input, got ", input.str());
  if (in_channels_ == 0) in_channels_ = input[1];
  CONVNET_CHECK(input[1] == in_channels_, describe(), ": expected ", in_channels_,
                " input channels, got input ", input.str());
  const ops::Conv2dShape s =
      kernel_shape<T>(input, out_channels_, KH_, KW_, SH_, SW_, PH_, PW_, DH_, DW_, groups_);
  s.validate(describe() + " on input " + input.str());
  const Shape wshape{out_channels_, in_channels_ / groups_, KH_, KW_};
  if (weight_.shape() != wshape) {  // first build: allocate; a rebuild keeps trained values
    weight_ = Tensor<T>(wshape);
    grad_weight_ = Tensor<T>(wshape);
    if (has_bias_) {
      bias_ = Tensor<T>(Shape{out_channels_});
      grad_bias_ = Tensor<T>(Shape{out_channels_});
    }
  }
  this->built_input_ = input;
  out_h_ = s.OH(), out_w_ = s.OW();
  ops::reserve_conv2d_scratch<T>(this->context(), s);
  return Shape{input[0], out_channels_, s.OH(), s.OW()};
}

template <class T>
void Conv2d<T>::init(Rng& rng) {
  // Fans of one output's receptive field, as PyTorch computes them from the weight's shape.
  detail::initialise(init_, rng, in_channels_ / groups_ * KH_ * KW_,
                     out_channels_ / groups_ * KH_ * KW_, weight_, bias_);
}

template <class T>
void Conv2d<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode) {
  convolve(x, y, weight_.data(), has_bias_ ? bias_.data() : nullptr);
}

template <class T>
void Conv2d<T>::convolve(const Tensor<T>& x, Tensor<T>& y, const T* w, const T* b) {
  this->check_input(x);
  const auto s =
      kernel_shape<T>(x.shape(), out_channels_, KH_, KW_, SH_, SW_, PH_, PW_, DH_, DW_, groups_);
  y.resize(Shape{s.N, s.OC, s.OH(), s.OW()});
  ops::conv2d_forward(this->context(), s, x.data(), w, b, y.data());
}

template <class T>
void Conv2d<T>::reserve_folding() {
  if (folded_weight_.shape() != weight_.shape()) folded_weight_ = Tensor<T>(weight_.shape());
  if (folded_bias_.numel() != out_channels_) folded_bias_ = Tensor<T>(Shape{out_channels_});
}

template <class T>
bool Conv2d<T>::folding_pays(int64_t batch) const {
  return batch * out_h_ * out_w_ >= (in_channels_ / groups_) * KH_ * KW_;
}

template <class T>
void Conv2d<T>::forward_folded(const Tensor<T>& x, Tensor<T>& y, const T* scale, const T* shift) {
  CONVNET_CHECK(folded_weight_.shape() == weight_.shape(), describe(),
                ": forward_folded before reserve_folding");
  const int64_t per_channel = weight_.numel() / out_channels_;
  for (int64_t oc = 0; oc < out_channels_; ++oc) {
    const T* w = weight_.data() + oc * per_channel;
    T* folded = folded_weight_.data() + oc * per_channel;
    for (int64_t i = 0; i < per_channel; ++i) folded[i] = scale[oc] * w[i];
    folded_bias_[oc] = scale[oc] * (has_bias_ ? bias_[oc] : T(0)) + shift[oc];
  }
  convolve(x, y, folded_weight_.data(), folded_bias_.data());
}

template <class T>
void Conv2d<T>::backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy, Tensor<T>* dx) {
  backward_impl(x, dy, dx, true);
}

template <class T>
void Conv2d<T>::backward_assign(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy,
                                Tensor<T>& dx) {
  backward_impl(x, dy, &dx, false);
}

template <class T>
void Conv2d<T>::backward_impl(const Tensor<T>& x, const Tensor<T>& dy, Tensor<T>* dx,
                              bool accumulate) {
  const auto s =
      kernel_shape<T>(x.shape(), out_channels_, KH_, KW_, SH_, SW_, PH_, PW_, DH_, DW_, groups_);
  T* db = has_bias_ ? grad_bias_.data() : nullptr;
  ops::conv2d_backward_weights(this->context(), s, x.data(), dy.data(), grad_weight_.data(), db);
  if (dx)
    ops::conv2d_backward_data(this->context(), s, weight_.data(), dy.data(), dx->data(),
                              accumulate);
}

template <class T>
std::vector<Param<T>> Conv2d<T>::params() {
  std::vector<Param<T>> p{{"weight", &weight_, &grad_weight_}};
  if (has_bias_) p.push_back({"bias", &bias_, &grad_bias_});
  return p;
}

template <class T>
int64_t Conv2d<T>::forward_flops() const {
  return 2 * out_channels_ * out_h_ * out_w_ * (in_channels_ / groups_) * KH_ * KW_;
}

template class Conv2d<float>;
template class Conv2d<double>;

}  // namespace convnet
