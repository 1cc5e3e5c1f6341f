// convnet explain: one training step in the open. Forward through every layer (output shape and
// statistics), the loss, backward through every layer (the gradient norms the chain rule
// produces), and the update (how far each parameter moved): backpropagation made visible.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <numeric>

#include "args.hpp"
#include "commands.hpp"
#include "common_flags.hpp"
#include "convnet/checkpoint.hpp"
#include "convnet/spec.hpp"
#include "data_source.hpp"
#include "optimizer_flags.hpp"

namespace convnet::cli {
namespace {

struct Summary {
  double mean = 0, stddev = 0, min = 0, max = 0, zeros = 0, norm = 0;
};

// Statistics of the first `count` values (a tensor's rows beyond the batch are stale).
Summary summarise(const float* v, int64_t count) {
  Summary s;
  if (count == 0) return s;
  s.min = s.max = v[0];
  double sum = 0, squares = 0;
  int64_t zeros = 0;
  for (int64_t i = 0; i < count; ++i) {
    const double x = v[i];
    sum += x;
    squares += x * x;
    zeros += x == 0;
    s.min = std::min(s.min, x);
    s.max = std::max(s.max, x);
  }
  const double n = static_cast<double>(count);
  s.mean = sum / n;
  s.stddev = std::sqrt(std::max(squares / n - s.mean * s.mean, 0.0));
  s.zeros = static_cast<double>(zeros) / n;
  s.norm = std::sqrt(squares);
  return s;
}

double norm_of(const Tensor<float>& t) { return summarise(t.data(), t.numel()).norm; }

std::string clip(const std::string& text, size_t width) {
  return text.size() <= width ? text : text.substr(0, width - 1) + "~";
}

}  // namespace

int cmd_explain(int argc, char** argv) {
  ArgParser args("convnet explain",
                 "Walks one training step on a batch of real images and prints what each stage\n"
                 "does: the forward pass layer by layer (output shape and statistics), the loss,\n"
                 "the backward pass from the loss back to the input (the norm of every layer's\n"
                 "output gradient and parameter gradients, as the chain rule produces them), and\n"
                 "the update (how far each parameter moved, relative to its size).");
  add_model_flag(args);
  args.add("checkpoint", "", "explain a step of this trained model instead of a fresh one");
  add_data_flags(args, "/usr/share/datasets/fashion-mnist",
                 "where the batch comes from (IDX, CIFAR-10 or image folders, as for train)");
  args.add("batch", "8", "images in the batch (the first of the training set)");
  args.add("seed", "1", "initialisation of a fresh model");
  add_optimizer_flags(args);
  if (!args.parse(argc, argv, 2)) {
    std::cout << args.help();
    return 0;
  }
  const int64_t batch = args.get_int("batch", 1);
  const uint64_t seed = static_cast<uint64_t>(args.get_int("seed", 0));
  auto optimizer = make_optimizer(args);

  std::unique_ptr<Model<float>> model;
  InputInfo input;
  Shape sample = parse_chw("image-size", args.get("image-size"));
  const std::string checkpoint = args.get("checkpoint");
  if (!checkpoint.empty()) {
    if (args.given("model")) throw UsageError{"--model: not with --checkpoint (it holds the model)"};
    Checkpoint<float> c = load_checkpoint<float>(checkpoint, batch);
    for (const std::string& note : c.notes)
      std::cerr << "convnet explain: warning: " << note << "\n";
    model = std::move(c.model);
    input = c.state.input;
    const Shape& in = model->input_shape();
    if (in.rank() != 4) throw Error(checkpoint + ": the model does not take images");
    sample = Shape{in[1], in[2], in[3]};
  }
  LoadedSplit loaded = load_split(args.get("data"), Split::Train, sample);
  Dataset& data = loaded.data;
  if (data.size() > batch) data.truncate(batch);
  if (!input.mean.empty()) data.set_normalization(input.mean, input.stddev);
  if (!model) {
    model = load_model<float>(args.get("model"), data.classes());
    model->build(data.shape(), seed);
  } else if (model->input_shape() != data.shape()) {
    throw Error(checkpoint + ": the model takes " + model->input_shape().str() + ", the data is " +
                data.shape().str());
  }
  const int64_t n = data.size();
  Tensor<float> x(data.shape());
  std::vector<int32_t> labels(static_cast<size_t>(n));
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  data.gather(order, x.data(), labels.data());

  // The step, with the parameters copied before it so the update can be measured.
  std::vector<Tensor<float>> before;
  for (const Param<float>& p : model->params()) before.push_back(*p.value);
  SoftmaxCrossEntropy<float> loss;
  model->set_keep_intermediates(true);  // every layer's output and its gradient are shown
  const StepResult r = model->train_step(x, {.labels = labels}, loss, *optimizer);
  const std::vector<NodeTrace<float>> nodes = model->trace();

  char line[256];
  std::cout << "One training step of " << (checkpoint.empty() ? args.get("model") : checkpoint)
            << " on " << n << " images " << data.sample_shape().str() << " from "
            << args.get("data") << " (" << loaded.format << ").\n\n";

  std::cout << "1. Forward: each layer computes y = f(x) from the one before. Watch the spread\n"
               "   (std) stay in a sensible range, and the share of exact zeros after ReLUs.\n";
  std::snprintf(line, sizeof line, "   %-34s %-14s %9s %9s %9s %9s %6s\n", "layer", "output",
                "mean", "std", "min", "max", "zeros");
  std::cout << line;
  {
    const Summary in = summarise(x.data(), x.numel());
    std::snprintf(line, sizeof line, "   %-34s %-14s %9.4f %9.4f %9.4f %9.4f %5.1f%%\n", "input",
                  x.shape().str().c_str(), in.mean, in.stddev, in.min, in.max, 100 * in.zeros);
    std::cout << line;
  }
  for (const NodeTrace<float>& node : nodes) {
    const Summary s = summarise(node.output->data(), node.output->numel());
    std::snprintf(line, sizeof line, "   %-34s %-14s %9.4f %9.4f %9.4f %9.4f %5.1f%%\n",
                  clip(node.name + " " + node.description, 34).c_str(),
                  node.output->shape().str().c_str(), s.mean, s.stddev, s.min, s.max,
                  100 * s.zeros);
    std::cout << line;
  }

  std::snprintf(line, sizeof line,
                "\n2. Loss: softmax cross-entropy, the mean over the batch of -log p(true class):\n"
                "   L = %.4f (a uniform guess over %lld classes scores ln %lld = %.4f); %lld of "
                "%lld right.\n",
                r.loss, static_cast<long long>(data.classes()),
                static_cast<long long>(data.classes()), std::log(static_cast<double>(data.classes())),
                static_cast<long long>(r.correct), static_cast<long long>(n));
  std::cout << line;

  std::cout << "\n3. Backward: from dL/dy of the output (softmax - one-hot, over N), each layer\n"
               "   turns dL/dy into dL/dx for the layer before (the chain rule) and, if it has\n"
               "   parameters, dL/dW and dL/db. Norms that shrink toward the input by orders of\n"
               "   magnitude are vanishing gradients; norms that grow are exploding ones.\n";
  std::snprintf(line, sizeof line, "   %-34s %12s %12s %12s\n", "layer (output to input)",
                "||dL/dy||", "||dL/dW||", "||dL/db||");
  std::cout << line;
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
    std::string weight = "", bias = "";
    if (it->layer)
      for (const Param<float>& p : it->layer->params()) {
        char v[32];
        std::snprintf(v, sizeof v, "%12.4e", norm_of(*p.grad));
        (p.name == "bias" ? bias : weight) = v;
      }
    std::snprintf(line, sizeof line, "   %-34s %12.4e %12s %12s\n",
                  clip(it->name + " " + it->description, 34).c_str(),
                  it->grad_output ? norm_of(*it->grad_output) : 0.0, weight.c_str(),
                  bias.c_str());
    std::cout << line;
  }

  std::snprintf(line, sizeof line,
                "\n4. Update: %s moves every parameter against its gradient (lr %g). The\n"
                "   ratio ||dW|| / ||W|| is a health check: around 1e-3 per step is typical;\n"
                "   far above, training is unstable; far below, it barely learns.\n",
                optimizer->name().c_str(), optimizer->learning_rate());
  std::cout << line;
  std::snprintf(line, sizeof line, "   %-34s %12s %12s %12s\n", "parameter", "||W||",
                "||dW||", "||dW||/||W||");
  std::cout << line;
  const auto params = model->params();
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor<float>& now = *params[i].value;
    double moved = 0;
    for (int64_t k = 0; k < now.numel(); ++k) {
      const double d = static_cast<double>(now[k]) - before[i][k];
      moved += d * d;
    }
    moved = std::sqrt(moved);
    const double size = norm_of(before[i]);
    std::snprintf(line, sizeof line, "   %-34s %12.4e %12.4e %12.4e\n",
                  clip(params[i].name, 34).c_str(), size, moved, size > 0 ? moved / size : 0.0);
    std::cout << line;
  }
  return 0;
}

}  // namespace convnet::cli
