// Model-level gradient check: perturb one element at a time (of a layer's input or parameter),
// rerun the forward pass from that layer, and compare the loss slope with backward's answer.
#include "convnet/gradcheck.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace convnet {
namespace {

// Up to `limit` distinct indices in [0, n), chosen by rng.
std::vector<int64_t> sample_indices(int64_t n, int64_t limit, Rng& rng) {
  std::vector<int64_t> all(static_cast<size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  if (n > limit) {
    rng.shuffle(std::span(all));
    all.resize(static_cast<size_t>(limit));
    std::sort(all.begin(), all.end());
  }
  return all;
}

// Replay on for every layer while alive (see Layer::set_replay), off again afterwards.
class ReplayScope {
 public:
  explicit ReplayScope(Model<double>& model) : model_(model) { model_.set_replay(true); }
  ~ReplayScope() { model_.set_replay(false); }
  ReplayScope(const ReplayScope&) = delete;
  ReplayScope& operator=(const ReplayScope&) = delete;

 private:
  Model<double>& model_;
};

// Compares analytic[i] with the central difference of loss() as value[i] moves by ±eps, for a
// sample of elements; loss() reruns whatever part of the model value feeds.
template <class LossFn>
GradcheckEntry check_tensor(GradcheckEntry e, Tensor<double>& value,
                            const Tensor<double>& analytic, LossFn&& loss,
                            const GradcheckOptions& options, Rng& rng) {
  for (int64_t i : sample_indices(value.numel(), options.max_per_tensor, rng)) {
    const double saved = value[i];
    value[i] = saved + options.eps;
    const double plus = loss();
    value[i] = saved - options.eps;
    const double minus = loss();
    value[i] = saved;
    const double base = loss();
    // A kink: the slopes on the two sides differ by more than half their size.
    const double right = (plus - base) / options.eps, left = (base - minus) / options.eps;
    const double slope = std::max(std::abs(right), std::abs(left));
    if (slope > 1e-7 && std::abs(right - left) > 0.5 * slope) {
      ++e.kinks;
      continue;
    }
    const double numeric = (plus - minus) / (2 * options.eps);
    const double a = analytic[i];
    const double abs_err = std::abs(a - numeric);
    const double scale = std::max(std::abs(a), std::abs(numeric));
    // Written so that a NaN anywhere counts as a failure and shows in the reported maxima.
    const bool ok = abs_err <= options.atol + options.rtol * std::abs(numeric);
    if (!ok) ++e.failed;
    if (!(abs_err <= e.max_abs_error)) e.max_abs_error = abs_err;
    if (scale > options.atol && !(abs_err / scale <= e.max_rel_error))
      e.max_rel_error = abs_err / scale;
    if (std::isnan(abs_err)) e.max_rel_error = abs_err;
    ++e.checked;
  }
  return e;
}

// Any model: the input and every parameter, each probed through a whole forward pass.
std::vector<GradcheckEntry> gradcheck_parameters(Model<double>& model, const Tensor<double>& x,
                                                 const Targets<double>& targets,
                                                 Loss<double>& loss,
                                                 const GradcheckOptions& options) {
  Tensor<double> input = x;
  Tensor<double> grad_input, dy;
  model.zero_grad();
  loss.compute(model.forward(input, Mode::Train), targets, &dy);
  model.backward(dy, &grad_input);
  std::vector<Tensor<double>> param_grads;
  for (const auto& p : model.params()) param_grads.push_back(*p.grad);
  Rng rng(options.seed);
  auto loss_now = [&] { return loss.compute(model.forward(input, Mode::Train), targets, nullptr); };
  std::vector<GradcheckEntry> report;
  report.push_back(check_tensor(GradcheckEntry{0, "model input", "input"}, input, grad_input,
                                loss_now, options, rng));
  const auto params = model.params();
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string& name = params[i].name;
    const size_t dot = name.rfind('.');
    report.push_back(check_tensor(
        GradcheckEntry{i + 1, name.substr(0, dot), dot == std::string::npos ? name : name.substr(dot + 1)},
        *params[i].value, param_grads[i], loss_now, options, rng));
  }
  return report;
}

}  // namespace

std::vector<GradcheckEntry> gradcheck(Model<double>& any_model, const Tensor<double>& x,
                                      const Targets<double>& targets, Loss<double>& loss,
                                      const GradcheckOptions& options) {
  // Every pass below runs the training-mode function (the one train_step differentiates), with
  // replay on: one Dropout mask throughout, BatchNorm's running statistics left as they were.
  const ReplayScope replay(any_model);
  auto* sequential = dynamic_cast<Sequential<double>*>(&any_model);
  if (!sequential) return gradcheck_parameters(any_model, x, targets, loss, options);
  Sequential<double>& model = *sequential;
  // Every layer's input gradient is compared below, and forward_from re-runs from kept
  // activations: keep them all.
  struct KeepIntermediates {
    Model<double>& model;
    bool before;
    ~KeepIntermediates() { model.set_keep_intermediates(before); }
  } keep{model, model.keeps_intermediates()};
  model.set_keep_intermediates(true);
  // Analytic gradients.
  Tensor<double> input = x;  // our own copy, perturbed for layer 0
  Tensor<double> grad_input;
  model.zero_grad();
  Tensor<double> dy;
  loss.compute(model.forward(input, Mode::Train), targets, &dy);
  model.backward(dy, &grad_input);

  // Copies, since the perturbed forward passes below overwrite the model's buffers.
  std::vector<Tensor<double>> input_grads(model.size());
  input_grads[0] = grad_input;
  for (size_t i = 1; i < model.size(); ++i) input_grads[i] = model.activation_grad(i);
  std::vector<Tensor<double>> param_grads;
  for (const auto& p : model.params()) param_grads.push_back(*p.grad);
  // Activations as the unperturbed forward left them, to restore before each layer's checks.
  model.forward(input, Mode::Train);
  std::vector<Tensor<double>> acts(model.size());
  for (size_t i = 1; i < model.size(); ++i) acts[i] = model.activation(i);

  Rng rng(options.seed);
  auto loss_from = [&](size_t layer) {
    const Tensor<double>& out =
        layer == 0 ? model.forward(input, Mode::Train) : model.forward_from(layer, Mode::Train);
    return loss.compute(out, targets, nullptr);
  };
  auto check = [&](size_t layer, const std::string& name, Tensor<double>& value,
                   const Tensor<double>& analytic) {
    return check_tensor(GradcheckEntry{layer, model.layer(layer).describe(), name}, value,
                        analytic, [&] { return loss_from(layer); }, options, rng);
  };

  std::vector<GradcheckEntry> report;
  size_t param_index = 0;
  const auto params = model.params();
  for (size_t layer = 0; layer < model.size(); ++layer) {
    for (size_t i = 1; i < model.size(); ++i) model.activation(i) = acts[i];
    Tensor<double>& layer_input = layer == 0 ? input : model.activation(layer);
    report.push_back(check(layer, "input", layer_input, input_grads[layer]));
    for (const auto& p : model.layer(layer).params()) {
      report.push_back(check(layer, p.name, *params[param_index].value, param_grads[param_index]));
      ++param_index;
    }
  }
  return report;
}

}  // namespace convnet
