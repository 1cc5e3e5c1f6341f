// The reference kernels: THE SPECIFICATION. Plain scalar loops that mirror the formulas, no
// intrinsics, no threads. Templates so tests can run them in double. Fast kernels in ops/cpu are
// tested against these; never optimise them in place.
//
// CONTRACT for every kernel below:
//   forward writes its output (assign); backward ACCUMULATES (dx += ..., dw += ..., db += ...),
//   so callers zero gradients. A null gradient pointer means "not requested".
#pragma once

#include <cstdint>
#include <span>

#include "convnet/rng.hpp"
#include "ops/shapes.hpp"

namespace convnet::ops::ref {

// --- convolution ---------------------------------------------------------------------------
// y[n,oc,oh,ow] = b[oc] + Σ_{ic,kh,kw} w[oc,ic,kh,kw] · x[n,ic, oh*SH - PH + kh*DH, ow*SW - PW + kw*DW]
// (terms whose input index falls in the padding are zero).
// x: (N,IC,IH,IW)  w: (OC,IC,KH,KW)  b: (OC) or null  y: (N,OC,OH,OW), assigned.
template <class T>
void conv2d_forward(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y);
// dx[n,ic,ih,iw] += Σ w[oc,ic,kh,kw] · dy[n,oc,oh,ow] over every (oc,kh,kw,oh,ow) that read it.
template <class T>
void conv2d_backward_data(const Conv2dShape& s, const T* w, const T* dy, T* dx);
// dw[oc,ic,kh,kw] += Σ_{n,oh,ow} dy[n,oc,oh,ow] · x[n,ic,ih,iw];  db[oc] += Σ_{n,oh,ow} dy[n,oc,oh,ow].
template <class T>
void conv2d_backward_weights(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* db);

// --- pooling -------------------------------------------------------------------------------
// y[n,c,oh,ow] = max of x over the window (padding never wins). argmax (optional) receives the
// flat in-plane index ih*IW + iw of the winner. Ties go to the first element in row-major order.
template <class T>
void maxpool2d_forward(const Pool2dShape& s, const T* x, T* y, int32_t* argmax);
// dx[n,c,argmax] += dy[n,c,oh,ow]: the gradient goes to the selected element only.
template <class T>
void maxpool2d_backward(const Pool2dShape& s, const T* dy, const int32_t* argmax, T* dx);
// y = (Σ of x over the window) / divisor. count_pad: divisor KH*KW (padding counts as zeros,
// PyTorch's count_include_pad=True); otherwise the number of real input elements in the window.
template <class T>
void avgpool2d_forward(const Pool2dShape& s, bool count_pad, const T* x, T* y);
// dx[each element of the window] += dy / divisor: the gradient is shared equally.
template <class T>
void avgpool2d_backward(const Pool2dShape& s, bool count_pad, const T* dy, T* dx);
// Global average pooling over `planes` planes of `size` values:
// y[p] = (1/size) Σ_i x[p,i];  dx[p,i] += dy[p] / size.
template <class T> void global_avgpool_forward(int64_t planes, int64_t size, const T* x, T* y);
template <class T>
void global_avgpool_backward(int64_t planes, int64_t size, const T* dy, T* dx);

// --- fully connected -----------------------------------------------------------------------
// y[n,o] = b[o] + Σ_i x[n,i] · w[o,i]. x: (N,IN) w: (OUT,IN) b: (OUT) or null y: (N,OUT), assigned.
template <class T>
void linear_forward(const LinearShape& s, const T* x, const T* w, const T* b, T* y);
// dx[n,i] += Σ_o dy[n,o] · w[o,i]
template <class T>
void linear_backward_data(const LinearShape& s, const T* w, const T* dy, T* dx);
// dw[o,i] += Σ_n dy[n,o] · x[n,i];  db[o] += Σ_n dy[n,o]
template <class T>
void linear_backward_weights(const LinearShape& s, const T* x, const T* dy, T* dw, T* db);

// --- merges (a graph's nodes of several inputs) ----------------------------------------------
// add: y = Σ_i x_i over count values, summed in input order: (x0 + x1) + x2 + ...
template <class T>
void add_forward(int64_t count, std::span<const T* const> xs, T* y);
// dx_i = dy where assign[i], else dx_i += dy (a null dx_i is skipped); in input order, so a
// tensor given twice is assigned, then added to.
template <class T>
void add_backward(int64_t count, const T* dy, std::span<T* const> dxs,
                  std::span<const bool> assign);
// concat along channels of N images of channels[i] x inner values each:
// y[n, offset_i + c, :] = x_i[n, c, :] with offset_i = Σ_{j<i} channels[j]
template <class T>
void concat_forward(int64_t N, int64_t inner, std::span<const int64_t> channels,
                    std::span<const T* const> xs, T* y);
// dx_i[n, c, :] += dy[n, offset_i + c, :] (a null dx_i is skipped)
template <class T>
void concat_backward(int64_t N, int64_t inner, std::span<const int64_t> channels, const T* dy,
                     std::span<T* const> dxs);

// --- activations (elementwise over count values) -------------------------------------------
// relu: y = max(x, 0); dx += dy · [x > 0]
template <class T> void relu_forward(int64_t count, const T* x, T* y);
template <class T> void relu_backward(int64_t count, const T* x, const T* dy, T* dx);
// leaky relu: y = x if x > 0 else slope·x; dx += dy · (x > 0 ? 1 : slope)
template <class T> void leaky_relu_forward(int64_t count, T slope, const T* x, T* y);
template <class T> void leaky_relu_backward(int64_t count, T slope, const T* x, const T* dy, T* dx);
// sigmoid: y = 1 / (1 + e^-x); dx += dy · y · (1 - y)
template <class T> void sigmoid_forward(int64_t count, const T* x, T* y);
template <class T> void sigmoid_backward(int64_t count, const T* y, const T* dy, T* dx);
// tanh: y = tanh(x); dx += dy · (1 - y²)
template <class T> void tanh_forward(int64_t count, const T* x, T* y);
template <class T> void tanh_backward(int64_t count, const T* y, const T* dy, T* dx);
// softmax over each row of (rows, cols): y = e^(x - max) / Σ e^(x - max);
// dx_i += y_i · (dy_i - Σ_j dy_j · y_j)  (the Jacobian diag(y) - y yᵀ applied to dy)
template <class T> void softmax_forward(int64_t rows, int64_t cols, const T* x, T* y);
template <class T>
void softmax_backward(int64_t rows, int64_t cols, const T* y, const T* dy, T* dx);

// gelu (exact): y = x·Φ(x), Φ(x) = (1 + erf(x/√2))/2;  dx += dy · (Φ(x) + x·φ(x)),
// φ(x) = e^(−x²/2)/√(2π)
template <class T> void gelu_forward(int64_t count, const T* x, T* y);
template <class T> void gelu_backward(int64_t count, const T* x, const T* dy, T* dx);
// silu: y = x·σ(x);  dx += dy · σ(x)·(1 + x·(1 − σ(x)))
template <class T> void silu_forward(int64_t count, const T* x, T* y);
template <class T> void silu_backward(int64_t count, const T* x, const T* dy, T* dx);
// elu: y = x if x > 0 else α(e^x − 1);  dx += dy · (x > 0 ? 1 : α·e^x)
template <class T> void elu_forward(int64_t count, T alpha, const T* x, T* y);
template <class T> void elu_backward(int64_t count, T alpha, const T* x, const T* dy, T* dx);

// --- batch normalisation (x: (N, C, HW); per-channel vectors: (C)) ---------------------------
// mean[c] = (1/M) Σ x[n,c,i];  var[c] = (1/M) Σ (x[n,c,i] − mean[c])²  (biased; two passes).
template <class T>
void batchnorm_stats(const BatchNormShape& s, const T* x, T* mean, T* var);
// y[n,c,i] = gamma[c]·(x[n,c,i] − mean[c])·invstd[c] + beta[c], assigned. gamma and beta may be
// null (1 and 0).
template <class T>
void batchnorm_forward(const BatchNormShape& s, const T* x, const T* mean, const T* invstd,
                       const T* gamma, const T* beta, T* y);
// With x̂ = (x − mean[c])·invstd[c], k = gamma[c]·invstd[c]:
//   dgamma[c] += Σ dy·x̂;  dbeta[c] += Σ dy  (each optional)
//   dx (optional) += batch_stats ? k/M·(M·dy − Σ dy − x̂·Σ dy·x̂)   (mean and invstd came from
//                                                                     this batch: training)
//                                : k·dy                             (fixed statistics: eval)
template <class T>
void batchnorm_backward(const BatchNormShape& s, bool batch_stats, const T* x, const T* dy,
                        const T* mean, const T* invstd, const T* gamma, T* dx, T* dgamma,
                        T* dbeta);

// --- elementwise (over count values) ---------------------------------------------------------
// y = value
template <class T>
void fill(int64_t count, T value, T* y);
// x = s·x (gradient clipping)
template <class T>
void scale(int64_t count, T s, T* x);
// y = x
template <class T>
void copy(int64_t count, const T* x, T* y);
// y += x
template <class T>
void accumulate(int64_t count, const T* x, T* y);
// y = x ⊙ m
template <class T>
void multiply(int64_t count, const T* x, const T* m, T* y);
// y += x ⊙ m
template <class T>
void multiply_accumulate(int64_t count, const T* x, const T* m, T* y);
// Σ x², each square and the running sum in double, in index order (a gradient's squared L2
// norm; the order is part of the result).
template <class T>
double sum_squares(int64_t count, const T* x);

// --- bias over channels (y, dy: (N, C, HW); b, db: (C)) ---------------------------------------
// y[n,c,i] += b[c]
template <class T>
void bias_forward(const BiasShape& s, const T* b, T* y);
// db[c] += Σ_n (Σ_i dy[n,c,i]): each plane summed in T on its own, then added to db[c] in n order.
template <class T>
void bias_backward(const BiasShape& s, const T* dy, T* db);

// --- dropout ------------------------------------------------------------------------------------
// m[i] = (u_i >= p) ? scale : 0 with u_i = rng.uniform() drawn in index order (inverted dropout:
// scale = 1/(1 − p)). Sequential: every mask depends on the stream's order.
template <class T>
void dropout_mask(int64_t count, double p, T scale, Rng& rng, T* m);

// --- optimizer updates (one step over count parameters; the state arrays beside them) --------
// SGD:  d = g + wd·p;  buf (when not null) = first ? d : μ·buf + damp·d,
//       d = nesterov ? d + μ·buf : buf;  p −= lr·d
template <class T>
void sgd_update(int64_t count, const SgdStep<T>& c, T* p, const T* g, T* buf);
// Adam: d = g + wd·p (AdamW: p = p·decay, d = g);  m = β1·m + (1 − β1)·d;  v = β2·v + (1 − β2)·d²;
//       p −= step_size·m / (sqrt(v) / sqrt_bc2 + eps)
template <class T>
void adam_update(int64_t count, const AdamStep<T>& c, T* p, const T* g, T* m, T* v);
// RMSProp: d = g + wd·p;  v = α·v + (1 − α)·d²;
//          centered: g_avg = α·g_avg + (1 − α)·d, avg = sqrt(v − g_avg²) + eps; else
//          avg = sqrt(v) + eps;  momentum: buf = μ·buf + d/avg, p −= lr·buf; else p −= lr·d/avg
template <class T>
void rmsprop_update(int64_t count, const RmsPropStep<T>& c, T* p, const T* g, T* v, T* g_avg,
                    T* buf);

// --- losses (mean over the batch; the gradient is assigned, it starts backpropagation) -------
// M is the mean's denominator: N (count) for a whole batch, the whole batch's for a shard of it.
// L = (1/M) Σ_n [logsumexp(z_n) - z_n[label_n]];  dz (optional) = (softmax(z) - onehot) / M.
// z: (N, K) logits; labels in [0, K) (checked by the caller).
template <class T>
T softmax_cross_entropy(int64_t N, int64_t M, int64_t K, const T* z, const int32_t* labels,
                        T* dz);
// L = (1/M) Σ (p - t)²;  dp (optional) = 2 (p - t) / M, over count elements; M = count for a
// whole batch (PyTorch's MSELoss 'mean').
template <class T>
T mse(int64_t count, int64_t M, const T* p, const T* t, T* dp);
// L = (1/M) Σ |p - t|;  dp = sign(p - t) / M (0 where p = t; PyTorch's L1Loss).
template <class T>
T l1(int64_t count, int64_t M, const T* p, const T* t, T* dp);
// L = (1/M) Σ h(p - t), h(d) = ½d² for |d| < δ, δ(|d| - ½δ) otherwise;
// dp = (|d| < δ ? d : δ·sign(d)) / M (PyTorch's HuberLoss).
template <class T>
T huber(int64_t count, int64_t M, T delta, const T* p, const T* t, T* dp);

}  // namespace convnet::ops::ref
