// The fast CPU kernels (float only): a packed, register-blocked GEMM, and convolution and
// linear layers expressed as GEMMs. Same contracts as ops/ref/ref.hpp (forward assigns, backward
// accumulates), tested against the reference on random and edge shapes. Every threaded kernel
// takes the context (convnet/context.hpp) whose thread count and pool split its work.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "convnet/context.hpp"
#include "ops/shapes.hpp"

namespace convnet::ops::cpu {

// fn(lo, hi) on ranges covering [0, count): one per thread of ctx, but none shorter than
// kElementwiseGrain elements, so that small tensors stay on the calling thread. For elementwise
// kernels, whose results do not depend on the split.
inline constexpr int64_t kElementwiseGrain = 1 << 14;
template <class Fn>
void split_elementwise(const Context& ctx, int64_t count, Fn&& fn) {
  const int64_t chunks =
      std::max<int64_t>(1, std::min<int64_t>(ctx.num_threads(), count / kElementwiseGrain));
  parallel_for(ctx, 0, chunks,
               [&](int64_t lo, int64_t hi, int) { fn(count * lo / chunks, count * hi / chunks); });
}

// Fewer items (images, chunks of tiles) than threads, as in batch-1 inference: a kernel cuts
// each item's work into blocks so that every thread has some. blocks_per_item is how many
// (1 when the items alone fill the threads; never more than max_blocks), block_of which part
// of [0, length) block b of them covers, in whole multiples of `unit`.
inline int64_t blocks_per_item(const Context& ctx, int64_t items, int64_t max_blocks) {
  const int64_t threads = ctx.num_threads();
  if (items >= threads) return 1;
  return std::clamp<int64_t>((threads + items - 1) / items, 1, std::max<int64_t>(1, max_blocks));
}
struct Block {
  int64_t lo, hi;
};
inline Block block_of(int64_t length, int64_t blocks, int64_t b, int64_t unit) {
  const int64_t units = (length + unit - 1) / unit;
  return {std::min(length, units * b / blocks * unit),
          std::min(length, units * (b + 1) / blocks * unit)};
}

// C = op(A) · op(B) + (accumulate ? C : 0), row-major; op(A) is M×K, op(B) is K×N.
// op(A) = A (M×K, leading dim lda) or, when trans_a, Aᵀ with A stored K×M. Likewise for B.
// Single-threaded; callers split the work. Precision::Bf16 (with bf16_kernels_available(),
// bf16.hpp) multiplies A and B rounded to bf16, accumulating in float.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
           const float* B, int64_t ldb, bool accumulate, float* C, int64_t ldc,
           Precision precision = Precision::Fp32);

// Allocates the GEMM's packing buffers (one set per thread) on every thread of ctx's pool now,
// when a layer is built, so that the first GEMM a thread runs in a training step allocates
// nothing, whichever kernel the batch's size chooses.
void reserve_pack_buffers(const Context& ctx);

// Which micro-kernel sgemm runs on this CPU: "avx512", "avx2" or "generic".
const char* sgemm_kernel_name();
// Every micro-kernel this CPU supports, best first; sgemm_use_kernel picks one (for tests and
// benchmarks; not while a GEMM runs). An unsupported name is ignored.
std::vector<std::string> sgemm_kernel_names();
void sgemm_use_kernel(const std::string& name);

// Floats of scratch the convolution kernels need for `threads` threads: the most that any
// variant of the three convolution tables may use on s (either Winograd tile included).
int64_t conv2d_workspace_size(const Conv2dShape& s, int threads);

// Direct stride-1 convolution (AVX-512 only; see conv2d_direct.cpp). y = conv(x, w) + b, or with
// accumulate y += conv(x, w). flip_swap: w is stored (IC, OC, KH, KW) and applied flipped in
// space, which makes this the backward-data pass of a stride-1 convolution.
bool conv2d_direct_supported(const Conv2dShape& s);
int64_t conv2d_direct_workspace_size(const Conv2dShape& s, int threads);
void conv2d_direct(const Context& ctx, const Conv2dShape& s, const float* x, const float* w,
                   bool flip_swap, const float* b, float* y, bool accumulate, float* workspace);

// Weight and bias gradients of a stride-1 convolution as in-place dot products (AVX-512 only;
// used wherever the direct forward is).
bool conv2d_direct_backward_weights_supported(const Conv2dShape& s);
int64_t conv2d_direct_backward_weights_workspace_size(const Conv2dShape& s, int threads);
void conv2d_direct_backward_weights(const Context& ctx, const Conv2dShape& s, const float* x,
                                    const float* dy, float* dw, float* db, float* workspace);

// Winograd F(2x2, 3x3) convolution for 3x3 kernels, stride 1, dilation 1, padding <= 2
// (AVX-512 only; see conv2d_winograd.cpp). Same arguments as conv2d_direct.
bool conv2d_winograd_supported(const Conv2dShape& s);
int64_t conv2d_winograd_workspace_size(const Conv2dShape& s, int threads);
void conv2d_winograd(const Context& ctx, const Conv2dShape& s, const float* x, const float* w,
                     bool flip_swap, const float* b, float* y, bool accumulate, float* workspace);
// Weight and bias gradients of such a convolution by F(3x3, 2x2), accumulated into dw and db;
// with Precision::Bf16 the transform-domain dot products multiply in bf16 (bf16.hpp).
int64_t conv2d_winograd_backward_weights_workspace_size(const Conv2dShape& s, int threads);
void conv2d_winograd_backward_weights(const Context& ctx, const Conv2dShape& s, const float* x,
                                      const float* dy, float* dw, float* db, float* workspace,
                                      Precision precision = Precision::Fp32);

// Winograd F(4x4, 3x3) for the same convolutions (AVX-512 only; see conv2d_winograd4.cpp):
// 4x fewer multiplications than direct convolution, against F(2x2, 3x3)'s 2.25x, for larger
// rounding errors. Same arguments as conv2d_direct; with Precision::Bf16 the transformed tiles
// are multiplied in bf16 (bf16.hpp), the transforms staying float.
bool conv2d_winograd4_supported(const Conv2dShape& s);
int64_t conv2d_winograd4_workspace_size(const Conv2dShape& s, int threads);
void conv2d_winograd4(const Context& ctx, const Conv2dShape& s, const float* x, const float* w,
                      bool flip_swap, const float* b, float* y, bool accumulate, float* workspace,
                      Precision precision = Precision::Fp32);
// Weight and bias gradients of such a convolution by F(3x3, 4x4) (4x fewer multiplications than
// the direct sums, against F(3x3, 2x2)'s 2.25x), accumulated into dw and db.
int64_t conv2d_winograd4_backward_weights_workspace_size(const Conv2dShape& s, int threads);
void conv2d_winograd4_backward_weights(const Context& ctx, const Conv2dShape& s, const float* x,
                                       const float* dy, float* dw, float* db, float* workspace,
                                       Precision precision = Precision::Fp32);

// Grouped convolution (s.G > 1; see conv2d_grouped.cpp), which conv2d_forward and friends hand
// over to: a direct kernel when depthwise, else the dense kernels one group at a time.
int64_t conv2d_grouped_workspace_size(const Conv2dShape& s, int threads);
void conv2d_grouped_forward(const Context& ctx, const Conv2dShape& s, const float* x,
                            const float* w, const float* b, float* y, float* workspace);
void conv2d_grouped_backward_data(const Context& ctx, const Conv2dShape& s, const float* w,
                                  const float* dy, float* dx, float* workspace,
                                  bool accumulate = true);
void conv2d_grouped_backward_weights(const Context& ctx, const Conv2dShape& s, const float* x,
                                     const float* dy, float* dw, float* db, float* workspace);

// Convolution as GEMM with the patch matrix packed straight from the image (see
// conv2d_im2col.cpp): dense convolutions (s.G == 1) of every shape, on any CPU. P: what the
// GEMMs multiply in (Bf16 needs bf16_kernels_available(), bf16.hpp).
int64_t conv2d_im2col_workspace_size(const Conv2dShape& s, int threads);
template <Precision P = Precision::Fp32>
void conv2d_im2col_forward(const Context& ctx, const Conv2dShape& s, const float* x, const float* w,
                           const float* b, float* y, float* workspace);
template <Precision P = Precision::Fp32>
void conv2d_im2col_backward_data(const Context& ctx, const Conv2dShape& s, const float* w,
                                 const float* dy, float* dx, float* workspace, bool accumulate);
template <Precision P = Precision::Fp32>
void conv2d_im2col_backward_weights(const Context& ctx, const Conv2dShape& s, const float* x,
                                    const float* dy, float* dw, float* db, float* workspace);

// Same semantics as ref::conv2d_*, each running the first variant of its table in
// ops/kernels.hpp that supports s (the tables are in conv2d.cpp); `workspace` holds
// conv2d_workspace_size(s, ctx.num_threads()), room for every variant.
// Backward data accumulates into dx, or with accumulate = false assigns it (dx's previous
// contents are never read: no zeroing pass and no read-back).
void conv2d_forward(const Context& ctx, const Conv2dShape& s, const float* x, const float* w,
                    const float* b, float* y, float* workspace);
void conv2d_backward_data(const Context& ctx, const Conv2dShape& s, const float* w, const float* dy,
                          float* dx, float* workspace, bool accumulate = true);
void conv2d_backward_weights(const Context& ctx, const Conv2dShape& s, const float* x,
                             const float* dy, float* dw, float* db, float* workspace);

// Same semantics as ref::maxpool2d_forward, except that a NaN does not propagate (it never
// compares greater); the backward pass is ref::maxpool2d_backward on the stored argmax.
void maxpool2d_forward(const Context& ctx, const Pool2dShape& s, const float* x, float* y,
                       int32_t* argmax);

// The 2x2 stride-2 windows without padding (the common case) on AVX-512: 16 windows per
// vector; the same values and winners as maxpool2d_forward.
bool maxpool2d_2x2_avx512_supported(const Pool2dShape& s);
void maxpool2d_forward_2x2_avx512(const Context& ctx, const Pool2dShape& s, const float* x,
                                  float* y, int32_t* argmax);

void maxpool2d_backward(const Context& ctx, const Pool2dShape& s, const float* dy,
                        const int32_t* argmax, float* dx);

// Same semantics as ref::relu_*; threaded and vectorised. Backward accumulates into dx, or
// assigns it with accumulate = false.
void relu_forward(const Context& ctx, int64_t count, const float* x, float* y);
void relu_backward(const Context& ctx, int64_t count, const float* x, const float* dy, float* dx,
                   bool accumulate = true);
// Same semantics as ref::add_*, threaded over blocks (at most 16 inputs).
void add_forward(const Context& ctx, int64_t count, std::span<const float* const> xs, float* y);
void add_backward(const Context& ctx, int64_t count, const float* dy, std::span<float* const> dxs,
                  std::span<const bool> assign);
// Same semantics as ref::fill, scale, copy, accumulate, multiply, multiply_accumulate,
// bias_forward and bias_backward: threaded and vectorised, bit for bit the reference's.
void fill(const Context& ctx, int64_t count, float value, float* y);
void scale(const Context& ctx, int64_t count, float s, float* x);
void copy(const Context& ctx, int64_t count, const float* x, float* y);
void accumulate(const Context& ctx, int64_t count, const float* x, float* y);
void multiply(const Context& ctx, int64_t count, const float* x, const float* m, float* y);
void multiply_accumulate(const Context& ctx, int64_t count, const float* x, const float* m,
                         float* y);
void bias_forward(const Context& ctx, const BiasShape& s, const float* b, float* y);
void bias_backward(const Context& ctx, const BiasShape& s, const float* dy, float* db);

// Same semantics as ref::sgd_update, adam_update and rmsprop_update: threaded and vectorised,
// each element's expression the reference's, so bit for bit its results (optim.cpp).
void sgd_update(const Context& ctx, int64_t count, const SgdStep<float>& c, float* p,
                const float* g, float* buf);
void adam_update(const Context& ctx, int64_t count, const AdamStep<float>& c, float* p,
                 const float* g, float* m, float* v);
void rmsprop_update(const Context& ctx, int64_t count, const RmsPropStep<float>& c, float* p,
                    const float* g, float* v, float* g_avg, float* buf);

// Same semantics as ref::batchnorm_*; threaded over (image, channel) planes, each channel's
// sums added in a fixed order, so results do not depend on the thread count. Sums are
// vectorised float partials added in double. `workspace` holds batchnorm_workspace_size(s)
// floats.
int64_t batchnorm_workspace_size(const BatchNormShape& s);
void batchnorm_stats(const Context& ctx, const BatchNormShape& s, const float* x, float* mean,
                     float* var, float* workspace);
void batchnorm_forward(const Context& ctx, const BatchNormShape& s, const float* x,
                       const float* mean, const float* invstd, const float* gamma,
                       const float* beta, float* y);
// Backward accumulates into dx, or assigns it with accumulate = false (dgamma and dbeta always
// accumulate).
void batchnorm_backward(const Context& ctx, const BatchNormShape& s, bool batch_stats,
                        const float* x, const float* dy, const float* mean, const float* invstd,
                        const float* gamma, float* dx, float* dgamma, float* dbeta,
                        float* workspace, bool accumulate = true);

// Same semantics as ref::linear_*; P: what the GEMMs multiply in (as for im2col above).
template <Precision P = Precision::Fp32>
void linear_forward(const Context& ctx, const LinearShape& s, const float* x, const float* w,
                    const float* b, float* y);
template <Precision P = Precision::Fp32>
void linear_backward_data(const Context& ctx, const LinearShape& s, const float* w, const float* dy,
                          float* dx);
template <Precision P = Precision::Fp32>
void linear_backward_weights(const Context& ctx, const LinearShape& s, const float* x,
                             const float* dy, float* dw, float* db);

}  // namespace convnet::ops::cpu
