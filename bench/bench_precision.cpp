// How far each convolution algorithm's float and bf16 results lie from the exact ones: the RMS
// and the largest error of a forward pass, as a share of the exact output's RMS, for every
// forward variant the dispatch would run in each precision and Winograd tile, on 3x3 convolutions
// of post-ReLU-like data (uniform [0, 1) inputs, weights uniform in [-0.1, 0.1)). The
// reference runs in double. Usage: build/bench_precision [channels] [size] [batch]. Not a test:
// it asserts nothing (the kernel tests bound the same errors).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "convnet/context.hpp"
#include "convnet/rng.hpp"
#include "ops/kernels.hpp"

using namespace convnet;

int main(int argc, char** argv) {
  const int64_t C = argc > 1 ? std::atoll(argv[1]) : 32, H = argc > 2 ? std::atoll(argv[2]) : 16;
  const int64_t N = argc > 3 ? std::atoll(argv[3]) : 4;
  const ops::Conv2dShape s{
      .N = N, .IC = C, .IH = H, .IW = H, .OC = C, .KH = 3, .KW = 3, .PH = 1, .PW = 1};
  Rng rng(1);
  std::vector<float> x(static_cast<size_t>(N * C * H * H)), w(static_cast<size_t>(C * C * 9)),
      y(static_cast<size_t>(N * C * H * H));
  for (auto& v : x) v = static_cast<float>(rng.uniform());
  for (auto& v : w) v = static_cast<float>(0.2 * rng.uniform() - 0.1);
  const std::vector<double> xd(x.begin(), x.end()), wd(w.begin(), w.end());
  std::vector<double> exact(y.size());
  ops::ref::conv2d_forward<double>(s, xd.data(), wd.data(), nullptr, exact.data());
  double square = 0;
  for (double v : exact) square += v * v;
  const double rms = std::sqrt(square / static_cast<double>(exact.size()));
  std::printf(
      "3x3 convolution %lld -> %lld channels, %lldx%lld maps, batch %lld: error as a "
      "share of the output's RMS\n",
      static_cast<long long>(C), static_cast<long long>(C), static_cast<long long>(H),
      static_cast<long long>(H), static_cast<long long>(N));
  std::printf("%-10s %-6s %-22s %12s %12s\n", "precision", "tile", "variant", "RMS error",
              "max error");
  std::vector<Precision> precisions{Precision::Fp32};
  if (cpu_has_bf16()) precisions.push_back(Precision::Bf16);
  for (Precision precision : precisions)
    for (WinogradTile tile : {WinogradTile::F4x4, WinogradTile::F2x2}) {
      const Context ctx({.threads = 1, .winograd_tile = tile, .precision = precision});
      // Every variant of this precision that supports the shape here.
      for (const auto& variant : ops::conv2d_forward_variants()) {
        if (!variant.supports(ctx, s)) continue;
        if ((precision == Precision::Bf16) != (variant.isa == ops::Isa::Avx512Bf16)) continue;
        if (tile == WinogradTile::F2x2 && !std::strstr(variant.name, "f2x2")) continue;
        std::vector<float> ws(static_cast<size_t>(ops::cpu::conv2d_workspace_size(s, 1)));
        variant.run(ctx, s, x.data(), w.data(), nullptr, y.data(), ws.data());
        double se = 0, worst = 0;
        for (size_t i = 0; i < y.size(); ++i) {
          const double e = std::abs(y[i] - exact[i]);
          se += e * e;
          worst = std::max(worst, e);
        }
        std::printf("%-10s %-6s %-22s %12.2e %12.2e\n", precision_name(precision),
                    tile == WinogradTile::F4x4 ? "F4x4" : "F2x2", variant.name,
                    std::sqrt(se / static_cast<double>(y.size())) / rms, worst / rms);
      }
    }
  return 0;
}
