// The option tables of the layers' options structs: each option's spec-text name and the member
// it sets. A layer's spec() writes its options with them (options_spec in layers/common.hpp)
// and the model-spec parser (src/io/spec.cpp) reads options back with the same tables, so what
// is written is exactly what is read.
#pragma once

#include <optional>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "convnet/layers.hpp"

namespace convnet::detail {

// The options of LeakyReLU and ELU, which take a bare scalar rather than an options struct
// (their layers write it themselves; only the parser reads through these tables).
struct LeakyReLUSpec {
  double slope = 0.01;
};
struct ELUSpec {
  double alpha = 1.0;
};

template <class O, class... More>
using MemberOf =
    std::variant<int64_t O::*, uint64_t O::*, double O::*, bool O::*, Init O::*, More O::*...>;
// The structs with per-axis options (pad_w: std::optional<int64_t>, written only when given).
// Only their tables can hold such a member, so no code is generated that would assign an
// optional into a struct without one (GCC warns about it as out of bounds).
template <class O>
constexpr bool kHasPerAxisOptions =
    std::is_same_v<O, Conv2dOptions> || std::is_same_v<O, ConvTranspose2dOptions> ||
    std::is_same_v<O, Pool2dOptions>;
template <class O>
struct Field {
  const char* name;
  std::conditional_t<kHasPerAxisOptions<O>, MemberOf<O, std::optional<int64_t>>, MemberOf<O>>
      member;
};
template <class O>
using Fields = std::vector<Field<O>>;

// Each table lists its struct's options in declaration order, the order spec() writes them in.
const Fields<Conv2dOptions>& conv2d_fields();
const Fields<ConvTranspose2dOptions>& conv_transpose2d_fields();
const Fields<Pool2dOptions>& pool_fields(bool count_pad);  // count_pad is AvgPool2d's only
const Fields<LinearOptions>& linear_fields();
const Fields<DropoutOptions>& dropout_fields();
const Fields<BatchNormOptions>& batchnorm_fields();
const Fields<LeakyReLUSpec>& leaky_relu_fields();
const Fields<ELUSpec>& elu_fields();

// The spec-text names of Init's values.
inline constexpr std::pair<Init, const char*> kInitNames[] = {
    {Init::Default, "default"},
    {Init::KaimingUniform, "kaiming_uniform"},
    {Init::KaimingNormal, "kaiming_normal"},
    {Init::XavierUniform, "xavier_uniform"},
    {Init::XavierNormal, "xavier_normal"}};

}  // namespace convnet::detail
