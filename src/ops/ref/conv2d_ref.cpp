// Reference 2-D convolution (cross-correlation, as in every framework): forward, backward data,
// backward weights as direct loops over the formula. Not fast; the oracle for ops/cpu.
// With G groups, output channel oc belongs to group g = oc / (OC/G) and reads only the input
// channels of that group, ic = g·(IC/G) + j, through weight w[oc, j, kh, kw].
#include "ops/ref/ref.hpp"

namespace convnet::ops::ref {

template <class T>
void conv2d_forward(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y) {
  const int64_t OH = s.OH(), OW = s.OW(), ICg = s.IC / s.G, OCg = s.OC / s.G;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t oc = 0; oc < s.OC; ++oc)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          T sum = b ? b[oc] : T(0);
          for (int64_t j = 0; j < ICg; ++j) {
            const int64_t ic = oc / OCg * ICg + j;
            for (int64_t kh = 0; kh < s.KH; ++kh) {
              const int64_t ih = oh * s.SH - s.PH + kh * s.DH;
              if (ih < 0 || ih >= s.IH) continue;  // zero padding
              for (int64_t kw = 0; kw < s.KW; ++kw) {
                const int64_t iw = ow * s.SW - s.PW + kw * s.DW;
                if (iw < 0 || iw >= s.IW) continue;
                sum += w[((oc * ICg + j) * s.KH + kh) * s.KW + kw] *
                       x[((n * s.IC + ic) * s.IH + ih) * s.IW + iw];
              }
            }
          }
          y[((n * s.OC + oc) * OH + oh) * OW + ow] = sum;
        }
}

template <class T>
void conv2d_backward_data(const Conv2dShape& s, const T* w, const T* dy, T* dx) {
  // Chain rule: each input element received w·x contributions in forward, so it gets w·dy back.
  const int64_t OH = s.OH(), OW = s.OW(), ICg = s.IC / s.G, OCg = s.OC / s.G;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t oc = 0; oc < s.OC; ++oc)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const T g = dy[((n * s.OC + oc) * OH + oh) * OW + ow];
          for (int64_t j = 0; j < ICg; ++j) {
            const int64_t ic = oc / OCg * ICg + j;
            for (int64_t kh = 0; kh < s.KH; ++kh) {
              const int64_t ih = oh * s.SH - s.PH + kh * s.DH;
              if (ih < 0 || ih >= s.IH) continue;
              for (int64_t kw = 0; kw < s.KW; ++kw) {
                const int64_t iw = ow * s.SW - s.PW + kw * s.DW;
                if (iw < 0 || iw >= s.IW) continue;
                dx[((n * s.IC + ic) * s.IH + ih) * s.IW + iw] +=
                    w[((oc * ICg + j) * s.KH + kh) * s.KW + kw] * g;
              }
            }
          }
        }
}

template <class T>
void conv2d_backward_weights(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* db) {
  const int64_t OH = s.OH(), OW = s.OW(), ICg = s.IC / s.G, OCg = s.OC / s.G;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t oc = 0; oc < s.OC; ++oc)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const T g = dy[((n * s.OC + oc) * OH + oh) * OW + ow];
          if (db) db[oc] += g;  // ∂y/∂b = 1 for every output position
          for (int64_t j = 0; j < ICg; ++j) {
            const int64_t ic = oc / OCg * ICg + j;
            for (int64_t kh = 0; kh < s.KH; ++kh) {
              const int64_t ih = oh * s.SH - s.PH + kh * s.DH;
              if (ih < 0 || ih >= s.IH) continue;
              for (int64_t kw = 0; kw < s.KW; ++kw) {
                const int64_t iw = ow * s.SW - s.PW + kw * s.DW;
                if (iw < 0 || iw >= s.IW) continue;
                dw[((oc * ICg + j) * s.KH + kh) * s.KW + kw] +=
                    x[((n * s.IC + ic) * s.IH + ih) * s.IW + iw] * g;
              }
            }
          }
        }
}

#define CONVNET_INSTANTIATE(T)                                                             \
  template void conv2d_forward<T>(const Conv2dShape&, const T*, const T*, const T*, T*);   \
  template void conv2d_backward_data<T>(const Conv2dShape&, const T*, const T*, T*);       \
  template void conv2d_backward_weights<T>(const Conv2dShape&, const T*, const T*, T*, T*);
CONVNET_INSTANTIATE(float)
CONVNET_INSTANTIATE(double)

}  // namespace convnet::ops::ref
