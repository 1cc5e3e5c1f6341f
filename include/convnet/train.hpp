// The training loop: epochs of shuffled mini-batches (a fresh shuffle per epoch, seeded from
// (seed, epoch)), then an evaluation pass, reporting loss and accuracy for both.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "convnet/data.hpp"
#include "convnet/model.hpp"

namespace convnet {

struct FitOptions {
  int epochs = 1;  // the total: training runs epochs completed_epochs + 1 ... epochs
  // Epochs already run (resuming from a checkpoint). Each epoch's shuffle and augmentation come
  // from (seed, epoch), so resuming after epoch k continues exactly as an unbroken run would.
  int completed_epochs = 0;
  int64_t batch = 64;
  uint64_t seed = 1;  // shuffling and augmentation; the model's initialisation has its own seed
  Augmentation augment{};  // applied to training batches only
  // Evaluated after every epoch when set (a held-out part of the training data, see
  // split_validation), besides `test`.
  const Dataset* validation = nullptr;
};

struct EvalStats {
  double loss = 0, accuracy = 0;  // mean loss per sample, fraction correct
};

struct EpochStats {
  int epoch = 0;  // 1-based
  double train_loss = 0, train_acc = 0, test_loss = 0, test_acc = 0;
  double val_loss = 0, val_acc = 0;  // when FitOptions::validation is set
  double seconds = 0;       // wall time of the training pass
  double images_per_s = 0;  // training images / seconds
};

// Mean loss and accuracy of the model over every sample, in batches (Mode::Eval).
EvalStats evaluate(Model<float>& model, const Dataset& data, Loss<float>& loss,
                   int64_t batch = 256);

// Trains for options.epochs; after each epoch evaluates `test` (if not null) and calls
// on_epoch. The model must be built for options.batch (or larger) samples of data's shape.
std::vector<EpochStats> fit(Model<float>& model, const Dataset& train, const Dataset* test,
                            Loss<float>& loss, Optimizer<float>& optimizer,
                            const FitOptions& options,
                            const std::function<void(const EpochStats&)>& on_epoch = {});

}  // namespace convnet
