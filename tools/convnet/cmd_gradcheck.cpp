// convnet gradcheck: builds a model in double precision with random input and labels, and
// prints, per layer and tensor, how far backpropagation is from central finite differences.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "args.hpp"
#include "commands.hpp"
#include "common_flags.hpp"
#include "convnet/gradcheck.hpp"
#include "convnet/spec.hpp"

namespace convnet::cli {

int cmd_gradcheck(int argc, char** argv) {
  ArgParser args("convnet gradcheck",
                 "Checks backpropagation through every layer of a built-in model against\n"
                 "central finite differences, (L(v+eps) - L(v-eps)) / 2eps, in double precision,\n"
                 "for each layer's input and parameters. An element passes when\n"
                 "|analytic - numeric| <= atol + rtol*|numeric|; elements on a kink (ReLU at 0,\n"
                 "tied max-pool inputs) have no derivative and are counted, not compared.\n"
                 "Exits 1 if any element fails.");
  add_model_flag(args);
  args.add("input", "1x28x28", "one sample's shape, CxHxW");
  args.add("batch", "2", "samples in the random batch");
  args.add("samples", "32", "elements checked per tensor (sampled at random)");
  args.add("eps", "1e-6", "finite-difference step");
  args.add("atol", "1e-8", "absolute tolerance");
  args.add("rtol", "1e-5", "relative tolerance");
  args.add("seed", "1", "seed for weights, input, labels and sampled elements");
  if (!args.parse(argc, argv, 2)) {
    std::cout << args.help();
    return 0;
  }
  const Shape sample = parse_chw("input", args.get("input"));
  const int64_t batch = args.get_int("batch", 1);
  const uint64_t seed = static_cast<uint64_t>(args.get_int("seed", 0));
  std::unique_ptr<Model<double>> owned = load_model<double>(args.get("model"), 10);
  Model<double>& model = *owned;
  model.build(Shape{batch, sample[0], sample[1], sample[2]}, seed);
  const int64_t classes = model.output_shape().numel() / batch;  // a spec file's own outputs
  Rng rng(seed + 1);
  Tensor<double> x(model.input_shape());
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = rng.uniform();
  std::vector<int32_t> labels(static_cast<size_t>(batch));
  for (auto& l : labels) l = static_cast<int32_t>(rng.below(classes));

  GradcheckOptions options;
  options.eps = args.get_double("eps");
  if (!(options.eps > 0))
    throw UsageError{"--eps: expected a positive step, got " + args.get("eps")};
  options.max_per_tensor = args.get_int("samples", 1);
  options.atol = args.get_double("atol");
  options.rtol = args.get_double("rtol");
  options.seed = seed;
  SoftmaxCrossEntropy<double> loss;
  const auto report = gradcheck(model, x, {.labels = labels}, loss, options);

  std::printf("%-5s %-28s %-7s %7s %5s %12s %12s  %s\n", "layer", "description", "tensor",
              "checked", "kinks", "max abs err", "max rel err", "result");
  bool ok = true;
  double worst_abs = 0, worst_rel = 0;
  for (const auto& e : report) {
    std::printf("%-5zu %-28s %-7s %7lld %5lld %12.3e %12.3e  %s\n", e.layer, e.layer_name.c_str(),
                e.tensor.c_str(), static_cast<long long>(e.checked),
                static_cast<long long>(e.kinks), e.max_abs_error, e.max_rel_error,
                e.passed() ? "ok" : "FAIL");
    ok = ok && e.passed();
    worst_abs = std::max(worst_abs, e.max_abs_error);
    worst_rel = std::max(worst_rel, e.max_rel_error);
  }
  std::printf("%s: largest abs error %.3e, largest rel error %.3e (atol %.0e, rtol %.0e)\n",
              ok ? "PASS" : "FAIL", worst_abs, worst_rel, options.atol, options.rtol);
  return ok ? 0 : 1;
}

}  // namespace convnet::cli
