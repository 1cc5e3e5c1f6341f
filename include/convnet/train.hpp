// The training loop: epochs of shuffled mini-batches (a fresh shuffle per epoch, seeded from
// (seed, epoch)), then an evaluation pass, reporting loss and accuracy for both.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "convnet/data.hpp"
#include "convnet/metrics.hpp"
#include "convnet/model.hpp"
#include "convnet/schedule.hpp"

namespace convnet {

class ConfusionMatrix;  // convnet/metrics.hpp
class Communicator;     // convnet/distributed.hpp

// What the model's output is trained to match.
enum class Target {
  Auto,    // the data's real-valued targets when it has them (Values), else its labels
  Labels,  // class labels: cross-entropy, or a regression loss on one-hot rows
  Values,  // the data's real-valued targets (Dataset::set_targets): regression
  Input,   // the input sample itself, before any noise: an autoencoder's reconstruction
};
// Auto resolved for `data`.
Target resolve_target(Target target, const Dataset& data);
// "labels", "values", "input".
const char* target_name(Target target);
// Throws naming both shapes unless the model's output fits `target` for `data`: labels need one
// output per class (when data has classes), values one per target, input the input's shape.
// `where` (the model and the data, say) starts the message when given.
void check_output_fits(const Model<float>& model, const Dataset& data, Target target,
                       const std::string& where = "");

struct FitOptions {
  int epochs = 1;  // the total: training runs epochs completed_epochs + 1 ... epochs
  // Epochs already run (resuming from a checkpoint), and batches already run of the next one
  // (a run stopped mid-epoch). Each epoch's shuffle comes from (seed, epoch) and each batch's
  // augmentation from (seed, epoch, batch), so a resumed run continues exactly as an unbroken
  // run would. A resumed epoch's training loss and accuracy cover the batches it ran.
  int completed_epochs = 0;
  int64_t completed_steps = 0;
  int64_t batch = 64;
  uint64_t seed = 1;  // shuffling and augmentation; the model's initialisation has its own seed
  Augmentation augment{};  // applied to training batches only
  // Evaluated after every epoch when set (a held-out part of the training data, see
  // split_validation), besides `test`.
  const Dataset* validation = nullptr;
  // The learning rate of every step: schedule.rate(lr0, ...) with lr0 the optimizer's learning
  // rate when fit() starts (see convnet/schedule.hpp). Constant by default.
  LrSchedule schedule{};
  double clip_grad_norm = 0;  // see StepOptions; 0: no clipping
  // Each batch of `count` samples as this many shards, part p of count/K + (p < count % K)
  // samples in batch order, whose gradients (each of its share of the batch's mean loss) are
  // added in order, ((g_0 + g_1) + g_2) + ..., before one update: a large batch in the memory of
  // a shard, and the single-process reference of a data-parallel run (below). A shard of
  // BatchNorm normalises with its own statistics, and the first shard's update the running
  // ones; Dropout and augmentation draw for each sample what the whole batch would. The model
  // must be built for ceil(batch / K) samples or more. 1: whole batches (the plain step).
  int micro_batches = 1;
  // Data-parallel training (convnet/distributed.hpp): with N > 1 processes, rank r computes
  // shard r of every batch as `micro_batches = N` would, and the ranks' gradients are summed in
  // rank order, so the run gives the same bits as one process with micro_batches = N (and the
  // same threads per process). Every rank gets the same figures and takes the same decisions;
  // callbacks run on every rank (one returning false on any rank stops all of them). A data-
  // parallel run takes micro_batches = 1 (or N). Null: one process.
  Communicator* communicator = nullptr;
  // How a data-parallel step sums the ranks' gradients, in rank order either way (the bits of
  // micro_batches = N, above). Ordered (the default): the whole arena after the backward pass.
  // Overlapped: the gradient arena in buckets (the first of first_bucket values, then of
  // `bucket`), each summed on a communication thread as soon as the backward pass has finished
  // it, while the backward pass goes on: the time of the sums hides behind the backward pass,
  // which matters where the network is slow. Bucket 0 (the default): an eighth of the arena,
  // from 64 Ki to 6.5 Mi values (256 KiB to PyTorch DDP's 25 MiB), since the last bucket, which
  // the backward pass finishes last, is the one never hidden; first_bucket 0: at most 1 MiB
  // (DDP's), so that communication starts early.
  enum class Reduction { Ordered, Overlapped };
  Reduction reduction = Reduction::Ordered;
  int64_t first_bucket = 0, bucket = 0;
  // What the output is trained to match (Auto: the data's targets, else its labels); the test
  // and validation evaluations measure the same.
  Target target = Target::Auto;
  // Target::Input: Gaussian noise of this standard deviation added to each training input after
  // its target is taken (a denoising autoencoder); drawn like augmentation, from (seed, epoch,
  // batch) in the batch's sample order, so a data-parallel run draws what one process would.
  double noise = 0;
  // When set (and `test` is given), each epoch's test evaluation also refills this matrix, so
  // a caller that wants it (the training report) needs no second pass over the test set.
  ConfusionMatrix* test_confusion = nullptr;
};

// After each training batch (the numbers so far in this epoch).
struct BatchStats {
  int epoch = 0;            // 1-based
  int64_t step = 0;         // 0-based batch index within the epoch
  int64_t steps = 0;        // batches per epoch
  int64_t images = 0;       // images trained on so far this epoch
  double loss = 0;          // this batch's mean loss
  double running_loss = 0;  // mean loss per image so far this epoch
  double running_acc = 0;
  double learning_rate = 0;  // what this batch was updated with
  double seconds = 0;        // since the epoch started
};

struct EvalStats {
  double loss = 0, accuracy = 0;  // mean loss per sample, fraction correct (classification)
  RegressionStats regression{};   // Target::Values and ::Input: MSE, MAE, R² (empty otherwise)
};

struct EpochStats {
  int epoch = 0;  // 1-based
  double train_loss = 0, train_acc = 0, test_loss = 0, test_acc = 0;
  double val_loss = 0, val_acc = 0;  // when FitOptions::validation is set
  // Regression and reconstruction runs: the test and validation sets' MSE, MAE and R² (in the
  // targets' units); empty for classification, whose *_acc hold the figures.
  RegressionStats test_regression{}, val_regression{};
  double seconds = 0;                // wall time of the training pass
  double images_per_s = 0;           // training images / seconds
  double learning_rate = 0;          // of the epoch's first batch (all of them but with onecycle)
  // Per model.params() entry: the mean over the epoch's batches of the L2 norm of its
  // gradient, ||∂L/∂w||₂ (vanishing or exploding gradients show here first).
  std::vector<double> grad_norms;
  // Data-parallel runs: seconds spent summing the ranks' gradients, and the part of them the
  // steps waited for (all of it when Ordered; what the backward pass did not hide when
  // Overlapped).
  double reduce_seconds = 0, reduce_waited_seconds = 0;
};

// Called by fit(); returning false stops training: after a batch, at once (the epoch is left
// unfinished and not evaluated); after an epoch, before the next starts.
struct FitCallbacks {
  std::function<bool(const BatchStats&)> on_batch_end;
  std::function<bool(const EpochStats&)> on_epoch_end;
};

struct FitResult {
  std::vector<EpochStats> epochs;  // the epochs finished by this call
  // Where training stands: epochs finished in all, and batches run of the next (non-zero only
  // when a batch callback stopped it). What FitOptions::completed_* takes to resume.
  int completed_epochs = 0;
  int64_t completed_steps = 0;
  bool stopped = false;  // a callback stopped it before options.epochs
};

// Mean loss and accuracy of the model over every sample, in batches (Mode::Eval).
// When `confusion` is set it is reset to the data's classes and counts every prediction. With a
// communicator of N ranks, rank r evaluates batches r, r + N, ... and every rank gets the
// figures one process would (the batches' losses are added in batch order); every rank must
// hold the same weights.
// `target` says what the output is measured against (see Target); for values and input the
// regression figures are filled (accuracy stays 0) and `confusion` is ignored.
EvalStats evaluate(Model<float>& model, const Dataset& data, Loss<float>& loss, int64_t batch = 256,
                   ConfusionMatrix* confusion = nullptr, Communicator* communicator = nullptr,
                   Target target = Target::Auto);

// Trains up to options.epochs; after each epoch evaluates `test` (if not null) and the
// validation set, then calls callbacks.on_epoch_end. The model must be built for options.batch
// (or larger) samples of data's shape. Each step's learning rate goes to the update as its
// argument; the optimizer's own learning_rate() is the schedule's lr0 and is left as it is. A step whose loss or gradients are not finite throws Diverged, naming the epoch and
// batch, with the model (parameters and buffers) and the optimizer as they were before that
// batch and Diverged::completed_* saying where that is (what FitOptions::completed_* takes to
// resume; a Dropout layer's stream has moved on by the failed batch).
FitResult fit(Model<float>& model, const Dataset& train, const Dataset* test, Loss<float>& loss,
              Optimizer<float>& optimizer, const FitOptions& options,
              const FitCallbacks& callbacks = {});

}  // namespace convnet
