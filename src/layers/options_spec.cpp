// The layers' option tables (declared in layers/options_spec.hpp) and the spec text a layer's
// options are written as (options_spec, format_number: declared in layers/common.hpp).
#include "layers/options_spec.hpp"

#include <charconv>
#include <string>

#include "layers/common.hpp"

namespace convnet::detail {

const Fields<Conv2dOptions>& conv2d_fields() {
  using O = Conv2dOptions;
  static const Fields<O> fields = {{"in_channels", &O::in_channels},
                                   {"out_channels", &O::out_channels},
                                   {"kernel", &O::kernel},
                                   {"kernel_h", &O::kernel_h},
                                   {"kernel_w", &O::kernel_w},
                                   {"stride", &O::stride},
                                   {"stride_h", &O::stride_h},
                                   {"stride_w", &O::stride_w},
                                   {"pad", &O::pad},
                                   {"pad_h", &O::pad_h},
                                   {"pad_w", &O::pad_w},
                                   {"dilation", &O::dilation},
                                   {"dilation_h", &O::dilation_h},
                                   {"dilation_w", &O::dilation_w},
                                   {"groups", &O::groups},
                                   {"bias", &O::bias},
                                   {"init", &O::init}};
  return fields;
}

const Fields<ConvTranspose2dOptions>& conv_transpose2d_fields() {
  using O = ConvTranspose2dOptions;
  static const Fields<O> fields = {{"in_channels", &O::in_channels},
                                   {"out_channels", &O::out_channels},
                                   {"kernel", &O::kernel},
                                   {"kernel_h", &O::kernel_h},
                                   {"kernel_w", &O::kernel_w},
                                   {"stride", &O::stride},
                                   {"stride_h", &O::stride_h},
                                   {"stride_w", &O::stride_w},
                                   {"pad", &O::pad},
                                   {"pad_h", &O::pad_h},
                                   {"pad_w", &O::pad_w},
                                   {"output_padding", &O::output_padding},
                                   {"output_padding_h", &O::output_padding_h},
                                   {"output_padding_w", &O::output_padding_w},
                                   {"dilation", &O::dilation},
                                   {"dilation_h", &O::dilation_h},
                                   {"dilation_w", &O::dilation_w},
                                   {"groups", &O::groups},
                                   {"bias", &O::bias},
                                   {"init", &O::init}};
  return fields;
}

// count_pad is AvgPool2d's only.
const Fields<Pool2dOptions>& pool_fields(bool count_pad) {
  using O = Pool2dOptions;
  static const Fields<O> max_fields = {
      {"kernel", &O::kernel}, {"kernel_h", &O::kernel_h}, {"kernel_w", &O::kernel_w},
      {"stride", &O::stride}, {"stride_h", &O::stride_h}, {"stride_w", &O::stride_w},
      {"pad", &O::pad},       {"pad_h", &O::pad_h},       {"pad_w", &O::pad_w}};
  static const Fields<O> avg_fields = [] {
    Fields<O> f = max_fields;
    f.push_back({"count_pad", &O::count_pad});
    return f;
  }();
  return count_pad ? avg_fields : max_fields;
}

const Fields<LinearOptions>& linear_fields() {
  using O = LinearOptions;
  static const Fields<O> fields = {{"in_features", &O::in_features},
                                   {"out_features", &O::out_features},
                                   {"bias", &O::bias},
                                   {"init", &O::init}};
  return fields;
}

const Fields<DropoutOptions>& dropout_fields() {
  using O = DropoutOptions;
  static const Fields<O> fields = {{"p", &O::p}, {"seed", &O::seed}};
  return fields;
}

const Fields<BatchNormOptions>& batchnorm_fields() {
  using O = BatchNormOptions;
  static const Fields<O> fields = {{"num_features", &O::num_features},
                                   {"eps", &O::eps},
                                   {"momentum", &O::momentum},
                                   {"affine", &O::affine},
                                   {"gamma_init", &O::gamma_init}};
  return fields;
}

const Fields<LeakyReLUSpec>& leaky_relu_fields() {
  static const Fields<LeakyReLUSpec> fields = {{"slope", &LeakyReLUSpec::slope}};
  return fields;
}

const Fields<ELUSpec>& elu_fields() {
  static const Fields<ELUSpec> fields = {{"alpha", &ELUSpec::alpha}};
  return fields;
}

namespace {

std::string format_value(int64_t v) { return std::to_string(v); }
std::string format_value(const std::optional<int64_t>& v) { return v ? std::to_string(*v) : ""; }
std::string format_value(uint64_t v) { return std::to_string(v); }
std::string format_value(double v) { return format_number(v); }
std::string format_value(bool v) { return v ? "true" : "false"; }
std::string format_value(Init v) {
  for (const auto& [init, name] : kInitNames)
    if (init == v) return name;
  return "?";
}

// Every option of `o` that differs from a default-constructed O, in table order.
template <class O>
std::string write_options(const O& o, const Fields<O>& fields) {
  static const O defaults{};
  std::string out;
  for (const Field<O>& f : fields)
    std::visit(
        [&](auto member) {
          if (o.*member == defaults.*member) return;
          // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) about the
          // one-expression form once this is inlined.
          if (!out.empty()) out += ' ';
          out += f.name;
          out += '=';
          out += format_value(o.*member);
        },
        f.member);
  return out;
}

}  // namespace

std::string options_spec(const Conv2dOptions& o) { return write_options(o, conv2d_fields()); }
std::string options_spec(const ConvTranspose2dOptions& o) {
  return write_options(o, conv_transpose2d_fields());
}
std::string options_spec(const Pool2dOptions& o, bool count_pad) {
  return write_options(o, pool_fields(count_pad));
}
std::string options_spec(const LinearOptions& o) { return write_options(o, linear_fields()); }
std::string options_spec(const DropoutOptions& o) { return write_options(o, dropout_fields()); }
std::string options_spec(const BatchNormOptions& o) { return write_options(o, batchnorm_fields()); }

std::string format_number(float v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}
std::string format_number(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

}  // namespace convnet::detail
