// SoftmaxCrossEntropy: checks the labels, then calls the fused reference kernel (loss and
// gradient in one pass over the logits; it is O(N·K), never a hot spot).
#include <cmath>

#include "convnet/loss.hpp"
#include "ops/kernels.hpp"

namespace convnet {

template <class T>
T SoftmaxCrossEntropy<T>::compute(const Tensor<T>& z, const Targets<T>& targets,
                                  Tensor<T>* grad) {
  CONVNET_CHECK(z.shape().rank() == 2, "softmax_cross_entropy: expected logits NxK, got ",
                z.shape().str());
  const int64_t N = z.dim(0), K = z.dim(1);
  CONVNET_CHECK(static_cast<int64_t>(targets.labels.size()) == N,
                "softmax_cross_entropy: expected ", N, " labels, got ", targets.labels.size());
  for (int64_t n = 0; n < N; ++n)
    CONVNET_CHECK(targets.labels[n] >= 0 && targets.labels[n] < K,
                  "softmax_cross_entropy: label ", targets.labels[n], " of sample ", n,
                  " is outside [0, ", K, ")");
  const int64_t mean_over = targets.mean_over > 0 ? targets.mean_over : N;
  CONVNET_CHECK(mean_over >= N, "softmax_cross_entropy: a shard of ", N,
                " samples cannot be part of a batch of ", mean_over);
  if (grad) grad->resize(z.shape());
  return ops::softmax_cross_entropy(N, mean_over, K, z.data(), targets.labels.data(),
                                    grad ? grad->data() : nullptr);
}

template class SoftmaxCrossEntropy<float>;
template class SoftmaxCrossEntropy<double>;

}  // namespace convnet
