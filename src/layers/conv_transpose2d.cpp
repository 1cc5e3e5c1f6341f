// ConvTranspose2d: the adjoint of a convolution. Take the convolution "c" that maps a tensor of
// this layer's OUTPUT shape to one of its INPUT shape (same kernel, stride, padding, dilation,
// groups; c's weights are ours, (IC, OC / G, KH, KW) read as c's (OC_c, IC_c / G, KH, KW)).
// Then, with J the Jacobian of c:
//   forward:        y  = Jᵀ x + b        = c's backward data applied to x
//   backward data:  dx = J dy            = c's forward applied to dy
//   backward wgts:  dW = c's weight gradient with c's input dy and c's output gradient x
//                   db = Σ dy over batch and positions
// so every kernel (reference and fast) is Conv2d's, already tested; only the roles change.
#include "layers/common.hpp"
#include "ops/kernels.hpp"

namespace convnet {

template <class T>
ConvTranspose2d<T>::ConvTranspose2d(const ConvTranspose2dOptions& o)
    : options_(o),
      in_channels_(o.in_channels),
      out_channels_(o.out_channels),
      groups_(o.groups),
      has_bias_(o.bias),
      init_(o.init) {
  constexpr const char* kind = "conv_transpose2d";
  CONVNET_CHECK(out_channels_ >= 1, kind, ": out_channels must be at least 1, got ", out_channels_);
  CONVNET_CHECK(in_channels_ >= 0, kind, ": in_channels must be >= 0 (0 = infer), got ",
                in_channels_);
  const auto kernel = detail::checked_axes(kind, "kernel", o.kernel, o.kernel_h, o.kernel_w, 1);
  const auto stride = detail::checked_axes(kind, "stride", o.stride, o.stride_h, o.stride_w, 1);
  const auto pad = detail::checked_axes(kind, "pad", o.pad, o.pad_h, o.pad_w, 0);
  const auto output_padding = detail::checked_axes(kind, "output_padding", o.output_padding,
                                                   o.output_padding_h, o.output_padding_w, 0);
  const auto dilation =
      detail::checked_axes(kind, "dilation", o.dilation, o.dilation_h, o.dilation_w, 1);
  KH_ = kernel.h, KW_ = kernel.w, SH_ = stride.h, SW_ = stride.w, PH_ = pad.h, PW_ = pad.w;
  OPH_ = output_padding.h, OPW_ = output_padding.w, DH_ = dilation.h, DW_ = dilation.w;
  // As PyTorch: output padding below the stride or the dilation, or it would add rows no input
  // reaches.
  CONVNET_CHECK((OPH_ < SH_ || OPH_ < DH_) && (OPW_ < SW_ || OPW_ < DW_), kind, ": output padding ",
                OPH_, "x", OPW_, " must be smaller than the stride ", SH_, "x", SW_,
                " or the dilation ", DH_, "x", DW_);
  CONVNET_CHECK(groups_ >= 1 && out_channels_ % groups_ == 0, kind, ": groups (", groups_,
                ") must be at least 1 and divide out_channels (", out_channels_, ")");
}

template <class T>
std::string ConvTranspose2d<T>::describe() const {
  std::string d = detail::concat("conv_transpose2d ", KH_, "x", KW_, " ->", out_channels_);
  if (SH_ != 1 || SW_ != 1) d += detail::concat(" stride ", SH_, "x", SW_);
  if (PH_ != 0 || PW_ != 0) d += detail::concat(" pad ", PH_, "x", PW_);
  if (OPH_ != 0 || OPW_ != 0) d += detail::concat(" output_padding ", OPH_, "x", OPW_);
  if (DH_ != 1 || DW_ != 1) d += detail::concat(" dilation ", DH_, "x", DW_);
  if (groups_ != 1) d += detail::concat(" groups ", groups_);
  if (!has_bias_) d += " no-bias";
  return d;
}

template <class T>
std::string ConvTranspose2d<T>::spec() const {
  return detail::join_spec(kind(), detail::options_spec(options_));
}

namespace {
// The convolution whose adjoint this layer is, for an input x of shape (N, IC, H, W).
ops::Conv2dShape adjoint_shape(const Shape& x, int64_t OC, int64_t KH, int64_t KW, int64_t SH,
                               int64_t SW, int64_t PH, int64_t PW, int64_t OPH, int64_t OPW,
                               int64_t DH, int64_t DW, int64_t G) {
  const int64_t OH = (x[2] - 1) * SH - 2 * PH + DH * (KH - 1) + OPH + 1;
  const int64_t OW = (x[3] - 1) * SW - 2 * PW + DW * (KW - 1) + OPW + 1;
  return {.N = x[0],
          .IC = OC,
          .IH = OH,
          .IW = OW,
          .OC = x[1],
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
Shape ConvTranspose2d<T>::build(const Shape& input) {
  CONVNET_CHECK(input.rank() == 4, describe(), ": expected an NxCxHxW input, got ", input.str());
  if (in_channels_ == 0) in_channels_ = input[1];
  CONVNET_CHECK(input[1] == in_channels_, describe(), ": expected ", in_channels_,
                " input channels, got input ", input.str());
  CONVNET_CHECK(in_channels_ % groups_ == 0, describe(), ": groups (", groups_,
                ") must divide the input channels (", in_channels_, ")");
  const ops::Conv2dShape c = adjoint_shape(input, out_channels_, KH_, KW_, SH_, SW_, PH_, PW_, OPH_,
                                           OPW_, DH_, DW_, groups_);
  CONVNET_CHECK(c.IH >= 1 && c.IW >= 1, describe(), " on input ", input.str(),
                ": the output would be ", c.IH, "x", c.IW, " (padding larger than the result)");
  c.validate(describe() + " on input " + input.str());
  const Shape wshape{in_channels_, out_channels_ / groups_, KH_, KW_};
  if (weight_.shape() != wshape) {  // first build: allocate; a rebuild keeps trained values
    weight_ = Tensor<T>(wshape);
    grad_weight_ = Tensor<T>(wshape);
    if (has_bias_) {
      bias_ = Tensor<T>(Shape{out_channels_});
      grad_bias_ = Tensor<T>(Shape{out_channels_});
    }
  }
  this->built_input_ = input;
  out_h_ = c.IH, out_w_ = c.IW;
  scratch_.resize(input);
  ops::reserve_conv2d_scratch<T>(this->context(), c);
  return Shape{input[0], out_channels_, out_h_, out_w_};
}

template <class T>
void ConvTranspose2d<T>::init(Rng& rng) {
  // PyTorch computes the fans from the weight's shape (IC, OC / G, KH, KW): fan_in is dimension 1.
  detail::initialise(init_, rng, out_channels_ / groups_ * KH_ * KW_, in_channels_ * KH_ * KW_,
                     weight_, bias_);
}

template <class T>
void ConvTranspose2d<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode) {
  this->check_input(x);
  const auto c = adjoint_shape(x.shape(), out_channels_, KH_, KW_, SH_, SW_, PH_, PW_, OPH_, OPW_,
                               DH_, DW_, groups_);
  y.resize(Shape{c.N, out_channels_, c.IH, c.IW});
  ops::fill(this->context(), y.numel(), T(0), y.data());  // backward data accumulates
  ops::conv2d_backward_data(this->context(), c, weight_.data(), x.data(), y.data(),
                            /*accumulate=*/true);
  if (has_bias_)
    ops::bias_forward(this->context(), {.N = c.N, .C = out_channels_, .HW = c.IH * c.IW},
                      bias_.data(), y.data());
}

template <class T>
void ConvTranspose2d<T>::backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy,
                                  Tensor<T>* dx) {
  const auto c = adjoint_shape(x.shape(), out_channels_, KH_, KW_, SH_, SW_, PH_, PW_, OPH_, OPW_,
                               DH_, DW_, groups_);
  if (has_bias_)
    ops::bias_backward(this->context(), {.N = c.N, .C = out_channels_, .HW = c.IH * c.IW},
                       dy.data(), grad_bias_.data());
  if (dx) scratch_.resize(x.shape());
  ops::conv2d_backward_weights(this->context(), c, dy.data(), x.data(), grad_weight_.data(),
                               static_cast<T*>(nullptr));
  if (dx)
    ops::conv2d_forward(this->context(), c, dy.data(), weight_.data(),
                        static_cast<const T*>(nullptr), scratch_.data());
  if (dx)  // the layer contract: dx accumulates
    ops::accumulate(this->context(), dx->numel(), scratch_.data(), dx->data());
}

template <class T>
std::vector<Param<T>> ConvTranspose2d<T>::params() {
  std::vector<Param<T>> p{{"weight", &weight_, &grad_weight_}};
  if (has_bias_) p.push_back({"bias", &bias_, &grad_bias_});
  return p;
}

template <class T>
int64_t ConvTranspose2d<T>::forward_flops() const {
  const int64_t IH = this->built_input_[2], IW = this->built_input_[3];
  return 2 * in_channels_ * IH * IW * (out_channels_ / groups_) * KH_ * KW_;
}

template class ConvTranspose2d<float>;
template class ConvTranspose2d<double>;

}  // namespace convnet
