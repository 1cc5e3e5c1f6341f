// fit() and evaluate(): batches gathered into buffers allocated once, so the steady-state
// step allocates nothing.
#include "convnet/train.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "convnet/metrics.hpp"

namespace convnet {
namespace {

// Copies samples `order` of data into x and labels (within their capacity: no allocation).
void gather(const Dataset& data, std::span<const int64_t> order, Tensor<float>& x,
            std::vector<int32_t>& labels) {
  x.resize(data.shape().with_batch(static_cast<int64_t>(order.size())));
  labels.resize(order.size());
  data.gather(order, x.data(), labels.data());
}

void check_fits(const Model<float>& model, const Dataset& data, const char* which) {
  CONVNET_CHECK(data.size() > 0, which, " set is empty");
  const Shape& in = model.input_shape();
  const Shape& s = data.shape();
  CONVNET_CHECK(in.rank() == 4 && in[1] == s[1] && in[2] == s[2] && in[3] == s[3], which,
                " images are ", s.str(), " but the model was built for ", in.str());
}

}  // namespace

EvalStats evaluate(Model<float>& model, const Dataset& data, Loss<float>& loss, int64_t batch,
                   ConfusionMatrix* confusion) {
  check_fits(model, data, "evaluation");
  batch = std::min(batch, model.input_shape()[0]);
  std::vector<int64_t> order(data.size());
  std::iota(order.begin(), order.end(), 0);
  Tensor<float> x(data.shape().with_batch(batch));
  std::vector<int32_t> labels;
  double total_loss = 0;
  int64_t correct = 0;
  if (confusion) *confusion = ConfusionMatrix(data.classes());
  for (int64_t first = 0; first < data.size(); first += batch) {
    const int64_t count = std::min(batch, data.size() - first);
    gather(data, std::span(order).subspan(first, count), x, labels);
    const Tensor<float>& out = model.forward(x, Mode::Eval);  // Model::evaluate, keeping out
    total_loss += static_cast<double>(loss.compute(out, {.labels = labels}, nullptr)) *
                  static_cast<double>(count);
    correct += count_correct(out, std::span<const int32_t>(labels));
    if (confusion) confusion->add(out, labels);
  }
  return {total_loss / static_cast<double>(data.size()),
          static_cast<double>(correct) / static_cast<double>(data.size())};
}

FitResult fit(Model<float>& model, const Dataset& train, const Dataset* test, Loss<float>& loss,
              Optimizer<float>& optimizer, const FitOptions& options,
              const FitCallbacks& callbacks) {
  CONVNET_CHECK(options.epochs >= 1, "fit: epochs must be at least 1, got ", options.epochs);
  CONVNET_CHECK(options.completed_epochs >= 0 && options.completed_epochs < options.epochs,
                "fit: completed_epochs must be in [0, epochs = ", options.epochs, "), got ",
                options.completed_epochs);
  CONVNET_CHECK(options.batch >= 1 && options.batch <= model.input_shape()[0],
                "fit: batch must be between 1 and the built batch size ", model.input_shape()[0],
                ", got ", options.batch);
  check_fits(model, train, "training");
  if (test) check_fits(model, *test, "test");
  if (options.validation) check_fits(model, *options.validation, "validation");
  const int64_t steps = (train.size() + options.batch - 1) / options.batch;
  CONVNET_CHECK(options.completed_steps >= 0 && options.completed_steps < steps,
                "fit: completed_steps must be in [0, ", steps, " batches per epoch), got ",
                options.completed_steps);
  options.schedule.validate();

  std::vector<int64_t> order(train.size());
  Tensor<float> x(train.shape().with_batch(options.batch));
  std::vector<int32_t> labels(static_cast<size_t>(options.batch));
  const auto params = model.params();
  std::vector<double> grad_norm_sums(params.size());
  std::vector<float> augment_scratch;
  // The buffers (BatchNorm's running statistics) as they were before the current step: a step
  // that diverges has already folded its batch into them in its forward pass, and what fit()
  // leaves after a divergence must be the last good state.
  const auto buffers = model.buffers();
  size_t buffer_elements = 0;
  for (const Buffer<float>& b : buffers) buffer_elements += static_cast<size_t>(b.value->numel());
  std::vector<float> buffers_before_step(buffer_elements);
  auto copy_buffers = [&](bool restore) {
    float* saved = buffers_before_step.data();
    for (const Buffer<float>& b : buffers) {
      const auto n = static_cast<size_t>(b.value->numel());
      if (restore)
        std::copy(saved, saved + n, b.value->data());
      else
        std::copy(b.value->data(), b.value->data() + n, saved);
      saved += n;
    }
  };
  const Rng base(options.seed);
  const double lr0 = optimizer.learning_rate();
  FitResult result;
  result.completed_epochs = options.completed_epochs;
  result.completed_steps = options.completed_steps;
  for (int epoch = options.completed_epochs + 1; epoch <= options.epochs; ++epoch) {
    std::iota(order.begin(), order.end(), 0);
    Rng shuffle = base.split(static_cast<uint64_t>(epoch));
    shuffle.shuffle(std::span(order));
    const Rng augment_epoch = base.split((uint64_t{1} << 32) + static_cast<uint64_t>(epoch));
    const int64_t first_step = epoch == options.completed_epochs + 1 ? options.completed_steps : 0;

    const auto start = std::chrono::steady_clock::now();
    double total_loss = 0;
    int64_t correct = 0, seen = 0;
    std::fill(grad_norm_sums.begin(), grad_norm_sums.end(), 0.0);
    EpochStats stats;
    stats.epoch = epoch;
    for (int64_t step = first_step; step < steps; ++step) {
      const int64_t first = step * options.batch;
      const int64_t count = std::min(options.batch, train.size() - first);
      gather(train, std::span(order).subspan(first, count), x, labels);
      Rng augment = augment_epoch.split(static_cast<uint64_t>(step));
      augment_batch(options.augment, train, augment, x.data(), count, augment_scratch);
      const double lr = options.schedule.rate(lr0, epoch - 1, step, steps, options.epochs);
      if (step == first_step) stats.learning_rate = lr;
      StepResult r;
      copy_buffers(false);
      try {
        r = model.train_step(x, {.labels = labels}, loss, optimizer, lr,
                             {.clip_grad_norm = options.clip_grad_norm});
      } catch (const Diverged& e) {
        copy_buffers(true);
        throw Diverged(
            detail::concat("epoch ", epoch, ", batch ", step + 1, "/", steps, ": ", e.what()),
            epoch - 1, step);
      } catch (const Error& e) {  // where in the run: the step says what went wrong
        throw Error(
            detail::concat("epoch ", epoch, ", batch ", step + 1, "/", steps, ": ", e.what()));
      }
      for (size_t i = 0; i < params.size(); ++i) grad_norm_sums[i] += model.grad_norms()[i];
      total_loss += r.loss * static_cast<double>(count);
      correct += r.correct;
      seen += count;
      if (callbacks.on_batch_end) {
        const BatchStats b{
            .epoch = epoch,
            .step = step,
            .steps = steps,
            .images = seen,
            .loss = r.loss,
            .running_loss = total_loss / static_cast<double>(seen),
            .running_acc = static_cast<double>(correct) / static_cast<double>(seen),
            .learning_rate = lr,
            .seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
        if (!callbacks.on_batch_end(b) && step + 1 < steps) {
          result.completed_epochs = epoch - 1;
          result.completed_steps = step + 1;
          result.stopped = true;
          return result;
        }
      }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    stats.train_loss = total_loss / static_cast<double>(seen);
    stats.train_acc = static_cast<double>(correct) / static_cast<double>(seen);
    stats.seconds = seconds;
    stats.images_per_s = static_cast<double>(seen) / std::max(seconds, 1e-9);
    for (const double sum : grad_norm_sums)
      stats.grad_norms.push_back(sum / static_cast<double>(steps - first_step));
    if (test) {
      const EvalStats e =
          evaluate(model, *test, loss, model.input_shape()[0], options.test_confusion);
      stats.test_loss = e.loss;
      stats.test_acc = e.accuracy;
    }
    if (options.validation) {
      const EvalStats e = evaluate(model, *options.validation, loss, model.input_shape()[0]);
      stats.val_loss = e.loss;
      stats.val_acc = e.accuracy;
    }
    result.epochs.push_back(stats);
    result.completed_epochs = epoch;
    result.completed_steps = 0;
    if (callbacks.on_epoch_end && !callbacks.on_epoch_end(stats) && epoch < options.epochs) {
      result.stopped = true;
      return result;
    }
  }
  return result;
}

}  // namespace convnet
