// The building blocks of the mixed-precision kernels (Precision::Bf16, convnet/context.hpp):
// rounding float operands to bfloat16 where they already lie packed, and the two inner loops
// that multiply them with the CPU's bf16 dot-product instruction (vdpbf16ps, AVX512_BF16).
//
// bfloat16 is a float's top 16 bits: the same 8-bit exponent, 8 significant bits (7 stored).
// Rounding to nearest (ties to even) keeps each operand within a relative 2⁻⁸ of its value, so a
// product of two rounded operands is within 2·2⁻⁸ + 2⁻¹⁶ of the exact one. vdpbf16ps forms
// acc + a₀b₀ + a₁b₁ per float lane (the products of bf16 values are exact in float) and keeps
// the sum in float: the only new error is the operands' rounding (kernel tests bound it so).
//
// Packed data is converted in place: a panel of float rows keeps its address and holds, after
// conversion, bf16 pairs (two consecutive k of one column in one 32-bit word), which is what
// vdpbf16ps multiplies. A panel of k rows needs ceil(k/2) rows of pairs: half the bytes, so no
// kernel needs more scratch in bf16 than in float.
#pragma once

#include <cstdint>
#include <cstring>

#include "convnet/context.hpp"

namespace convnet::ops::cpu {

// v rounded to the nearest bfloat16 (ties to even), as the CPU's conversion instructions do,
// returned as the float it stands for: the scalar model of the kernels' rounding (tests use it).
// Subnormal inputs become zero of the same sign (the instructions treat them as zero); NaN stays
// NaN.
inline float round_to_bf16(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  if ((bits & 0x7F800000u) == 0) {
    bits &= 0x80000000u;  // zero or subnormal
  } else if ((bits & 0x7FFFFFFFu) > 0x7F800000u) {
    bits |= 0x00400000u;  // NaN, quieted
  } else {
    bits += 0x7FFFu + ((bits >> 16) & 1u);
  }
  bits &= 0xFFFF0000u;
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

// Whether the bf16 kernels can run here: AVX-512 with AVX512_BF16 and AVX512BW, and the AVX-512
// GEMM micro-kernel selected (their panels are its 8 x 32 tiles).
bool bf16_kernels_available();
// Whether the bf16 variants of the kernel tables run in ctx: Precision::Bf16 and the above. The
// tables' bf16 variants accept shapes only where this holds.
bool runs_bf16(const Context& ctx);

// A packed panel of k rows of `width` floats (width 8 or a multiple of 16), row p at
// panel + p·width, rewritten in place as ceil(k/2) rows of `width` bf16 pairs: pair (p2, j)
// holds rows 2·p2 and 2·p2 + 1 of column j (the second zero when k is odd).
void bf16_pairs_in_place(float* panel, int64_t k, int64_t width);

// A row of n floats rewritten in place as n bf16 values, zero-padded to an even count: pair t
// holds elements 2t and 2t + 1.
void bf16_row_in_place(float* row, int64_t n);

// The GEMM micro-kernel in bf16: C[0:mr, 0:nr] (+)= Σ over kc pairs of the panels' products,
// the same 8 x 32 tile and panel order as the float AVX-512 kernel, with panels made by
// bf16_pairs_in_place (ap: rows of 8 pairs, bp: rows of 32 pairs).
void micro_avx512_bf16(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                       int64_t mr, int64_t nr, bool accumulate);

// acc[4·c + k] += Σ_t u_rows[k][t] · v_rows[c][t] over `pairs` pairs of bf16 rows made by
// bf16_row_in_place, for a 4×4 block of (k, c): dot_block_4x4 (winograd_common.hpp) in bf16.
void dot_block_4x4_bf16(const float* const* u_rows, const float* const* v_rows, int64_t pairs,
                        float* acc);

}  // namespace convnet::ops::cpu
