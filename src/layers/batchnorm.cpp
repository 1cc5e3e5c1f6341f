// BatchNorm1d/2d: per channel, y = γ·x̂ + β with x̂ = (x − μ)/sqrt(σ² + eps). Train normalises with
// the batch's own statistics (so μ and σ² depend on every x of the channel, and backward carries
// the two extra terms of docs/backprop.md) and updates the running statistics; Eval normalises
// with the running statistics (an affine map per channel).
#include <cmath>

#include "layers/common.hpp"
#include "ops/kernels.hpp"

namespace convnet {

template <class T>
BatchNorm<T>::BatchNorm(const BatchNormOptions& o, bool spatial)
    : options_(o),
      channels_(o.num_features), eps_(o.eps), momentum_(o.momentum), affine_(o.affine),
      spatial_(spatial) {
  const char* name = spatial ? "batchnorm2d" : "batchnorm1d";
  CONVNET_CHECK(o.num_features >= 0, name, ": num_features must be >= 0 (0 = infer), got ",
                o.num_features);
  CONVNET_CHECK(o.eps > 0.0, name, ": eps must be > 0, got ", o.eps);
  CONVNET_CHECK(o.momentum >= 0.0 && o.momentum <= 1.0, name, ": momentum must be in [0, 1], got ",
                o.momentum);
  CONVNET_CHECK(std::isfinite(o.gamma_init), name, ": gamma_init must be finite, got ",
                o.gamma_init);
  CONVNET_CHECK(o.affine || o.gamma_init == 1.0, name,
                ": gamma_init needs affine (without it γ is fixed at 1), got ", o.gamma_init);
}

namespace {
ops::BatchNormShape bn_shape(const Shape& x) {
  int64_t hw = 1;
  for (int i = 2; i < x.rank(); ++i) hw *= x[i];
  return {.N = x[0], .C = x[1], .HW = hw};
}
}  // namespace

template <class T>
std::string BatchNorm<T>::describe() const {
  return detail::concat(this->kind(), " ", channels_ ? std::to_string(channels_) : "?",
                        affine_ ? "" : " no-affine");
}

template <class T>
std::string BatchNorm<T>::spec() const {
  return detail::join_spec(this->kind(), detail::options_spec(options_));
}

template <class T>
Shape BatchNorm<T>::build(const Shape& input) {
  if (spatial_) {
    CONVNET_CHECK(input.rank() == 4, describe(), ": expected an NxCxHxW input, got ",
                  input.str());
  } else {
    CONVNET_CHECK(input.rank() == 2 || input.rank() == 3, describe(),
                  ": expected an NxF or NxCxL input, got ", input.str());
  }
  CONVNET_CHECK(input.numel() > 0, describe(), ": input must be non-empty, got ", input.str());
  if (channels_ == 0) channels_ = input[1];
  CONVNET_CHECK(input[1] == channels_, describe(), ": expected ", channels_,
                " channels, got input ", input.str());
  const Shape c{channels_};
  if (running_mean_.shape() != c) {  // first build: PyTorch's initial values
    if (affine_) {
      weight_ = Tensor<T>(c, T(options_.gamma_init));
      bias_ = Tensor<T>(c);
      grad_weight_ = Tensor<T>(c);
      grad_bias_ = Tensor<T>(c);
    }
    running_mean_ = Tensor<T>(c);
    running_var_ = Tensor<T>(c, T(1));
    mean_ = Tensor<T>(c);
    var_ = Tensor<T>(c);
    invstd_ = Tensor<T>(c);
  }
  this->built_input_ = input;
  // The fast kernels' scratch, sized now so that training steps do not grow it.
  ops::reserve_batchnorm_scratch<T>(this->context(), bn_shape(input));
  return input;
}

template <class T>
void BatchNorm<T>::init(Rng&) {
  if (affine_) {
    weight_.fill(T(options_.gamma_init));
    bias_.zero();
  }
  running_mean_.zero();
  running_var_.fill(T(1));
}


template <class T>
void BatchNorm<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) {
  this->check_input(x);
  y.resize(x.shape());
  last_mode_ = mode;
  const ops::BatchNormShape s = bn_shape(x.shape());
  if (mode == Mode::Train) {
    CONVNET_CHECK(s.M() > 1, describe(), ": training needs more than 1 value per channel, got input ",
                  x.shape().str(), " (use a batch of at least 2, or Mode::Eval)");
    ops::batchnorm_stats(this->context(), s, x.data(), mean_.data(), var_.data());
    const T eps = static_cast<T>(eps_), m = static_cast<T>(momentum_);
    const T unbias = static_cast<T>(s.M()) / static_cast<T>(s.M() - 1);
    for (int64_t c = 0; c < channels_; ++c) {
      invstd_[c] = T(1) / std::sqrt(var_[c] + eps);
      if (!replay_ && update_statistics_) {
        running_mean_[c] = (T(1) - m) * running_mean_[c] + m * mean_[c];
        running_var_[c] = (T(1) - m) * running_var_[c] + m * var_[c] * unbias;
      }
    }
  } else {
    for (int64_t c = 0; c < channels_; ++c) {
      mean_[c] = running_mean_[c];
      invstd_[c] = T(1) / std::sqrt(running_var_[c] + static_cast<T>(eps_));
    }
  }
  const T* gamma = affine_ ? weight_.data() : nullptr;
  const T* beta = affine_ ? bias_.data() : nullptr;
  ops::batchnorm_forward(this->context(), s, x.data(), mean_.data(), invstd_.data(), gamma, beta,
                         y.data());
}

template <class T>
void BatchNorm<T>::eval_affine(T* scale, T* shift) const {
  for (int64_t c = 0; c < channels_; ++c) {
    const T invstd = T(1) / std::sqrt(running_var_[c] + static_cast<T>(eps_));
    scale[c] = (affine_ ? weight_[c] : T(1)) * invstd;
    shift[c] = (affine_ ? bias_[c] : T(0)) - running_mean_[c] * scale[c];
  }
}

template <class T>
void BatchNorm<T>::backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy,
                            Tensor<T>* dx) {
  backward_impl(x, dy, dx, true);
}

template <class T>
void BatchNorm<T>::backward_assign(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy,
                                   Tensor<T>& dx) {
  backward_impl(x, dy, &dx, false);
}

template <class T>
void BatchNorm<T>::backward_impl(const Tensor<T>& x, const Tensor<T>& dy, Tensor<T>* dx,
                                 bool accumulate) {
  const ops::BatchNormShape s = bn_shape(x.shape());
  const bool batch_stats = last_mode_ == Mode::Train;
  const T* gamma = affine_ ? weight_.data() : nullptr;
  T* dgamma = affine_ ? grad_weight_.data() : nullptr;
  T* dbeta = affine_ ? grad_bias_.data() : nullptr;
  T* dxp = dx ? dx->data() : nullptr;
  ops::batchnorm_backward(this->context(), s, batch_stats, x.data(), dy.data(), mean_.data(),
                          invstd_.data(), gamma, dxp, dgamma, dbeta, accumulate);
}

template <class T>
std::vector<Param<T>> BatchNorm<T>::params() {
  if (!affine_) return {};
  return {{"weight", &weight_, &grad_weight_}, {"bias", &bias_, &grad_bias_}};
}

template <class T>
std::vector<Buffer<T>> BatchNorm<T>::buffers() {
  return {{"running_mean", &running_mean_}, {"running_var", &running_var_}};
}

template class BatchNorm<float>;
template class BatchNorm<double>;

}  // namespace convnet
