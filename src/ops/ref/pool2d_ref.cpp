// Reference max, average and global average pooling. Max routes each gradient to the one
// selected element; average shares it equally over the window (or the plane).
#include <algorithm>
#include <limits>

#include "ops/ref/ref.hpp"

namespace convnet::ops::ref {

template <class T>
void maxpool2d_forward(const Pool2dShape& s, const T* x, T* y, int32_t* argmax) {
  const int64_t OH = s.OH(), OW = s.OW();
  for (int64_t plane = 0; plane < s.N * s.C; ++plane) {
    const T* xp = x + plane * s.IH * s.IW;
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        T best = -std::numeric_limits<T>::infinity();
        int64_t best_index = -1;
        for (int64_t kh = 0; kh < s.KH; ++kh) {
          const int64_t ih = oh * s.SH - s.PH + kh;
          if (ih < 0 || ih >= s.IH) continue;  // padding is -inf: never selected
          for (int64_t kw = 0; kw < s.KW; ++kw) {
            const int64_t iw = ow * s.SW - s.PW + kw;
            if (iw < 0 || iw >= s.IW) continue;
            const T v = xp[ih * s.IW + iw];
            // Strict '>' keeps the first maximum; NaN is propagated like PyTorch does.
            if (v > best || best_index < 0 || v != v) {
              best = v;
              best_index = ih * s.IW + iw;
              if (v != v) break;
            }
          }
        }
        const int64_t o = plane * OH * OW + oh * OW + ow;
        y[o] = best;
        if (argmax) argmax[o] = static_cast<int32_t>(best_index);
      }
  }
}

template <class T>
void maxpool2d_backward(const Pool2dShape& s, const T* dy, const int32_t* argmax, T* dx) {
  const int64_t out_plane = s.OH() * s.OW();
  for (int64_t plane = 0; plane < s.N * s.C; ++plane)
    for (int64_t o = 0; o < out_plane; ++o) {
      const int32_t i = argmax[plane * out_plane + o];
      if (i >= 0) dx[plane * s.IH * s.IW + i] += dy[plane * out_plane + o];
    }
}

namespace {
// Number of elements the average divides by for output (oh, ow).
int64_t avg_divisor(const Pool2dShape& s, bool count_pad, int64_t oh, int64_t ow) {
  if (count_pad) return s.KH * s.KW;
  const int64_t h0 = std::max<int64_t>(oh * s.SH - s.PH, 0);
  const int64_t h1 = std::min<int64_t>(oh * s.SH - s.PH + s.KH, s.IH);
  const int64_t w0 = std::max<int64_t>(ow * s.SW - s.PW, 0);
  const int64_t w1 = std::min<int64_t>(ow * s.SW - s.PW + s.KW, s.IW);
  return (h1 - h0) * (w1 - w0);
}
}  // namespace

template <class T>
void avgpool2d_forward(const Pool2dShape& s, bool count_pad, const T* x, T* y) {
  const int64_t OH = s.OH(), OW = s.OW();
  for (int64_t plane = 0; plane < s.N * s.C; ++plane) {
    const T* xp = x + plane * s.IH * s.IW;
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        T sum = 0;
        for (int64_t kh = 0; kh < s.KH; ++kh) {
          const int64_t ih = oh * s.SH - s.PH + kh;
          if (ih < 0 || ih >= s.IH) continue;
          for (int64_t kw = 0; kw < s.KW; ++kw) {
            const int64_t iw = ow * s.SW - s.PW + kw;
            if (iw < 0 || iw >= s.IW) continue;
            sum += xp[ih * s.IW + iw];
          }
        }
        y[plane * OH * OW + oh * OW + ow] =
            sum / static_cast<T>(avg_divisor(s, count_pad, oh, ow));
      }
  }
}

template <class T>
void avgpool2d_backward(const Pool2dShape& s, bool count_pad, const T* dy, T* dx) {
  const int64_t OH = s.OH(), OW = s.OW();
  for (int64_t plane = 0; plane < s.N * s.C; ++plane) {
    T* dxp = dx + plane * s.IH * s.IW;
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const T share =
            dy[plane * OH * OW + oh * OW + ow] / static_cast<T>(avg_divisor(s, count_pad, oh, ow));
        for (int64_t kh = 0; kh < s.KH; ++kh) {
          const int64_t ih = oh * s.SH - s.PH + kh;
          if (ih < 0 || ih >= s.IH) continue;
          for (int64_t kw = 0; kw < s.KW; ++kw) {
            const int64_t iw = ow * s.SW - s.PW + kw;
            if (iw < 0 || iw >= s.IW) continue;
            dxp[ih * s.IW + iw] += share;
          }
        }
      }
  }
}

// Global average pooling: one mean per plane.
template <class T>
void global_avgpool_forward(int64_t planes, int64_t size, const T* x, T* y) {
  for (int64_t p = 0; p < planes; ++p) {
    T sum = 0;
    for (int64_t i = 0; i < size; ++i) sum += x[p * size + i];
    y[p] = sum / static_cast<T>(size);
  }
}

template <class T>
void global_avgpool_backward(int64_t planes, int64_t size, const T* dy, T* dx) {
  for (int64_t p = 0; p < planes; ++p) {
    const T share = dy[p] / static_cast<T>(size);
    for (int64_t i = 0; i < size; ++i) dx[p * size + i] += share;
  }
}

#define CONVNET_INSTANTIATE(T)                                                               \
  template void maxpool2d_forward<T>(const Pool2dShape&, const T*, T*, int32_t*);            \
  template void maxpool2d_backward<T>(const Pool2dShape&, const T*, const int32_t*, T*);     \
  template void avgpool2d_forward<T>(const Pool2dShape&, bool, const T*, T*);                \
  template void avgpool2d_backward<T>(const Pool2dShape&, bool, const T*, T*);               \
  template void global_avgpool_forward<T>(int64_t, int64_t, const T*, T*);                   \
  template void global_avgpool_backward<T>(int64_t, int64_t, const T*, T*);
CONVNET_INSTANTIATE(float)
CONVNET_INSTANTIATE(double)

}  // namespace convnet::ops::ref
