// validate() for the kernel shape structs: the one place bad geometry is caught.
#include "ops/shapes.hpp"

#include <algorithm>
#include <initializer_list>
#include <utility>

#include "convnet/error.hpp"

namespace convnet::ops {

namespace {
// Sizes beyond these are mistakes, not models, and would overflow the 64-bit index arithmetic
// the kernels do (a fuzzed spec with pad=22222222222222 did): one dimension at most 2^24, one
// tensor or workspace at most 2^36 elements.
constexpr int64_t kMaxDim = int64_t{1} << 24;
constexpr double kMaxElements = 68719476736.0;  // 2^36

void check_dims(const std::string& where, std::initializer_list<std::pair<const char*, int64_t>> dims) {
  for (const auto& [name, value] : dims)
    CONVNET_CHECK(value <= kMaxDim, where, ": ", name, " = ", value, " is more than the ", kMaxDim,
                  " this library accepts");
}

void check_elements(const std::string& where, const char* what, double elements) {
  CONVNET_CHECK(elements <= kMaxElements, where, ": the ", what, " would hold ", elements,
                " elements, more than the 2^36 this library accepts");
}
}  // namespace

void Conv2dShape::validate(const std::string& where) const {
  check_dims(where, {{"batch", N}, {"input channels", IC}, {"input height", IH},
                     {"input width", IW}, {"output channels", OC}, {"kernel height", KH},
                     {"kernel width", KW}, {"stride", std::max(SH, SW)},
                     {"padding", std::max(PH, PW)}, {"dilation", std::max(DH, DW)},
                     {"groups", G}});
  CONVNET_CHECK(N >= 1 && IC >= 1 && IH >= 1 && IW >= 1 && OC >= 1, where,
                ": dimensions must be positive (N=", N, ", IC=", IC, ", IH=", IH, ", IW=", IW,
                ", OC=", OC, ")");
  CONVNET_CHECK(G >= 1 && IC % G == 0 && OC % G == 0, where, ": groups (", G,
                ") must divide both the input channels (", IC, ") and the output channels (", OC,
                ")");
  CONVNET_CHECK(KH >= 1 && KW >= 1, where, ": kernel must be at least 1x1, got ", KH, "x", KW);
  CONVNET_CHECK(SH >= 1 && SW >= 1, where, ": stride must be at least 1, got ", SH, "x", SW);
  CONVNET_CHECK(DH >= 1 && DW >= 1, where, ": dilation must be at least 1, got ", DH, "x", DW);
  CONVNET_CHECK(PH >= 0 && PW >= 0, where, ": padding must be >= 0, got ", PH, "x", PW);
  const int64_t eff_h = DH * (KH - 1) + 1, eff_w = DW * (KW - 1) + 1;
  CONVNET_CHECK(IH + 2 * PH >= eff_h && IW + 2 * PW >= eff_w, where, ": padded input ",
                IH + 2 * PH, "x", IW + 2 * PW, " is smaller than the (dilated) kernel ", eff_h, "x",
                eff_w, " (input ", IH, "x", IW, ", padding ", PH, "x", PW, ", kernel ", KH, "x", KW,
                ", dilation ", DH, "x", DW, ")");
  const double out_positions = static_cast<double>(OH()) * static_cast<double>(OW());
  const double patch = static_cast<double>(IC / G) * static_cast<double>(KH * KW);
  check_elements(where, "output", static_cast<double>(N * OC) * out_positions);
  check_elements(where, "weight", static_cast<double>(OC) * patch);
  check_elements(where, "patch matrix", patch * static_cast<double>(G) * out_positions);
}

void Pool2dShape::validate(const std::string& where) const {
  check_dims(where, {{"batch", N}, {"channels", C}, {"input height", IH}, {"input width", IW},
                     {"kernel height", KH}, {"kernel width", KW}, {"stride", std::max(SH, SW)},
                     {"padding", std::max(PH, PW)}});
  CONVNET_CHECK(N >= 1 && C >= 1 && IH >= 1 && IW >= 1, where,
                ": dimensions must be positive (N=", N, ", C=", C, ", IH=", IH, ", IW=", IW, ")");
  CONVNET_CHECK(KH >= 1 && KW >= 1, where, ": kernel must be at least 1x1, got ", KH, "x", KW);
  CONVNET_CHECK(SH >= 1 && SW >= 1, where, ": stride must be at least 1, got ", SH, "x", SW);
  // As in PyTorch: a window made mostly of padding would have no real element to pool.
  CONVNET_CHECK(PH >= 0 && PW >= 0 && 2 * PH <= KH && 2 * PW <= KW, where, ": padding ", PH, "x",
                PW, " must be between 0 and half the kernel ", KH, "x", KW);
  CONVNET_CHECK(IH + 2 * PH >= KH && IW + 2 * PW >= KW, where, ": padded input ", IH + 2 * PH,
                "x", IW + 2 * PW, " is smaller than the pooling window ", KH, "x", KW);
}

}  // namespace convnet::ops
