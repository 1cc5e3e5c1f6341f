// fit() and evaluate(): batches gathered into buffers allocated once, so the steady-state
// step allocates nothing.
#include "convnet/train.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "convnet/distributed.hpp"
#include "convnet/metrics.hpp"
#include "train/overlap.hpp"
#include "train/prefetch.hpp"

namespace convnet {
namespace {

// Copies samples `order` of data into x and labels, and for Target::Values their targets into
// y, shaped as the model's output (within their capacity: no allocation). Target::Input's y is
// taken by take_input_target, after augmentation. `draw` keys a streamed set's random
// transforms (Dataset::gather).
void gather(const Dataset& data, std::span<const int64_t> order, Target target, const Shape& output,
            Tensor<float>& x, std::vector<int32_t>& labels, Tensor<float>& y, uint64_t draw = 0) {
  const auto count = static_cast<int64_t>(order.size());
  x.resize(data.shape().with_batch(count));
  labels.resize(order.size());
  if (target == Target::Values) y.resize(output.with_batch(count));
  data.gather(order, x.data(), labels.data(), target == Target::Values ? y.data() : nullptr, draw);
}

void take_input_target(const Tensor<float>& x, Tensor<float>& y) {
  y.resize(x.shape());
  std::copy_n(x.data(), x.numel(), y.data());
}

// What the loss compares the output with: samples [first, first + count) of the batch's labels,
// or the whole of y (already cut to the part) for values and input.
Targets<float> targets_for(Target target, std::span<const int32_t> labels, const Tensor<float>& y,
                           int64_t first, int64_t count, int64_t mean_over = 0) {
  if (target == Target::Labels)
    return {.labels = labels.subspan(static_cast<size_t>(first), static_cast<size_t>(count)),
            .mean_over = mean_over};
  return {.values = &y, .mean_over = mean_over};
}

// The regression figures' accumulator for `target` on data (none for labels).
RegressionMetrics regression_metrics(Target target, const Dataset& data, const Shape& output) {
  if (target == Target::Values)
    return RegressionMetrics(data.target_size(), data.target_mean(), data.target_stddev());
  if (target == Target::Input)
    return RegressionMetrics(output.numel() / std::max<int64_t>(output[0], 1), {}, {}, true);
  return {};
}

void check_fits(const Model<float>& model, const Dataset& data, const char* which) {
  CONVNET_CHECK(data.size() > 0, which, " set is empty");
  const Shape& in = model.input_shape();
  const Shape& s = data.shape();
  CONVNET_CHECK(in.rank() == 4 && in[1] == s[1] && in[2] == s[2] && in[3] == s[3], which,
                " images are ", s.str(), " but the model was built for ", in.str());
}

// Part p of a batch of `count` samples split into `parts`: count/parts + (p < count % parts)
// samples, after the parts before it.
struct Part {
  int64_t first = 0, count = 0;
};
Part part_of(int64_t count, int parts, int p) {
  const int64_t base = count / parts, extra = count % parts;
  return {p * base + std::min<int64_t>(p, extra), base + (p < extra ? 1 : 0)};
}

// A fingerprint of every sample and label of data.
uint64_t data_fingerprint(const Dataset& data) {
  const int64_t chunk = 1024, sample = data.shape().numel() / std::max<int64_t>(data.size(), 1);
  std::vector<int64_t> order(static_cast<size_t>(chunk));
  std::vector<float> pixels(static_cast<size_t>(chunk * sample));
  std::vector<int32_t> labels(static_cast<size_t>(chunk));
  const int64_t K = data.target_size();
  std::vector<float> targets(static_cast<size_t>(chunk * K));
  uint64_t h = fingerprint_of(data.shape().str());
  for (int64_t first = 0; first < data.size(); first += chunk) {
    const int64_t count = std::min(chunk, data.size() - first);
    std::iota(order.begin(), order.begin() + count, first);
    data.gather(std::span(order).first(static_cast<size_t>(count)), pixels.data(), labels.data(),
                targets.data());
    h = fingerprint_of(std::span<const float>(pixels).first(static_cast<size_t>(count * sample)),
                       h);
    h = fingerprint_of(std::span<const int32_t>(labels).first(static_cast<size_t>(count)), h);
    if (K > 0)
      h = fingerprint_of(std::span<const float>(targets).first(static_cast<size_t>(count * K)), h);
  }
  return h;
}

// Before a data-parallel run: every rank must hold the same model, data and recipe, or the
// ranks would train different things and the sum of their gradients mean nothing.
void require_same_start(Communicator& comm, Model<float>& model, const Dataset& train,
                        const Dataset* test, const Optimizer<float>& optimizer,
                        const FitOptions& o) {
  uint64_t weights = fingerprint_of(model.spec());
  weights = fingerprint_of(std::span<const float>(model.arena().values()), weights);
  for (const Buffer<float>& b : model.buffers())
    weights = fingerprint_of(
        std::span<const float>(b.value->data(), static_cast<size_t>(b.value->numel())), weights);
  const std::string recipe = detail::concat(
      "epochs ", o.epochs, " completed ", o.completed_epochs, ".", o.completed_steps, " batch ",
      o.batch, " seed ", o.seed, " micro ", o.micro_batches, " crop ", o.augment.crop_padding,
      " flip ", o.augment.horizontal_flip, " target ", target_name(o.target), " noise ", o.noise,
      " clip ", o.clip_grad_norm, " schedule ",
      static_cast<int>(o.schedule.kind), " ", o.schedule.warmup_epochs, " ", o.schedule.min_lr,
      " validation ", o.validation ? o.validation->size() : -1);
  const std::string update = detail::concat(optimizer.name(), " lr ", optimizer.learning_rate(),
                                            " steps ", optimizer.steps());
  const Agreement items[] = {
      {"model (its spec, weights and running statistics)", weights},
      {"training data", data_fingerprint(train)},
      {"test data", test ? data_fingerprint(*test) : 0},
      {"validation data", o.validation ? data_fingerprint(*o.validation) : 0},
      {"recipe (epochs, position, batch, seed, augmentation, schedule, clipping)",
       fingerprint_of(recipe)},
      {"optimizer (its kind, learning rate and step)", fingerprint_of(update)},
  };
  require_agreement(comm, items);
}

void require_output_fits(const Model<float>& model, const Dataset& data, Target target) {
  target = resolve_target(target, data);
  const Shape& out = model.output_shape();
  const int64_t per_sample = out.numel() / std::max<int64_t>(out[0], 1);
  if (target == Target::Values) {
    CONVNET_CHECK(data.has_targets(), "the data has no real-valued targets to train on");
    std::string names;
    for (const std::string& n : data.target_names()) names += (names.empty() ? "" : ", ") + n;
    CONVNET_CHECK(per_sample == data.target_size(), "the model's output is ", per_sample,
                  " value", per_sample == 1 ? "" : "s", " per sample (", out.str(),
                  ") but the data has ", data.target_size(), " target",
                  data.target_size() == 1 ? "" : "s", " (", names, "): its last layer needs ",
                  data.target_size(), " output", data.target_size() == 1 ? "" : "s");
  } else if (target == Target::Input) {
    const Shape in = data.sample_shape();
    CONVNET_CHECK(out.rank() == 4 && out[1] == in[0] && out[2] == in[1] && out[3] == in[2],
                  "reconstructing the input needs an output of the input's shape ", in.str(),
                  " per sample, but the model's output is ", out.str());
  } else if (data.classes() > 0) {
    CONVNET_CHECK(per_sample == data.classes(), "the model's output is ", per_sample,
                  " value", per_sample == 1 ? "" : "s", " per sample (", out.str(),
                  ") but the data has ", data.classes(), " classes: its last layer needs ",
                  data.classes(), " outputs");
  } else {
    throw Error("the data has no class labels to train on (a set of real-valued targets "
                "trains with its targets, or with the input as the target)");
  }
}

}  // namespace

Target resolve_target(Target target, const Dataset& data) {
  if (target != Target::Auto) return target;
  return data.has_targets() ? Target::Values : Target::Labels;
}

const char* target_name(Target target) {
  switch (target) {
    case Target::Auto:
      return "auto";
    case Target::Labels:
      return "labels";
    case Target::Values:
      return "values";
    case Target::Input:
      return "input";
  }
  return "?";
}

void check_output_fits(const Model<float>& model, const Dataset& data, Target target,
                       const std::string& where) {
  try {
    require_output_fits(model, data, target);
  } catch (const Error& e) {
    if (where.empty()) throw;
    throw Error(where + ": " + e.what());
  }
}

EvalStats evaluate(Model<float>& model, const Dataset& data, Loss<float>& loss, int64_t batch,
                   ConfusionMatrix* confusion, Communicator* communicator, Target target) {
  check_fits(model, data, "evaluation");
  target = resolve_target(target, data);
  check_output_fits(model, data, target);
  if (target != Target::Labels) confusion = nullptr;
  RegressionMetrics metrics = regression_metrics(target, data, model.output_shape());
  const size_t figures = metrics.sums().size();
  batch = std::min(batch, model.input_shape()[0]);
  const int ranks = communicator ? communicator->size() : 1;
  const int rank = communicator ? communicator->rank() : 0;
  std::vector<int64_t> order(data.size());
  std::iota(order.begin(), order.end(), 0);
  Tensor<float> x(data.shape().with_batch(batch)), y;
  std::vector<int32_t> labels;
  // Per batch: its loss times its count, its correct predictions and its regression sums;
  // summed in batch order below, whichever rank computed them.
  const int64_t batches = (data.size() + batch - 1) / batch;
  std::vector<double> batch_loss(static_cast<size_t>(batches));
  std::vector<int64_t> batch_correct(static_cast<size_t>(batches));
  std::vector<double> batch_sums(static_cast<size_t>(batches) * figures);
  if (confusion) *confusion = ConfusionMatrix(data.classes());
  for (int64_t b = rank; b < batches; b += ranks) {
    const int64_t first = b * batch, count = std::min(batch, data.size() - first);
    gather(data, std::span(order).subspan(first, count), target, model.output_shape(), x, labels,
           y);
    if (target == Target::Input) take_input_target(x, y);
    const Tensor<float>& out = model.forward(x, Mode::Eval);  // Model::evaluate, keeping out
    batch_loss[static_cast<size_t>(b)] =
        static_cast<double>(
            loss.compute(out, targets_for(target, labels, y, 0, count), nullptr)) *
        static_cast<double>(count);
    if (target == Target::Labels) {
      batch_correct[static_cast<size_t>(b)] = count_correct(out, std::span<const int32_t>(labels));
      if (confusion) confusion->add(out, labels);
    } else {
      metrics.reset();
      metrics.add(out.data(), y.data(), count);
      std::copy(metrics.sums().begin(), metrics.sums().end(),
                batch_sums.begin() + static_cast<int64_t>(static_cast<size_t>(b) * figures));
    }
  }
  if (ranks > 1) {
    const auto n = static_cast<size_t>(batches), all = n * static_cast<size_t>(ranks);
    std::vector<double> losses(all);
    std::vector<int64_t> corrects(all);
    communicator->allgather_values(std::span<const double>(batch_loss), std::span(losses),
                                   "the evaluation");
    communicator->allgather_values(std::span<const int64_t>(batch_correct), std::span(corrects),
                                   "the evaluation");
    for (size_t b = 0; b < n; ++b) {
      batch_loss[b] = losses[(b % static_cast<size_t>(ranks)) * n + b];
      batch_correct[b] = corrects[(b % static_cast<size_t>(ranks)) * n + b];
    }
    if (figures > 0) {
      std::vector<double> sums(batch_sums.size() * static_cast<size_t>(ranks));
      communicator->allgather_values(std::span<const double>(batch_sums), std::span(sums),
                                     "the evaluation's regression figures");
      for (size_t b = 0; b < n; ++b)
        std::copy_n(sums.begin() + static_cast<int64_t>(((b % static_cast<size_t>(ranks)) * n + b) * figures),
                    figures, batch_sums.begin() + static_cast<int64_t>(b * figures));
    }
    if (confusion) {
      const int64_t K = confusion->classes();
      std::vector<int64_t> mine, every(static_cast<size_t>(K * K * ranks));
      for (int64_t label = 0; label < K; ++label)
        for (int64_t predicted = 0; predicted < K; ++predicted)
          mine.push_back(confusion->count(label, predicted));
      communicator->allgather_values(std::span<const int64_t>(mine), std::span(every),
                                     "the evaluation's confusion matrix");
      ConfusionMatrix merged(K);
      for (size_t i = 0; i < every.size(); ++i) {
        const auto cell = static_cast<int64_t>(i % static_cast<size_t>(K * K));
        merged.add(cell / K, cell % K, every[i]);
      }
      *confusion = std::move(merged);
    }
  }
  double total_loss = 0;
  int64_t correct = 0;
  metrics.reset();
  for (size_t b = 0; b < batch_loss.size(); ++b) {
    total_loss += batch_loss[b];
    correct += batch_correct[b];
    if (figures > 0)
      metrics.add_sums(std::span<const double>(batch_sums).subspan(b * figures, figures));
  }
  EvalStats stats{total_loss / static_cast<double>(data.size()),
                  static_cast<double>(correct) / static_cast<double>(data.size())};
  if (figures > 0) {
    stats.accuracy = 0;
    stats.regression = metrics.stats();
  }
  return stats;
}

FitResult fit(Model<float>& model, const Dataset& train, const Dataset* test, Loss<float>& loss,
              Optimizer<float>& optimizer, const FitOptions& options,
              const FitCallbacks& callbacks) {
  CONVNET_CHECK(options.epochs >= 1, "fit: epochs must be at least 1, got ", options.epochs);
  CONVNET_CHECK(options.completed_epochs >= 0 && options.completed_epochs < options.epochs,
                "fit: completed_epochs must be in [0, epochs = ", options.epochs, "), got ",
                options.completed_epochs);
  // A data-parallel run (more than one rank) computes rank r's part of each batch, as the
  // micro-batch step with one part per rank would.
  Communicator* const comm =
      options.communicator && options.communicator->size() > 1 ? options.communicator : nullptr;
  const int ranks = comm ? comm->size() : 1, rank = comm ? comm->rank() : 0;
  CONVNET_CHECK(options.micro_batches >= 1, "fit: micro_batches must be at least 1, got ",
                options.micro_batches);
  CONVNET_CHECK(!comm || options.micro_batches == 1 || options.micro_batches == ranks,
                "fit: a data-parallel run over ", ranks,
                " processes computes one micro-batch "
                "each: micro_batches must be 1 or ",
                ranks, ", got ", options.micro_batches);
  const int parts = comm ? ranks : options.micro_batches;
  const int64_t largest_part = options.batch >= 1 ? (options.batch + parts - 1) / parts : 0;
  CONVNET_CHECK(options.batch >= 1 && largest_part <= model.input_shape()[0],
                "fit: batch must be at least 1 and ", parts > 1 ? "its largest part " : "",
                "at most the built batch size ", model.input_shape()[0], ", got ", options.batch,
                parts > 1 ? detail::concat(" in ", parts, " parts") : std::string());
  check_fits(model, train, "training");
  if (test) check_fits(model, *test, "test");
  if (options.validation) check_fits(model, *options.validation, "validation");
  const Target target = resolve_target(options.target, train);
  check_output_fits(model, train, target);
  CONVNET_CHECK(options.noise >= 0 && std::isfinite(options.noise),
                "fit: noise must be a finite standard deviation >= 0, got ", options.noise);
  CONVNET_CHECK(options.noise == 0 || target == Target::Input,
                "fit: noise corrupts the input of a reconstruction (target input); the target is ",
                target_name(target));
  const int64_t steps = (train.size() + options.batch - 1) / options.batch;
  CONVNET_CHECK(options.completed_steps >= 0 && options.completed_steps < steps,
                "fit: completed_steps must be in [0, ", steps, " batches per epoch), got ",
                options.completed_steps);
  options.schedule.validate();
  if (comm) require_same_start(*comm, model, train, test, optimizer, options);

  std::vector<int64_t> order(train.size());
  Tensor<float> x(train.shape().with_batch(options.batch));
  std::vector<int32_t> labels(static_cast<size_t>(options.batch));
  // The batch's targets for values and input, and a part's of them.
  const Shape& output = model.output_shape();
  Tensor<float> y(target == Target::Labels ? Shape{0} : output.with_batch(options.batch));
  Tensor<float> y_part(target == Target::Labels ? Shape{0}
                                                : output.with_batch(parts > 1 ? largest_part : 1));
  const auto params = model.params();
  std::vector<double> grad_norm_sums(params.size());
  std::vector<float> augment_scratch;
  // A part of the batch, and (micro-batches) the sum of the parts' gradients so far.
  Tensor<float> x_part(train.shape().with_batch(parts > 1 ? largest_part : 1));
  std::vector<float> grad_sum(parts > 1 && !comm ? model.arena().grads().size() : 0);
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
  // One step computed in parts (see FitOptions::micro_batches and ::communicator): this
  // process's parts of the batch in x and labels, each a forward_backward with the whole
  // batch's mean, their gradients added in part order (micro-batches) or across the ranks in
  // rank order, then one update.
  const std::span<float> grads = model.arena().grads();
  std::vector<double> rank_figures(static_cast<size_t>(3 * ranks));
  std::vector<float> buffer_values(comm ? buffer_elements : 0);
  std::string failure;
  // The overlapped reduction, set as the model's gradient hook for this call.
  std::unique_ptr<detail::OverlappedReduction> overlap;
  if (comm && options.reduction == FitOptions::Reduction::Overlapped) {
    const auto arena = static_cast<int64_t>(grads.size());
    const int64_t bucket =
        options.bucket > 0 ? options.bucket : std::clamp<int64_t>(arena / 8, 65536, 6553600);
    const int64_t first =
        options.first_bucket > 0 ? options.first_bucket : std::min<int64_t>(bucket, 262144);
    overlap = std::make_unique<detail::OverlappedReduction>(*comm, grads, first, bucket);
  }
  struct HookGuard {
    Model<float>& model;
    bool set;
    ~HookGuard() {
      if (set) model.set_gradient_sync(nullptr);
    }
  } hook_guard{model, overlap != nullptr};
  if (overlap) model.set_gradient_sync(overlap.get());
  double reduce_seconds = 0, waited_seconds = 0;  // the ordered sums' this epoch
  auto sharded_step = [&](int64_t count, double lr) {
    double step_loss = 0;
    int64_t step_correct = 0;
    int status = 0;  // 0 ok, 1 diverged, 2 another error
    if (overlap) overlap->set_contributors(static_cast<int>(std::min<int64_t>(ranks, count)));
    try {
      for (int p = comm ? rank : 0; p < (comm ? rank + 1 : parts); ++p) {
        const Part part = part_of(count, parts, p);
        if (part.count == 0) {  // a batch of fewer samples than parts
          if (comm) model.forward_backward_empty(count);
          continue;
        }
        model.set_batch_shard(
            comm ? BatchShard{part.first, count - part.first - part.count, rank == 0}
                 : BatchShard{0, 0, p == 0});
        x_part.resize(train.shape().with_batch(part.count));
        const int64_t sample = x.numel() / x.dim(0);
        std::copy_n(x.data() + part.first * sample, part.count * sample, x_part.data());
        if (target != Target::Labels) {
          const int64_t per = y.numel() / y.dim(0);
          y_part.resize(y.shape().with_batch(part.count));
          std::copy_n(y.data() + part.first * per, part.count * per, y_part.data());
        }
        const StepResult r = model.forward_backward(
            x_part, targets_for(target, labels, y_part, part.first, part.count, count), loss);
        if (!comm) {  // g = ((g_0 + g_1) + g_2) + ..., as the ranks' ordered sum adds them
          if (p == 0)
            std::copy(grads.begin(), grads.end(), grad_sum.begin());
          else
            for (size_t i = 0; i < grads.size(); ++i) grad_sum[i] += grads[i];
        }
        step_loss += r.loss;
        step_correct += r.correct;
      }
    } catch (const Error& e) {
      model.set_batch_shard({});
      if (!comm) throw;
      status = dynamic_cast<const Diverged*>(&e) ? 1 : 2;
      failure = e.what();
      // The other ranks' buckets are being all-reduced: take part in each, once, with zeros.
      if (overlap) {
        overlap->finish_queued();
        model.forward_backward_empty(count);
      }
    }
    model.set_batch_shard({});
    if (comm) {
      // Every rank learns every rank's outcome and figures, so all take the same way on.
      const double mine[3] = {static_cast<double>(status), step_loss,
                              static_cast<double>(step_correct)};
      comm->allgather_values(std::span<const double>(mine), std::span(rank_figures),
                             "the step's figures");
      step_loss = 0;
      step_correct = 0;
      for (int q = 0; q < ranks; ++q) {
        const double* f = rank_figures.data() + 3 * q;
        if (f[0] != 0) {  // the first rank that failed tells every rank why
          comm->broadcast_text(failure, q, "the step's error");
          if (f[0] == 1) throw Diverged(detail::concat("rank ", q, ": ", failure));
          throw JobError(detail::concat("rank ", q, ": ", failure));
        }
        step_loss += f[1];
        step_correct += static_cast<int64_t>(f[2]);
      }
      if (!overlap) {
        const auto start = std::chrono::steady_clock::now();
        comm->ordered_sum(grads, static_cast<int>(std::min<int64_t>(ranks, count)),
                          "the gradients' sum");
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        reduce_seconds += seconds;
        waited_seconds += seconds;
      }
      if (!buffers.empty()) {  // the running statistics rank 0's part updated
        float* v = buffer_values.data();
        for (const Buffer<float>& b : buffers)
          v = std::copy_n(b.value->data(), b.value->numel(), v);
        comm->broadcast_values(std::span(buffer_values), 0, "the running statistics");
        v = buffer_values.data();
        for (const Buffer<float>& b : buffers) {
          std::copy_n(v, b.value->numel(), b.value->data());
          v += b.value->numel();
        }
      }
    } else {
      std::copy(grad_sum.begin(), grad_sum.end(), grads.begin());
    }
    StepResult r{step_loss, step_correct, 0};
    r.grad_norm = model.apply_update(optimizer, lr, {.clip_grad_norm = options.clip_grad_norm});
    return r;
  };

  // A callback's "go on" on every rank: false when it is false on any.
  std::vector<uint8_t> go_on(static_cast<size_t>(ranks));
  auto agree = [&](bool mine) {
    if (!comm) return mine;
    const uint8_t flag = mine ? 1 : 0;
    comm->allgather_values(std::span<const uint8_t>(&flag, 1), std::span(go_on),
                           "the callbacks' decision");
    return std::all_of(go_on.begin(), go_on.end(), [](uint8_t f) { return f != 0; });
  };

  // A streamed set's next batch is decoded while the current one trains; the same samples and
  // draws as decoding it when it is needed, so the same bits.
  std::unique_ptr<detail::BatchPrefetch> prefetch;
  if (train.streamed() && target != Target::Values)
    prefetch = std::make_unique<detail::BatchPrefetch>(train, options.batch);

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
    // A streamed set's crops and flips: per sample, from this epoch's key (Dataset::gather), so
    // they do not depend on the batch a sample falls in, the ranks or the decoding threads.
    const uint64_t draw = base.split((uint64_t{2} << 32) + static_cast<uint64_t>(epoch)).next_u64();
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
      try {
        if (prefetch && prefetch->pending())
          prefetch->take(x, labels);
        else
          gather(train, std::span(order).subspan(first, count), target, output, x, labels, y, draw);
        if (prefetch && step + 1 < steps) {  // decoded while this batch trains
          const int64_t next = first + options.batch;
          prefetch->start(
              std::span(order).subspan(next, std::min(options.batch, train.size() - next)), draw);
        }
      } catch (const Error& e) {  // a file of a streamed set: the state before this batch is good
        throw BadData(
            detail::concat("epoch ", epoch, ", batch ", step + 1, "/", steps, ": ", e.what()),
            epoch - 1, step);
      }
      Rng augment = augment_epoch.split(static_cast<uint64_t>(step));
      augment_batch(options.augment, train, augment, x.data(), count, augment_scratch);
      if (target == Target::Input) {
        take_input_target(x, y);  // the clean (augmented) image is what is reconstructed
        if (options.noise > 0)
          for (float& v : x.span()) v += static_cast<float>(options.noise * augment.normal());
      }
      const double lr = options.schedule.rate(lr0, epoch - 1, step, steps, options.epochs);
      if (step == first_step) stats.learning_rate = lr;
      StepResult r;
      copy_buffers(false);
      try {
        if (parts == 1)
          r = model.train_step(x, targets_for(target, labels, y, 0, count), loss, optimizer, lr,
                               {.clip_grad_norm = options.clip_grad_norm});
        else
          r = sharded_step(count, lr);
      } catch (const Diverged& e) {
        copy_buffers(true);
        throw Diverged(
            detail::concat("epoch ", epoch, ", batch ", step + 1, "/", steps, ": ", e.what()),
            epoch - 1, step);
      } catch (const JobError& e) {
        throw JobError(
            detail::concat("epoch ", epoch, ", batch ", step + 1, "/", steps, ": ", e.what()));
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
        if (!agree(callbacks.on_batch_end(b)) && step + 1 < steps) {
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
    if (overlap) {
      stats.reduce_seconds = overlap->reduce_seconds();
      stats.reduce_waited_seconds = overlap->waited_seconds();
      overlap->reset_times();
    } else {
      stats.reduce_seconds = reduce_seconds;
      stats.reduce_waited_seconds = waited_seconds;
    }
    reduce_seconds = waited_seconds = 0;
    if (test) {
      const EvalStats e = evaluate(model, *test, loss, model.input_shape()[0],
                                   options.test_confusion, options.communicator, target);
      stats.test_loss = e.loss;
      stats.test_acc = e.accuracy;
      stats.test_regression = e.regression;
    }
    if (options.validation) {
      const EvalStats e = evaluate(model, *options.validation, loss, model.input_shape()[0],
                                   nullptr, options.communicator, target);
      stats.val_loss = e.loss;
      stats.val_acc = e.accuracy;
      stats.val_regression = e.regression;
    }
    result.epochs.push_back(stats);
    result.completed_epochs = epoch;
    result.completed_steps = 0;
    if (callbacks.on_epoch_end && !agree(callbacks.on_epoch_end(stats)) && epoch < options.epochs) {
      result.stopped = true;
      return result;
    }
  }
  return result;
}

}  // namespace convnet
