// Dropout (inverted): Train: y = m ⊙ x with m = 1/(1 − p) where a uniform draw u >= p (kept,
// probability 1 − p), else 0; Eval: y = x. y is linear in x with the diagonal Jacobian diag(m),
// so backward is dx += m ⊙ dy, with the mask forward stored (the identity after an Eval forward).
#include "layers/common.hpp"
#include "ops/kernels.hpp"

namespace convnet {

template <class T>
Dropout<T>::Dropout(const DropoutOptions& o) : options_(o), p_(o.p), seed_(o.seed), rng_(o.seed) {
  CONVNET_CHECK(o.p >= 0.0 && o.p <= 1.0, "dropout: p must be in [0, 1], got ", o.p);
}

template <class T>
std::string Dropout<T>::describe() const {
  return detail::concat("dropout ", p_);
}

template <class T>
std::string Dropout<T>::spec() const {
  return detail::join_spec(kind(), detail::options_spec(options_));
}

template <class T>
std::string Dropout<T>::rng_state() const {
  return rng_.state();
}

template <class T>
void Dropout<T>::set_rng_state(const std::string& state) {
  rng_.set_state(state);
}

template <class T>
Shape Dropout<T>::build(const Shape& input) {
  CONVNET_CHECK(input.rank() >= 1 && input.numel() > 0, describe(),
                ": input must be non-empty, got ", input.str());
  this->built_input_ = input;
  if (mask_.capacity() < input.numel()) mask_ = Tensor<T>(input);  // sized once, for the batch
  return input;
}

template <class T>
void Dropout<T>::init(Rng& rng) {
  // One draw from the model's stream, so the model seed decides every mask.
  rng_ = Rng(seed_ != 0 ? seed_ : rng.next_u64());
}

template <class T>
void Dropout<T>::skip_batch(int64_t samples) {
  const Shape& in = this->built_input_;
  if (in.rank() == 0 || in[0] == 0) return;
  rng_.discard(static_cast<uint64_t>(samples) * static_cast<uint64_t>(in.numel() / in[0]));
}

template <class T>
void Dropout<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) {
  this->check_input(x);
  y.resize(x.shape());
  last_mode_ = mode;
  Context& ctx = this->context();
  const int64_t n = x.numel();
  if (mode == Mode::Eval) {
    ops::copy(ctx, n, x.data(), y.data());
    return;
  }
  if (!(replay_ && has_mask_ && mask_.shape() == x.shape())) {  // draw a fresh mask
    mask_.resize(x.shape());
    const T scale = p_ < 1.0 ? static_cast<T>(1.0 / (1.0 - p_)) : T(0);
    // One draw per element in the whole batch's order: a shard skips the draws of the samples
    // ahead of it and behind it (see BatchShard).
    const auto per_sample = static_cast<uint64_t>(x.dim(0) > 0 ? n / x.dim(0) : 0);
    rng_.discard(static_cast<uint64_t>(shard_.before) * per_sample);
    ops::dropout_mask(ctx, n, p_, scale, rng_, mask_.data());
    rng_.discard(static_cast<uint64_t>(shard_.after) * per_sample);
    has_mask_ = true;
  }
  ops::multiply(ctx, n, x.data(), mask_.data(), y.data());
}

template <class T>
void Dropout<T>::backward(const Tensor<T>&, const Tensor<T>&, const Tensor<T>& dy,
                          Tensor<T>* dx) {
  if (!dx) return;
  if (last_mode_ == Mode::Eval) {
    ops::accumulate(this->context(), dy.numel(), dy.data(), dx->data());
    return;
  }
  ops::multiply_accumulate(this->context(), dy.numel(), dy.data(), mask_.data(), dx->data());
}

template class Dropout<float>;
template class Dropout<double>;

}  // namespace convnet
