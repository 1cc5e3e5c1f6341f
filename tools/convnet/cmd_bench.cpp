// convnet bench: training and inference throughput of a built-in model on synthetic data.
// Each figure is the median of several timed windows after a warm-up, so one slow window (the
// host is shared) does not decide it. Reports images/s, GFLOP/s and the peak resident memory.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <vector>

#include "args.hpp"
#include "commands.hpp"
#include "common_flags.hpp"
#include "convnet/runtime.hpp"
#include "convnet/spec.hpp"

namespace convnet::cli {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

// Runs `step` repeatedly: warm-up, then `windows` windows of about `window_s` seconds each.
// Returns the images/s of each window.
template <class Step>
std::vector<double> time_windows(Step&& step, int64_t batch, int warmup, int windows,
                                 double window_s) {
  using clock = std::chrono::steady_clock;
  auto seconds_since = [](clock::time_point t) {
    return std::chrono::duration<double>(clock::now() - t).count();
  };
  const auto warm_start = clock::now();
  for (int i = 0; i < warmup; ++i) step();
  const double per_step = std::max(seconds_since(warm_start) / std::max(warmup, 1), 1e-6);
  const int steps = std::max(1, static_cast<int>(window_s / per_step));
  std::vector<double> rates;
  for (int w = 0; w < windows; ++w) {
    const auto start = clock::now();
    for (int i = 0; i < steps; ++i) step();
    rates.push_back(static_cast<double>(steps * batch) / seconds_since(start));
  }
  return rates;
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  ArgParser args("convnet bench",
                 "Measures training-step and inference throughput of a built-in model on\n"
                 "synthetic data (SGD with momentum, softmax cross-entropy): the median images/s\n"
                 "of several timed windows after a warm-up, the GFLOP/s that implies, and the\n"
                 "process's peak resident memory.");
  add_model_flag(args);
  args.add("input", "", "one sample's shape CxHxW (default: 1x28x28 for lenet, 3x32x32 otherwise)");
  args.add("batch", "64", "mini-batch size");
  add_context_flags(args);
  args.add("warmup", "5", "untimed steps before measuring");
  args.add("windows", "7", "timed windows; the median is reported");
  args.add("window-seconds", "0.5", "approximate length of one window");
  args.add("seed", "1", "seed for weights and synthetic data");
  args.add_switch("reference", "run the reference kernels instead of the fast ones");
  args.add_switch("profile", "also print each layer's share of a training step");
  args.add_switch("json", "print one JSON object instead of a table");
  if (!args.parse(argc, argv, 2)) {
    std::cout << args.help();
    return 0;
  }
  const std::string name = args.get("model");
  const Shape sample = parse_chw("input", args.get("input").empty()
                                              ? (name == "lenet" ? "1x28x28" : "3x32x32")
                                              : args.get("input"));
  const int64_t batch = args.get_int("batch", 1);
  const int warmup = static_cast<int>(args.get_int("warmup", 0));
  const int windows = static_cast<int>(args.get_int("windows", 1));
  const double window_s = args.get_double("window-seconds");
  const uint64_t seed = static_cast<uint64_t>(args.get_int("seed", 0));
  apply_context_flags(args, "convnet bench");
  if (args.get_switch("reference")) set_backend(Backend::Reference);

  std::unique_ptr<Model<float>> owned = load_model<float>(name, 10);
  Model<float>& model = *owned;
  model.build(Shape{batch, sample[0], sample[1], sample[2]}, seed);
  Rng rng(seed + 1);
  Tensor<float> x(model.input_shape());
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(rng.uniform());
  std::vector<int32_t> labels(static_cast<size_t>(batch));
  for (auto& l : labels) l = static_cast<int32_t>(rng.below(10));
  SoftmaxCrossEntropy<float> loss;
  Sgd<float> sgd({.lr = 0.001, .momentum = 0.9});

  const auto train = time_windows([&] { model.train_step(x, {.labels = labels}, loss, sgd); },
                                  batch, warmup, windows, window_s);
  const auto infer = time_windows([&] { model.predict(x); }, batch, warmup, windows, window_s);
  const double train_rate = median(train), infer_rate = median(infer);
  if (args.get_switch("profile")) {  // separate run, so the clock reads do not touch the figures
    const int steps = 10;
    model.set_profiling(true);
    for (int i = 0; i < steps; ++i) model.train_step(x, {.labels = labels}, loss, sgd);
    double total = 0;
    for (const auto& t : model.layer_times()) total += t.forward + t.backward;
    std::fprintf(stderr, "%-32s %10s %10s %7s\n", "layer (ms per step)", "forward", "backward",
                 "share");
    for (const auto& t : model.layer_times()) {
      std::fprintf(stderr, "%-32s %10.3f %10.3f %6.1f%%\n", t.layer.c_str(),
                   1e3 * t.forward / steps, 1e3 * t.backward / steps,
                   100 * (t.forward + t.backward) / total);
    }
    model.set_profiling(false);
  }
  const Model<float>::MemoryUse memory = model.memory_use();
  const auto mb = [](int64_t bytes) { return static_cast<double>(bytes) / (1 << 20); };
  const double train_gflops = train_rate * static_cast<double>(model.train_flops()) / 1e9;
  const double infer_gflops = infer_rate * static_cast<double>(model.forward_flops()) / 1e9;

  if (args.get_switch("json")) {
    std::printf("{\"model\": \"%s\", \"input\": \"%s\", \"threads\": %d, \"batch\": %lld, "
                "\"backend\": \"%s\", \"precision\": \"%s\", \"train_images_per_s\": %.1f, \"infer_images_per_s\": %.1f, "
                "\"train_gflops\": %.2f, \"infer_gflops\": %.2f, \"train_flops_per_image\": %lld, "
                "\"peak_rss_mb\": %.1f, \"memory_mb\": {\"activations\": %.1f, "
                "\"node_gradients\": %.1f, \"parameters\": %.1f, \"scratch\": %.1f}, "
                "\"train_windows\": [",
                name.c_str(), sample.str().c_str(), num_threads(), static_cast<long long>(batch),
                backend() == Backend::Fast ? "fast" : "reference", precision_name(precision()),
                train_rate, infer_rate,
                train_gflops, infer_gflops, static_cast<long long>(model.train_flops()),
                peak_rss_mb(), mb(memory.activations), mb(memory.node_gradients),
                mb(memory.parameters), mb(memory.scratch));
    for (size_t i = 0; i < train.size(); ++i) std::printf("%s%.1f", i ? ", " : "", train[i]);
    std::printf("], \"infer_windows\": [");
    for (size_t i = 0; i < infer.size(); ++i) std::printf("%s%.1f", i ? ", " : "", infer[i]);
    std::printf("]}\n");
    return 0;
  }
  std::printf("model %s, input %s, batch %lld, threads %d, %s kernels, %s\n", name.c_str(),
              sample.str().c_str(), static_cast<long long>(batch), num_threads(),
              backend() == Backend::Fast ? "fast" : "reference", precision_name(precision()));
  std::printf("%-10s %14s %10s %14s\n", "", "images/s", "GFLOP/s", "MFLOP/image");
  std::printf("%-10s %14.1f %10.2f %14.3f\n", "train", train_rate, train_gflops,
              static_cast<double>(model.train_flops()) / 1e6);
  std::printf("%-10s %14.1f %10.2f %14.3f\n", "inference", infer_rate, infer_gflops,
              static_cast<double>(model.forward_flops()) / 1e6);
  std::printf("peak resident memory %.1f MB (median of %d windows)\n", peak_rss_mb(), windows);
  std::printf("of which the model: activations %.1f MB, node gradients %.1f MB, parameters and "
              "their gradients %.1f MB, kernel scratch %.1f MB\n",
              mb(memory.activations), mb(memory.node_gradients), mb(memory.parameters),
              mb(memory.scratch));
  return 0;
}

}  // namespace convnet::cli
