// Parts every layer shares: input checks, activation shapes, weight initialisation, and the
// default backward_assign.
#include <cmath>

#include "layers/common.hpp"
#include "ops/kernels.hpp"

namespace convnet {

template <class T>
void Layer<T>::backward_assign(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                               Tensor<T>& dx) {
  ops::zero(dx.numel(), dx.data());  // threaded for float: these buffers are large
  backward(x, y, dy, &dx);
}

template <class T>
void Layer<T>::check_input(const Tensor<T>& x) const {
  const Shape& got = x.shape();
  bool ok = got.rank() == built_input_.rank() && got.rank() > 0 && got[0] >= 1;
  for (int i = 1; ok && i < got.rank(); ++i) ok = got[i] == built_input_[i];
  if (ok) return;
  std::string expected = "N";
  for (int i = 1; i < built_input_.rank(); ++i) {
    expected += 'x';
    expected += std::to_string(built_input_[i]);
  }
  throw Error(detail::concat(describe(), ": expected input ", expected, ", got ", got.str()));
}

template <class T>
Shape Activation<T>::build(const Shape& input) {
  CONVNET_CHECK(input.rank() >= 1 && input.numel() > 0, this->kind(),
                ": input must be non-empty, got ", input.str());
  this->built_input_ = input;
  return input;
}

namespace detail {

template <class T>
void initialise(Init init, Rng& rng, int64_t fan_in, int64_t fan_out, Tensor<T>& weight,
                Tensor<T>& bias) {
  const double fi = static_cast<double>(fan_in), fo = static_cast<double>(fan_out);
  auto uniform = [&](Tensor<T>& t, double bound) {
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<T>(rng.uniform(-bound, bound));
  };
  auto normal = [&](Tensor<T>& t, double stddev) {
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<T>(rng.normal(0.0, stddev));
  };
  switch (init) {
    case Init::Default:  // PyTorch: kaiming_uniform_(a=√5) gives bound 1/√fan_in; bias alike
      uniform(weight, 1.0 / std::sqrt(fi));
      uniform(bias, 1.0 / std::sqrt(fi));
      return;
    case Init::KaimingUniform:
      uniform(weight, std::sqrt(6.0 / fi));
      break;
    case Init::KaimingNormal:
      normal(weight, std::sqrt(2.0 / fi));
      break;
    case Init::XavierUniform:
      uniform(weight, std::sqrt(6.0 / (fi + fo)));
      break;
    case Init::XavierNormal:
      normal(weight, std::sqrt(2.0 / (fi + fo)));
      break;
  }
  bias.zero();
}

template void initialise<float>(Init, Rng&, int64_t, int64_t, Tensor<float>&, Tensor<float>&);
template void initialise<double>(Init, Rng&, int64_t, int64_t, Tensor<double>&, Tensor<double>&);

}  // namespace detail

template class Layer<float>;
template class Layer<double>;
template class Activation<float>;
template class Activation<double>;

}  // namespace convnet
