// Per-layer kernel throughput: GFLOP/s of the fast convolution kernels (forward, backward data,
// backward weights) on the convolution shapes of the built-in models, to show where a training
// step's time goes: first what dispatch runs (the first variant of each table in
// ops/kernels.hpp that supports the shape, named), then every variant of the tables that
// supports the shape, then the Winograd and direct kernels called directly on the shapes both
// accept. Usage: build/bench_kernels [threads] [batch] [fp32|bf16] (bf16: the context's precision,
// so that dispatch and the variant list include the mixed-precision variants). Not a test: it
// asserts nothing.
#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "convnet/context.hpp"
#include "ops/kernels.hpp"

using convnet::ops::Conv2dShape;
namespace cpu = convnet::ops::cpu;

template <class Fn>
double median_seconds(Fn&& fn) {
  fn();  // warm-up: packing buffers, thread pool
  std::vector<double> times;
  for (int r = 0; r < 7; ++r) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const int64_t N = argc > 2 ? std::atoll(argv[2]) : 64;
  const convnet::Context ctx(
      {.threads = threads,
       .precision = convnet::precision_from_name(argc > 3 ? argv[3] : "fp32")});
  struct Case {
    const char* name;
    Conv2dShape s;
  } cases[] = {
      {"lenet conv1 1->6 5x5 p2 28x28", {.IC = 1, .IH = 28, .IW = 28, .OC = 6, .KH = 5, .KW = 5, .PH = 2, .PW = 2}},
      {"lenet conv2 6->16 5x5 14x14", {.IC = 6, .IH = 14, .IW = 14, .OC = 16, .KH = 5, .KW = 5}},
      {"vgg conv1 3->32 3x3 32x32", {.IC = 3, .IH = 32, .IW = 32, .OC = 32, .KH = 3, .KW = 3, .PH = 1, .PW = 1}},
      {"vgg conv2 32->32 3x3 32x32", {.IC = 32, .IH = 32, .IW = 32, .OC = 32, .KH = 3, .KW = 3, .PH = 1, .PW = 1}},
      {"vgg conv3 32->64 3x3 16x16", {.IC = 32, .IH = 16, .IW = 16, .OC = 64, .KH = 3, .KW = 3, .PH = 1, .PW = 1}},
      {"vgg conv4 64->64 3x3 16x16", {.IC = 64, .IH = 16, .IW = 16, .OC = 64, .KH = 3, .KW = 3, .PH = 1, .PW = 1}},
      {"vgg conv5 64->128 3x3 8x8", {.IC = 64, .IH = 8, .IW = 8, .OC = 128, .KH = 3, .KW = 3, .PH = 1, .PW = 1}},
      {"resnet stage1 32->32 3x3 32x32", {.IC = 32, .IH = 32, .IW = 32, .OC = 32, .KH = 3, .KW = 3, .PH = 1, .PW = 1}},
      {"resnet stage2.0 32->64 3x3 /2", {.IC = 32, .IH = 32, .IW = 32, .OC = 64, .KH = 3, .KW = 3, .SH = 2, .SW = 2, .PH = 1, .PW = 1}},
      {"resnet stage2.0 32->64 1x1 /2", {.IC = 32, .IH = 32, .IW = 32, .OC = 64, .KH = 1, .KW = 1, .SH = 2, .SW = 2}},
      {"resnet stage2 64->64 3x3 16x16", {.IC = 64, .IH = 16, .IW = 16, .OC = 64, .KH = 3, .KW = 3, .PH = 1, .PW = 1}},
      {"resnet stage3.0 64->128 3x3 /2", {.IC = 64, .IH = 16, .IW = 16, .OC = 128, .KH = 3, .KW = 3, .SH = 2, .SW = 2, .PH = 1, .PW = 1}},
      {"resnet stage3.0 64->128 1x1 /2", {.IC = 64, .IH = 16, .IW = 16, .OC = 128, .KH = 1, .KW = 1, .SH = 2, .SW = 2}},
      {"resnet stage3 128->128 3x3 8x8", {.IC = 128, .IH = 8, .IW = 8, .OC = 128, .KH = 3, .KW = 3, .PH = 1, .PW = 1}},
  };
  auto list = [](const char* op, auto table) {
    std::printf("%-24s", op);
    for (const auto& v : table) std::printf(" %s(%s)", v.name, convnet::ops::isa_name(v.isa));
    std::printf("\n");
  };
  std::printf("kernel tables, in dispatch order:\n");
  list("conv2d forward", convnet::ops::conv2d_forward_variants());
  list("conv2d backward data", convnet::ops::conv2d_backward_data_variants());
  list("conv2d backward weights", convnet::ops::conv2d_backward_weights_variants());
  std::printf("micro-kernel %s, %d thread(s), batch %lld, %s; GFLOP/s (median of 7)\n",
              cpu::sgemm_kernel_name(), threads, static_cast<long long>(N),
              convnet::precision_name(ctx.precision()));
  std::printf("%-34s %9s %9s %9s  %s\n", "layer", "forward", "bwd data", "bwd wgt",
              "variants (forward / data / weights)");
  for (auto& c : cases) {
    Conv2dShape s = c.s;
    s.N = N;
    const double flops = 2.0 * s.N * s.OC * s.OH() * s.OW() * s.IC * s.KH * s.KW;
    std::vector<float> x(s.N * s.IC * s.IH * s.IW, 0.5f), w(s.OC * s.IC * s.KH * s.KW, 0.1f),
        b(s.OC), y(s.N * s.OC * s.OH() * s.OW()), dy(y.size(), 0.01f), dx(x.size()), dw(w.size()),
        db(b.size()), ws(cpu::conv2d_workspace_size(s, threads));
    const double f = median_seconds([&] { cpu::conv2d_forward(ctx, s, x.data(), w.data(), b.data(), y.data(), ws.data()); });
    const double d = median_seconds([&] { cpu::conv2d_backward_data(ctx, s, w.data(), dy.data(), dx.data(), ws.data()); });
    const double g = median_seconds([&] { cpu::conv2d_backward_weights(ctx, s, x.data(), dy.data(), dw.data(), db.data(), ws.data()); });
    std::printf("%-34s %9.1f %9.1f %9.1f  %s / %s / %s\n", c.name, flops / f / 1e9,
                flops / d / 1e9, flops / g / 1e9,
                convnet::ops::select(ctx, convnet::ops::conv2d_forward_variants(), s).name,
                convnet::ops::select(ctx, convnet::ops::conv2d_backward_data_variants(), s).name,
                convnet::ops::select(ctx, convnet::ops::conv2d_backward_weights_variants(), s).name);
  }
  // Every variant of the three tables on each shape it supports (dispatch runs the first).
  std::printf("\nby variant (the tables in dispatch order; GFLOP/s)\n");
  std::printf("%-34s %-18s %-18s %9s\n", "layer", "direction", "variant", "GFLOP/s");
  for (auto& c : cases) {
    Conv2dShape s = c.s;
    s.N = N;
    const double flops = 2.0 * s.N * s.OC * s.OH() * s.OW() * s.IC * s.KH * s.KW;
    std::vector<float> x(s.N * s.IC * s.IH * s.IW, 0.5f), w(s.OC * s.IC * s.KH * s.KW, 0.1f),
        b(s.OC), y(s.N * s.OC * s.OH() * s.OW()), dy(y.size(), 0.01f), dx(x.size()), dw(w.size()),
        db(b.size()), ws(cpu::conv2d_workspace_size(s, threads));
    auto report = [&](const char* direction, const char* variant, double seconds) {
      std::printf("%-34s %-18s %-18s %9.1f\n", c.name, direction, variant, flops / seconds / 1e9);
    };
    for (const auto& v : convnet::ops::conv2d_forward_variants())
      if (v.supports(ctx, s))
        report("forward", v.name, median_seconds([&] {
                 v.run(ctx, s, x.data(), w.data(), b.data(), y.data(), ws.data());
               }));
    for (const auto& v : convnet::ops::conv2d_backward_data_variants())
      if (v.supports(ctx, s))
        report("backward data", v.name, median_seconds([&] {
                 v.run(ctx, s, w.data(), dy.data(), dx.data(), ws.data(), true);
               }));
    for (const auto& v : convnet::ops::conv2d_backward_weights_variants())
      if (v.supports(ctx, s))
        report("backward weights", v.name, median_seconds([&] {
                 v.run(ctx, s, x.data(), dy.data(), dw.data(), db.data(), ws.data());
               }));
  }
  // The algorithms the tables choose between, each called directly, on the shapes both
  // accept, also where supports() turns a variant down: what the tables' predicates rest on. GFLOP/s counts direct-convolution FLOPs throughout; nan
  // where the direct kernel does not apply (it leaves small padded images to the GEMM).
  std::printf("\nby algorithm (GFLOP/s of the direct-equivalent FLOPs)\n");
  std::printf("%-34s %9s %9s %9s %9s %9s %9s\n", "layer", "fwd dir", "fwd F2", "fwd F4",
              "wgt dir", "wgt F2", "wgt F4");
  for (auto& c : cases) {
    Conv2dShape s = c.s;
    s.N = N;
    if (!cpu::conv2d_winograd_supported(s) || s.IC < 8) continue;
    const bool direct = cpu::conv2d_direct_supported(s);
    const double flops = 2.0 * s.N * s.OC * s.OH() * s.OW() * s.IC * s.KH * s.KW;
    const int64_t ws_size = std::max(
        {cpu::conv2d_direct_workspace_size(s, threads),
         cpu::conv2d_direct_backward_weights_workspace_size(s, threads),
         cpu::conv2d_winograd_workspace_size(s, threads),
         cpu::conv2d_winograd4_workspace_size(s, threads),
         cpu::conv2d_winograd_backward_weights_workspace_size(s, threads),
         cpu::conv2d_winograd4_backward_weights_workspace_size(s, threads)});
    std::vector<float> x(s.N * s.IC * s.IH * s.IW, 0.5f), w(s.OC * s.IC * s.KH * s.KW, 0.1f),
        b(s.OC), y(s.N * s.OC * s.OH() * s.OW()), dy(y.size(), 0.01f), dw(w.size()), db(b.size()),
        ws(ws_size);
    const double fd = !direct ? NAN : median_seconds([&] { cpu::conv2d_direct(ctx, s, x.data(), w.data(), false, b.data(), y.data(), false, ws.data()); });
    const double fw = median_seconds([&] { cpu::conv2d_winograd(ctx, s, x.data(), w.data(), false, b.data(), y.data(), false, ws.data()); });
    const double f4 = median_seconds([&] { cpu::conv2d_winograd4(ctx, s, x.data(), w.data(), false, b.data(), y.data(), false, ws.data()); });
    const double gd = !direct ? NAN : median_seconds([&] { cpu::conv2d_direct_backward_weights(ctx, s, x.data(), dy.data(), dw.data(), db.data(), ws.data()); });
    const double gw = median_seconds([&] { cpu::conv2d_winograd_backward_weights(ctx, s, x.data(), dy.data(), dw.data(), db.data(), ws.data()); });
    const double g4 = median_seconds([&] { cpu::conv2d_winograd4_backward_weights(ctx, s, x.data(), dy.data(), dw.data(), db.data(), ws.data()); });
    std::printf("%-34s %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f\n", c.name, flops / fd / 1e9,
                flops / fw / 1e9, flops / f4 / 1e9, flops / gd / 1e9, flops / gw / 1e9,
                flops / g4 / 1e9);
  }
}
