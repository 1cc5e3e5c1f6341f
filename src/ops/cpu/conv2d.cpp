// The convolution tables: which algorithm runs for a shape, for forward, backward data and
// backward weights. Each table lists its variants best first; dispatch (conv2d_forward and
// friends below, which layers reach through ops/kernels.hpp) runs the first whose supports()
// accepts the shape. The order and predicates are exactly the selection the if-chains here
// made before there were tables (grouped, then Winograd where it pays, F(4x4) before F(2x2),
// then the direct kernel, then im2col), so every shape runs the kernel it always ran.
#include <algorithm>

#include "convnet/context.hpp"
#include "ops/cpu/bf16.hpp"
#include "ops/cpu/cpu.hpp"
#include "ops/kernels.hpp"

namespace convnet::ops::cpu {
namespace {

bool dense(const Conv2dShape& s) { return s.G == 1; }

// A table's supports() from a predicate of the shape alone: most variants' choice does not
// depend on the context (the F(4x4) ones read its Winograd tile).
template <bool (*supports)(const Conv2dShape&)>
bool by_shape(const Context&, const Conv2dShape& s) {
  return supports(s);
}

// With stride 1, backward data is itself a stride-1 convolution: of dy, by the kernel flipped
// in space with in/out channels swapped, padded by D·(K-1) - P:
//   dx[ic, ih, iw] = Σ_{oc,kh',kw'} w'[ic, oc, kh', kw'] · dy[oc, ih - P' + kh'·D, iw - P' + kw'·D]
//   with w'[ic, oc, kh', kw'] = w[oc, ic, KH-1-kh', KW-1-kw'] and P' = D·(K-1) - P.
Conv2dShape backward_data_shape(const Conv2dShape& s) {
  return {.N = s.N,
          .IC = s.OC,
          .IH = s.OH(),
          .IW = s.OW(),
          .OC = s.IC,
          .KH = s.KH,
          .KW = s.KW,
          .SH = 1,
          .SW = 1,
          .PH = s.DH * (s.KH - 1) - s.PH,
          .PW = s.DW * (s.KW - 1) - s.PW,
          .DH = s.DH,
          .DW = s.DW};
}
// Backward data as a forward convolution needs stride 1 and a non-negative padding P'.
bool backward_data_is_a_convolution(const Conv2dShape& s) {
  return dense(s) && s.SH == 1 && s.SW == 1 && s.PH <= s.DH * (s.KH - 1) &&
         s.PW <= s.DW * (s.KW - 1);
}

// Winograd pays where its 2.25x fewer multiplications are not eaten by the transforms and by
// short GEMMs: enough channels on both sides (measured with bench_kernels; the 3-channel first
// layer of vgg-small stays direct).
bool winograd_pays(const Conv2dShape& s) {
  return dense(s) && conv2d_winograd_supported(s) && s.IC >= 8 && s.OC >= 8;
}
// Output tiles of m x m in the batch: the columns of Winograd's products. Too few, and the
// transforms and the GEMMs' short rows cost more than the multiplications saved (a batch of one
// image on 8x8 maps has 4 tiles of 4x4); the minimums below are where bench_kernels at batches
// 1, 4 and 16 finds Winograd ahead of the other kernels (bench/README.md, "Kernel choices").
int64_t tiles(const Conv2dShape& s, int64_t m) {
  return s.N * ((s.OH() + m - 1) / m) * ((s.OW() + m - 1) / m);
}
// F(2x2, 3x3) forward and backward data (where F(4x4) is not chosen).
bool winograd2_pays(const Conv2dShape& s) { return winograd_pays(s) && tiles(s, 2) >= 256; }
// F(3x3, 2x2) weight gradients.
bool winograd2_weights_pay(const Conv2dShape& s) { return winograd_pays(s) && tiles(s, 2) >= 64; }
// F(4x4, 3x3) from 5 output columns up, where each pair of its tiles (8 columns) is at least
// part full in both tiles; at 4 columns half of every pair is padding and F(2x2, 3x3) is faster
// (bench_kernels, "by algorithm"; the figures are in bench/README.md, "Kernel choices").
bool winograd4_pays(const Context& ctx, const Conv2dShape& s) {
  return ctx.winograd_tile() == WinogradTile::F4x4 && winograd_pays(s) &&
         conv2d_winograd4_supported(s) && s.OW() >= 5 && tiles(s, 4) >= 16;
}
// Weight gradients by F(3x3, 4x4) from 128 tiles of 4x4 up, on the maps F(4x4, 3x3) takes. With
// fewer, the rows of its dot products are short and their horizontal sums, one per (ξ, oc, ic),
// cost more than F(3x3, 2x2)'s 16 ξ (bench_kernels; the figures are in bench/README.md,
// "Kernel choices").
bool winograd4_weights_pay(const Context& ctx, const Conv2dShape& s) {
  return winograd4_pays(ctx, s) && tiles(s, 4) >= 128;
}

// Room for either Winograd variant, so that changing the tile setting after a layer sized its
// scratch never overruns it.
int64_t winograd_forward_workspace_size(const Conv2dShape& s, int threads) {
  int64_t size = conv2d_winograd_workspace_size(s, threads);
  if (conv2d_winograd4_supported(s))
    size = std::max(size, conv2d_winograd4_workspace_size(s, threads));
  return size;
}

// Mixed precision: the bf16 variants stand before their float twins and accept a shape only in a
// context set to Precision::Bf16 on a CPU with the bf16 kernels. Shapes they leave (the direct
// and grouped kernels' and F(2x2, 3x3) forward's) run in float in either precision.
template <bool (*supports)(const Context&, const Conv2dShape&)>
bool in_bf16(const Context& ctx, const Conv2dShape& s) {
  return runs_bf16(ctx) && supports(ctx, s);
}

// --- forward ---------------------------------------------------------------------------------
bool forward_grouped(const Conv2dShape& s) { return s.G > 1; }
bool forward_winograd4(const Context& ctx, const Conv2dShape& s) { return winograd4_pays(ctx, s); }
bool forward_direct(const Conv2dShape& s) { return dense(s) && conv2d_direct_supported(s); }

constexpr Conv2dForwardVariant kForward[] = {
    {"grouped", Isa::Baseline, by_shape<forward_grouped>, conv2d_grouped_forward},
    {"winograd_f4x4_bf16", Isa::Avx512Bf16, in_bf16<forward_winograd4>,
     [](const Context& ctx, const Conv2dShape& s, const float* x, const float* w, const float* b,
        float* y, float* workspace) {
       conv2d_winograd4(ctx, s, x, w, false, b, y, false, workspace, Precision::Bf16);
     }},
    {"winograd_f4x4", Isa::Avx512, forward_winograd4,
     [](const Context& ctx, const Conv2dShape& s, const float* x, const float* w, const float* b,
        float* y,
        float* workspace) { conv2d_winograd4(ctx, s, x, w, false, b, y, false, workspace); }},
    {"winograd_f2x2", Isa::Avx512, by_shape<winograd2_pays>,
     [](const Context& ctx, const Conv2dShape& s, const float* x, const float* w, const float* b,
        float* y,
        float* workspace) { conv2d_winograd(ctx, s, x, w, false, b, y, false, workspace); }},
    {"direct", Isa::Avx512, by_shape<forward_direct>,
     [](const Context& ctx, const Conv2dShape& s, const float* x, const float* w, const float* b,
        float* y,
        float* workspace) { conv2d_direct(ctx, s, x, w, false, b, y, false, workspace); }},
    {"im2col_bf16", Isa::Avx512Bf16, in_bf16<by_shape<dense>>,
     conv2d_im2col_forward<Precision::Bf16>},
    {"im2col", Isa::Baseline, by_shape<dense>, conv2d_im2col_forward<>},
};

// --- backward data: a stride-1 convolution of dy (see backward_data_shape) where it can be ---
bool backward_data_winograd4(const Context& ctx, const Conv2dShape& s) {
  return backward_data_is_a_convolution(s) && winograd4_pays(ctx, backward_data_shape(s));
}
bool backward_data_winograd2(const Conv2dShape& s) {
  return backward_data_is_a_convolution(s) && winograd2_pays(backward_data_shape(s));
}
bool backward_data_direct(const Conv2dShape& s) {
  return backward_data_is_a_convolution(s) && conv2d_direct_supported(backward_data_shape(s));
}

constexpr Conv2dBackwardDataVariant kBackwardData[] = {
    {"grouped", Isa::Baseline, by_shape<forward_grouped>, conv2d_grouped_backward_data},
    {"winograd_f4x4_bf16", Isa::Avx512Bf16, in_bf16<backward_data_winograd4>,
     [](const Context& ctx, const Conv2dShape& s, const float* w, const float* dy, float* dx,
        float* workspace, bool accumulate) {
       conv2d_winograd4(ctx, backward_data_shape(s), dy, w, true, nullptr, dx, accumulate,
                        workspace, Precision::Bf16);
     }},
    {"winograd_f4x4", Isa::Avx512, backward_data_winograd4,
     [](const Context& ctx, const Conv2dShape& s, const float* w, const float* dy, float* dx,
        float* workspace, bool accumulate) {
       conv2d_winograd4(ctx, backward_data_shape(s), dy, w, true, nullptr, dx, accumulate,
                        workspace);
     }},
    {"winograd_f2x2", Isa::Avx512, by_shape<backward_data_winograd2>,
     [](const Context& ctx, const Conv2dShape& s, const float* w, const float* dy, float* dx,
        float* workspace, bool accumulate) {
       conv2d_winograd(ctx, backward_data_shape(s), dy, w, true, nullptr, dx, accumulate,
                       workspace);
     }},
    {"direct", Isa::Avx512, by_shape<backward_data_direct>,
     [](const Context& ctx, const Conv2dShape& s, const float* w, const float* dy, float* dx,
        float* workspace, bool accumulate) {
       conv2d_direct(ctx, backward_data_shape(s), dy, w, true, nullptr, dx, accumulate, workspace);
     }},
    {"im2col_bf16", Isa::Avx512Bf16, in_bf16<by_shape<dense>>,
     conv2d_im2col_backward_data<Precision::Bf16>},
    {"im2col", Isa::Baseline, by_shape<dense>, conv2d_im2col_backward_data<>},
};

// --- backward weights --------------------------------------------------------------------------
bool backward_weights_direct(const Conv2dShape& s) {
  return dense(s) && conv2d_direct_backward_weights_supported(s);
}

constexpr Conv2dBackwardWeightsVariant kBackwardWeights[] = {
    {"grouped", Isa::Baseline, by_shape<forward_grouped>, conv2d_grouped_backward_weights},
    {"winograd_f3x3_4x4_bf16", Isa::Avx512Bf16, in_bf16<winograd4_weights_pay>,
     [](const Context& ctx, const Conv2dShape& s, const float* x, const float* dy, float* dw,
        float* db, float* workspace) {
       conv2d_winograd4_backward_weights(ctx, s, x, dy, dw, db, workspace, Precision::Bf16);
     }},
    {"winograd_f3x3_4x4", Isa::Avx512, winograd4_weights_pay,
     [](const Context& ctx, const Conv2dShape& s, const float* x, const float* dy, float* dw,
        float* db, float* workspace) {
       conv2d_winograd4_backward_weights(ctx, s, x, dy, dw, db, workspace);
     }},
    {"winograd_f3x3_2x2_bf16", Isa::Avx512Bf16, in_bf16<by_shape<winograd2_weights_pay>>,
     [](const Context& ctx, const Conv2dShape& s, const float* x, const float* dy, float* dw,
        float* db, float* workspace) {
       conv2d_winograd_backward_weights(ctx, s, x, dy, dw, db, workspace, Precision::Bf16);
     }},
    {"winograd_f3x3_2x2", Isa::Avx512, by_shape<winograd2_weights_pay>,
     [](const Context& ctx, const Conv2dShape& s, const float* x, const float* dy, float* dw,
        float* db, float* workspace) {
       conv2d_winograd_backward_weights(ctx, s, x, dy, dw, db, workspace);
     }},
    {"direct", Isa::Avx512, by_shape<backward_weights_direct>, conv2d_direct_backward_weights},
    {"im2col_bf16", Isa::Avx512Bf16, in_bf16<by_shape<dense>>,
     conv2d_im2col_backward_weights<Precision::Bf16>},
    {"im2col", Isa::Baseline, by_shape<dense>, conv2d_im2col_backward_weights<>},
};

}  // namespace

int64_t conv2d_workspace_size(const Conv2dShape& s, int threads) {
  if (s.G > 1) return conv2d_grouped_workspace_size(s, threads);
  int64_t size = conv2d_im2col_workspace_size(s, threads);
  if (conv2d_direct_supported(s)) size = std::max(size, conv2d_direct_workspace_size(s, threads));
  if (conv2d_direct_backward_weights_supported(s))
    size = std::max(size, conv2d_direct_backward_weights_workspace_size(s, threads));
  if (backward_data_direct(s))
    size = std::max(size, conv2d_direct_workspace_size(backward_data_shape(s), threads));
  if (winograd_pays(s)) {
    size = std::max(size, winograd_forward_workspace_size(s, threads));
    size = std::max(size, conv2d_winograd_backward_weights_workspace_size(s, threads));
    if (conv2d_winograd4_supported(s))
      size = std::max(size, conv2d_winograd4_backward_weights_workspace_size(s, threads));
  }
  if (backward_data_winograd2(s))
    size = std::max(size, winograd_forward_workspace_size(backward_data_shape(s), threads));
  return size;
}

void conv2d_forward(const Context& ctx, const Conv2dShape& s, const float* x, const float* w,
                    const float* b, float* y, float* workspace) {
  select(ctx, conv2d_forward_variants(), s).run(ctx, s, x, w, b, y, workspace);
}

void conv2d_backward_data(const Context& ctx, const Conv2dShape& s, const float* w, const float* dy,
                          float* dx, float* workspace, bool accumulate) {
  select(ctx, conv2d_backward_data_variants(), s).run(ctx, s, w, dy, dx, workspace, accumulate);
}

void conv2d_backward_weights(const Context& ctx, const Conv2dShape& s, const float* x,
                             const float* dy, float* dw, float* db, float* workspace) {
  select(ctx, conv2d_backward_weights_variants(), s).run(ctx, s, x, dy, dw, db, workspace);
}

}  // namespace convnet::ops::cpu

namespace convnet::ops {

std::span<const Conv2dForwardVariant> conv2d_forward_variants() { return cpu::kForward; }
std::span<const Conv2dBackwardDataVariant> conv2d_backward_data_variants() {
  return cpu::kBackwardData;
}
std::span<const Conv2dBackwardWeightsVariant> conv2d_backward_weights_variants() {
  return cpu::kBackwardWeights;
}

}  // namespace convnet::ops
