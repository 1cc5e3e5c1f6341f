// Fast max pooling: the same result as ops/ref (first maximum wins, padding never does), with
// each window clipped to the input once instead of testing every element, a branch-free 2x2
// stride-2 path (the common case), and threads over the N·C planes.
#include <algorithm>
#include <limits>

#include "convnet/context.hpp"
#include "ops/cpu/cpu.hpp"
#include "ops/cpu/lanes.hpp"
#include "ops/cpu/multiversion.hpp"

namespace convnet::ops::cpu {
namespace {

// 2x2 windows with stride 2 and no padding, written with selects instead of branches: on
// activations the comparisons are unpredictable, and this lets the compiler vectorise the row.
// Visiting (r0[0], r0[1], r1[0], r1[1]) with strict '>' keeps the first maximum, as ref does.
CONVNET_MULTIVERSION
void maxpool_2x2_row(const float* __restrict r0, const float* __restrict r1, int64_t OW,
                     int32_t base, int32_t IW, float* __restrict y, int32_t* __restrict argmax) {
  for (int64_t ow = 0; ow < OW; ++ow) {
    const float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
    const int32_t i = base + 2 * static_cast<int32_t>(ow);
    float best = a;
    int32_t index = i;
    index = b > best ? i + 1 : index;
    best = b > best ? b : best;
    index = c > best ? i + IW : index;
    best = c > best ? c : best;
    index = d > best ? i + IW + 1 : index;
    best = d > best ? d : best;
    y[ow] = best;
    if (argmax) argmax[ow] = index;
  }
}

void maxpool_plane(const Pool2dShape& s, const float* x, float* y, int32_t* argmax) {
  const int64_t OH = s.OH(), OW = s.OW();
  if (s.KH == 2 && s.KW == 2 && s.SH == 2 && s.SW == 2 && s.PH == 0 && s.PW == 0) {
    for (int64_t oh = 0; oh < OH; ++oh) {
      const float* r0 = x + 2 * oh * s.IW;
      maxpool_2x2_row(r0, r0 + s.IW, OW, static_cast<int32_t>(2 * oh * s.IW),
                      static_cast<int32_t>(s.IW), y + oh * OW, argmax ? argmax + oh * OW : nullptr);
    }
    return;
  }
  for (int64_t oh = 0; oh < OH; ++oh) {
    const int64_t h0 = std::max<int64_t>(oh * s.SH - s.PH, 0);
    const int64_t h1 = std::min<int64_t>(oh * s.SH - s.PH + s.KH, s.IH);
    for (int64_t ow = 0; ow < OW; ++ow) {
      const int64_t w0 = std::max<int64_t>(ow * s.SW - s.PW, 0);
      const int64_t w1 = std::min<int64_t>(ow * s.SW - s.PW + s.KW, s.IW);
      float best = -std::numeric_limits<float>::infinity();
      int64_t index = -1;
      for (int64_t ih = h0; ih < h1; ++ih)
        for (int64_t iw = w0; iw < w1; ++iw) {
          const float v = x[ih * s.IW + iw];
          if (v > best || index < 0) best = v, index = ih * s.IW + iw;
        }
      y[oh * OW + ow] = best;
      if (argmax) argmax[oh * OW + ow] = static_cast<int32_t>(index);
    }
  }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CONVNET_HAVE_POOL_AVX512 1
// The 2x2 stride-2 windows of one row pair, 16 outputs per vector: 32 input columns of each row
// loaded (masked at the row's end) and split into even (a, c) and odd (b, d) columns; then the
// same selects as maxpool_2x2_row, in the same order, on whole vectors (an ordered '>' is false
// for NaN, as the scalar comparison is).
__attribute__((target("avx512f"))) void maxpool_2x2_row_avx512(const float* r0, const float* r1,
                                                               int64_t OW, int32_t base, int32_t IW,
                                                               float* y, int32_t* argmax) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  for (int64_t ow0 = 0; ow0 < OW; ow0 += 16) {
    const int64_t n = std::min<int64_t>(16, OW - ow0);
    const __mmask16 lo = lanes_below(2 * n), hi = lanes_below(2 * n - 16);
    const float* p0 = r0 + 2 * ow0;
    const float* p1 = r1 + 2 * ow0;
    const __m512 r0lo = _mm512_maskz_loadu_ps(lo, p0), r0hi = _mm512_maskz_loadu_ps(hi, p0 + 16);
    const __m512 r1lo = _mm512_maskz_loadu_ps(lo, p1), r1hi = _mm512_maskz_loadu_ps(hi, p1 + 16);
    const __m512 a = _mm512_permutex2var_ps(r0lo, even, r0hi);
    const __m512 b = _mm512_permutex2var_ps(r0lo, odd, r0hi);
    const __m512 c = _mm512_permutex2var_ps(r1lo, even, r1hi);
    const __m512 d = _mm512_permutex2var_ps(r1lo, odd, r1hi);
    // i = base + 2·ow for each lane's ow
    const __m512i i =
        _mm512_add_epi32(even, _mm512_set1_epi32(base + 2 * static_cast<int32_t>(ow0)));
    __m512 best = a;
    __m512i index = i;
    __mmask16 m = _mm512_cmp_ps_mask(b, best, _CMP_GT_OQ);
    index = _mm512_mask_add_epi32(index, m, i, _mm512_set1_epi32(1));
    best = _mm512_mask_mov_ps(best, m, b);
    m = _mm512_cmp_ps_mask(c, best, _CMP_GT_OQ);
    index = _mm512_mask_add_epi32(index, m, i, _mm512_set1_epi32(IW));
    best = _mm512_mask_mov_ps(best, m, c);
    m = _mm512_cmp_ps_mask(d, best, _CMP_GT_OQ);
    index = _mm512_mask_add_epi32(index, m, i, _mm512_set1_epi32(IW + 1));
    best = _mm512_mask_mov_ps(best, m, d);
    const __mmask16 out = lanes_below(n);
    _mm512_mask_storeu_ps(y + ow0, out, best);
    if (argmax) _mm512_mask_storeu_epi32(argmax + ow0, out, index);
  }
}
#endif

}  // namespace

bool maxpool2d_2x2_avx512_supported(const Pool2dShape& s) {
#ifdef CONVNET_HAVE_POOL_AVX512
  return s.KH == 2 && s.KW == 2 && s.SH == 2 && s.SW == 2 && s.PH == 0 && s.PW == 0 &&
         __builtin_cpu_supports("avx512f");
#else
  (void)s;
  return false;
#endif
}

void maxpool2d_forward_2x2_avx512(const Context& ctx, const Pool2dShape& s, const float* x,
                                  float* y, int32_t* argmax) {
#ifdef CONVNET_HAVE_POOL_AVX512
  const int64_t in_plane = s.IH * s.IW, OH = s.OH(), OW = s.OW(), out_plane = OH * OW;
  parallel_for(ctx, 0, s.N * s.C, [&](int64_t lo, int64_t hi, int) {
    for (int64_t p = lo; p < hi; ++p)
      for (int64_t oh = 0; oh < OH; ++oh) {
        const float* r0 = x + p * in_plane + 2 * oh * s.IW;
        const int64_t o = p * out_plane + oh * OW;
        maxpool_2x2_row_avx512(r0, r0 + s.IW, OW, static_cast<int32_t>(2 * oh * s.IW),
                               static_cast<int32_t>(s.IW), y + o, argmax ? argmax + o : nullptr);
      }
  });
#else
  (void)ctx, (void)s, (void)x, (void)y, (void)argmax;
#endif
}

void maxpool2d_forward(const Context& ctx, const Pool2dShape& s, const float* x, float* y,
                       int32_t* argmax) {
  const int64_t in_plane = s.IH * s.IW, out_plane = s.OH() * s.OW();
  parallel_for(ctx, 0, s.N * s.C, [&](int64_t lo, int64_t hi, int) {
    for (int64_t p = lo; p < hi; ++p)
      maxpool_plane(s, x + p * in_plane, y + p * out_plane,
                    argmax ? argmax + p * out_plane : nullptr);
  });
}

}  // namespace convnet::ops::cpu
