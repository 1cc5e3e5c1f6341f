// The tables of the ops other than convolution (linear, max pooling, ReLU, add, batch norm,
// the elementwise utilities and the optimizer updates), and what all tables share. A second variant
// goes before the one it beats, with a supports() that accepts only the shapes it wins on.
#include "ops/cpu/bf16.hpp"
#include "ops/kernels.hpp"

namespace convnet::ops {
namespace {

template <class Shape>
bool any_shape(const Context&, const Shape&) {
  return true;
}

// Mixed precision (Precision::Bf16 on a CPU with the bf16 kernels): the GEMMs in bf16.
bool bf16_gemm(const Context& ctx, const LinearShape&) { return cpu::runs_bf16(ctx); }
constexpr LinearForwardVariant kLinearForward[] = {
    {"gemm_bf16", Isa::Avx512Bf16, bf16_gemm, cpu::linear_forward<Precision::Bf16>},
    {"gemm", Isa::Baseline, any_shape<LinearShape>, cpu::linear_forward<>}};
constexpr LinearBackwardDataVariant kLinearBackwardData[] = {
    {"gemm_bf16", Isa::Avx512Bf16, bf16_gemm, cpu::linear_backward_data<Precision::Bf16>},
    {"gemm", Isa::Baseline, any_shape<LinearShape>, cpu::linear_backward_data<>}};
constexpr LinearBackwardWeightsVariant kLinearBackwardWeights[] = {
    {"gemm_bf16", Isa::Avx512Bf16, bf16_gemm, cpu::linear_backward_weights<Precision::Bf16>},
    {"gemm", Isa::Baseline, any_shape<LinearShape>, cpu::linear_backward_weights<>}};

// Windows clipped to the input once, a branch-free path for 2x2 stride 2, threads over planes;
// before it, 2x2 stride 2 as 16 windows per AVX-512 vector.
bool pool_2x2_avx512(const Context&, const Pool2dShape& s) {
  return cpu::maxpool2d_2x2_avx512_supported(s);
}
constexpr MaxPool2dForwardVariant kMaxPool2dForward[] = {
    {"2x2_avx512", Isa::Avx512, pool_2x2_avx512, cpu::maxpool2d_forward_2x2_avx512},
    {"clipped", Isa::Baseline, any_shape<Pool2dShape>, cpu::maxpool2d_forward}};
constexpr MaxPool2dBackwardVariant kMaxPool2dBackward[] = {
    {"scatter", Isa::Baseline, any_shape<Pool2dShape>, cpu::maxpool2d_backward}};

constexpr ReluForwardVariant kReluForward[] = {
    {"threaded", Isa::Baseline, any_shape<int64_t>, cpu::relu_forward}};
constexpr ReluBackwardVariant kReluBackward[] = {
    {"threaded", Isa::Baseline, any_shape<int64_t>, cpu::relu_backward}};

constexpr AddForwardVariant kAddForward[] = {
    {"threaded", Isa::Baseline, any_shape<int64_t>, cpu::add_forward}};
constexpr AddBackwardVariant kAddBackward[] = {
    {"threaded", Isa::Baseline, any_shape<int64_t>, cpu::add_backward}};

constexpr BatchNormStatsVariant kBatchNormStats[] = {
    {"planes", Isa::Baseline, any_shape<BatchNormShape>, cpu::batchnorm_stats}};
constexpr BatchNormForwardVariant kBatchNormForward[] = {
    {"planes", Isa::Baseline, any_shape<BatchNormShape>, cpu::batchnorm_forward}};
constexpr BatchNormBackwardVariant kBatchNormBackward[] = {
    {"planes", Isa::Baseline, any_shape<BatchNormShape>, cpu::batchnorm_backward}};

// Elementwise utilities and the optimizer updates: threads over ranges, vectorised per ISA.
constexpr FillVariant kFill[] = {{"threaded", Isa::Baseline, any_shape<int64_t>, cpu::fill}};
constexpr ScaleVariant kScale[] = {{"threaded", Isa::Baseline, any_shape<int64_t>, cpu::scale}};
constexpr CopyVariant kCopy[] = {{"threaded", Isa::Baseline, any_shape<int64_t>, cpu::copy}};
constexpr AccumulateVariant kAccumulate[] = {
    {"threaded", Isa::Baseline, any_shape<int64_t>, cpu::accumulate}};
constexpr MultiplyVariant kMultiply[] = {
    {"threaded", Isa::Baseline, any_shape<int64_t>, cpu::multiply}};
constexpr MultiplyAccumulateVariant kMultiplyAccumulate[] = {
    {"threaded", Isa::Baseline, any_shape<int64_t>, cpu::multiply_accumulate}};
// Threads over (image, channel) planes forward, over channels backward.
constexpr BiasForwardVariant kBiasForward[] = {
    {"planes", Isa::Baseline, any_shape<BiasShape>, cpu::bias_forward}};
constexpr BiasBackwardVariant kBiasBackward[] = {
    {"channels", Isa::Baseline, any_shape<BiasShape>, cpu::bias_backward}};
constexpr SgdUpdateVariant kSgdUpdate[] = {
    {"threaded", Isa::Baseline, any_shape<int64_t>, cpu::sgd_update}};
constexpr AdamUpdateVariant kAdamUpdate[] = {
    {"threaded", Isa::Baseline, any_shape<int64_t>, cpu::adam_update}};
constexpr RmsPropUpdateVariant kRmsPropUpdate[] = {
    {"threaded", Isa::Baseline, any_shape<int64_t>, cpu::rmsprop_update}};

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Baseline:
      return "baseline";
    case Isa::Avx512:
      return "avx512";
    case Isa::Avx512Bf16:
      return "avx512_bf16";
  }
  return "?";
}

std::span<const LinearForwardVariant> linear_forward_variants() { return kLinearForward; }
std::span<const LinearBackwardDataVariant> linear_backward_data_variants() {
  return kLinearBackwardData;
}
std::span<const LinearBackwardWeightsVariant> linear_backward_weights_variants() {
  return kLinearBackwardWeights;
}
std::span<const MaxPool2dForwardVariant> maxpool2d_forward_variants() { return kMaxPool2dForward; }
std::span<const MaxPool2dBackwardVariant> maxpool2d_backward_variants() {
  return kMaxPool2dBackward;
}
std::span<const ReluForwardVariant> relu_forward_variants() { return kReluForward; }
std::span<const ReluBackwardVariant> relu_backward_variants() { return kReluBackward; }
std::span<const AddForwardVariant> add_forward_variants() { return kAddForward; }
std::span<const AddBackwardVariant> add_backward_variants() { return kAddBackward; }
std::span<const BatchNormStatsVariant> batchnorm_stats_variants() { return kBatchNormStats; }
std::span<const BatchNormForwardVariant> batchnorm_forward_variants() { return kBatchNormForward; }
std::span<const BatchNormBackwardVariant> batchnorm_backward_variants() {
  return kBatchNormBackward;
}
std::span<const FillVariant> fill_variants() { return kFill; }
std::span<const ScaleVariant> scale_variants() { return kScale; }
std::span<const CopyVariant> copy_variants() { return kCopy; }
std::span<const AccumulateVariant> accumulate_variants() { return kAccumulate; }
std::span<const MultiplyVariant> multiply_variants() { return kMultiply; }
std::span<const MultiplyAccumulateVariant> multiply_accumulate_variants() {
  return kMultiplyAccumulate;
}
std::span<const BiasForwardVariant> bias_forward_variants() { return kBiasForward; }
std::span<const BiasBackwardVariant> bias_backward_variants() { return kBiasBackward; }
std::span<const SgdUpdateVariant> sgd_update_variants() { return kSgdUpdate; }
std::span<const AdamUpdateVariant> adam_update_variants() { return kAdamUpdate; }
std::span<const RmsPropUpdateVariant> rmsprop_update_variants() { return kRmsPropUpdate; }

}  // namespace convnet::ops
