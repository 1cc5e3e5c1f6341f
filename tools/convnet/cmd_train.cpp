// convnet train: load a dataset (Fashion-MNIST or any MNIST-format IDX set, CIFAR-10, or folders
// of images), build a model (built-in or a spec file) or resume a checkpoint, train it, report
// every epoch as text or JSON lines, and save checkpoints.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>

#include "args.hpp"
#include "commands.hpp"
#include "data_source.hpp"
#include "convnet/checkpoint.hpp"
#include "convnet/runtime.hpp"
#include "convnet/spec.hpp"
#include "convnet/train.hpp"

namespace convnet::cli {
namespace {

std::unique_ptr<Optimizer<float>> make_optimizer(const ArgParser& args) {
  const std::string name = args.get("optimizer");
  const std::string lr_text = args.get("lr");
  const double momentum = args.get_double("momentum");
  const double wd = args.get_double("weight-decay");
  auto lr = [&](double default_lr) { return lr_text == "auto" ? default_lr : args.get_double("lr"); };
  if (name == "sgd")
    return std::make_unique<Sgd<float>>(SgdOptions{.lr = lr(0.05),
                                                   .momentum = momentum,
                                                   .weight_decay = wd,
                                                   .nesterov = args.get_switch("nesterov")});
  if (name == "adam" || name == "adamw")
    return std::make_unique<Adam<float>>(AdamOptions{
        .lr = lr(1e-3), .weight_decay = wd, .decoupled = name == "adamw"});
  if (name == "rmsprop")
    return std::make_unique<RmsProp<float>>(
        RmsPropOptions{.lr = lr(1e-3), .weight_decay = wd, .momentum = momentum});
  throw UsageError{"--optimizer: expected sgd, adam, adamw or rmsprop, got '" + name + "'"};
}

// Keeps the first `limit` samples (0: all).
void truncate(Dataset& d, int64_t limit) {
  if (limit > 0 && limit < d.size()) d.truncate(limit);
}

// The flags a checkpoint records and --resume reuses unless given again: everything that decides
// the data, the batches and the updates (the seed is the checkpoint's own).
constexpr const char* kResumedFlags[] = {
    "model",    "data",      "image-size", "val-split",    "normalize",   "crop-padding",
    "flip",     "batch",     "optimizer",  "lr",           "momentum",    "weight-decay",
    "nesterov", "train-limit", "test-limit"};

}  // namespace

int cmd_train(int argc, char** argv) {
  ArgParser args("convnet train",
                 "Trains a built-in model or a model spec file on an IDX, CIFAR-10 or image-folder\n"
                 "dataset and reports, per epoch, train loss and accuracy, test loss and accuracy,\n"
                 "seconds and images/s. --save writes a checkpoint; --resume continues one exactly.\n"
                 "The defaults are the reference recipe: LeNet, SGD lr 0.05 momentum 0.9.");
  args.add("data", "/usr/share/datasets/fashion-mnist",
           "folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (MNIST format), CIFAR-10 "
           "binary batches (data_batch_1.bin ... test_batch.bin), or train/ and test/ folders of "
           "class sub-folders of PNG/JPEG/PGM/BMP images");
  args.add("image-size", "3x32x32", "CxHxW images of an image folder are converted to");
  args.add("val-split", "0", "hold out this fraction of the training set for validation");
  args.add_switch("normalize", "normalise each channel by the training set's mean and stddev");
  args.add("crop-padding", "0", "augment: random crops of images padded by this many pixels");
  args.add_switch("flip", "augment: mirror training images left-right at random");
  args.add("model", "lenet",
           "built-in model (lenet, vgg-small, resnet-small) or a model spec file (a path ending "
           "in .txt or containing '/'; see docs/model-spec.md)");
  args.add("epochs", "5", "passes over the training set (the total, when resuming)");
  args.add("batch", "64", "mini-batch size");
  args.add("optimizer", "sgd", "sgd, adam, adamw or rmsprop");
  args.add("lr", "auto", "learning rate; auto = 0.05 for sgd, 0.001 for adam, adamw, rmsprop");
  args.add("momentum", "0.9", "momentum for sgd and rmsprop");
  args.add("weight-decay", "0", "L2 penalty (decoupled for adamw)");
  args.add_switch("nesterov", "use Nesterov momentum with sgd");
  args.add("seed", "1", "seed for initialisation and shuffling (same seed, same run)");
  args.add("threads", "0", "worker threads; 0 = all cores ($CONVNET_THREADS if set)");
  args.add("train-limit", "0", "use only the first N training images (0 = all)");
  args.add("test-limit", "0", "use only the first N test images (0 = all)");
  args.add_switch("json", "print each epoch as one JSON object per line (summary to stderr)");
  args.add("save", "", "write a checkpoint (safetensors) to this file at the end");
  args.add("save-every", "0", "also write the --save checkpoint every N epochs (0 = only at the end)");
  args.add("save-best", "",
           "write a checkpoint to this file after every epoch that improves validation accuracy "
           "(needs --val-split)");
  args.add("resume", "",
           "continue the checkpoint in this file up to --epochs; flags not given again take the "
           "checkpoint's values");
  if (!args.parse(argc, argv, 2)) {
    std::cout << args.help();
    return 0;
  }

  // A resumed run takes its model, seed and recipe from the checkpoint.
  Checkpoint<float> resumed;
  const std::string resume_path = args.get("resume");
  if (!resume_path.empty()) {
    if (args.given("model"))
      throw UsageError{"--model: not with --resume (the checkpoint holds the model)"};
    resumed = load_checkpoint<float>(resume_path);
    for (const char* name : kResumedFlags)
      if (const auto it = resumed.state.extra.find(name); it != resumed.state.extra.end())
        args.set_default(name, it->second);
    args.set_default("seed", std::to_string(resumed.state.seed));
  }
  const std::string save_path = args.get("save");
  const int64_t save_every = args.get_int("save-every", 0);
  if (save_every > 0 && save_path.empty())
    throw UsageError{"--save-every: needs --save FILE to write to"};

  const std::string best_path = args.get("save-best");
  const int64_t epochs = args.get_int("epochs", 1);
  const bool resuming = !resume_path.empty();
  if (resuming && resumed.state.epoch >= epochs)
    throw UsageError{"--epochs " + std::to_string(epochs) + ": " + resume_path + " has already run " +
                     std::to_string(resumed.state.epoch) + " epochs (--epochs is the total)"};
  const int64_t batch = args.get_int("batch", 1);
  const int64_t threads = args.get_int("threads", 0);
  if (threads > 1024) throw UsageError{"--threads: expected at most 1024, got " + args.get("threads")};
  const int64_t seed = args.get_int("seed", 0);
  const bool json = args.get_switch("json");
  auto optimizer = make_optimizer(args);
  if (threads > 0) set_num_threads(static_cast<int>(threads));

  const double val_split = args.get_double("val-split");
  if (!(val_split >= 0 && val_split < 1))
    throw UsageError{"--val-split: expected a fraction in [0, 1), got " + args.get("val-split")};
  if (!best_path.empty() && !(val_split > 0))
    throw UsageError{"--save-best: needs --val-split (the best model is chosen on validation "
                     "data, never on the test set)"};
  if (!best_path.empty() && best_path == save_path)
    throw UsageError{"--save-best: must differ from --save (" + save_path + ")"};
  const int64_t crop_padding = args.get_int("crop-padding", 0);
  const Shape image_shape = parse_chw("image-size", args.get("image-size"));

  TrainTest data = load_train_test(args.get("data"), image_shape);
  Dataset& train = data.train;
  Dataset& test = data.test;
  truncate(train, args.get_int("train-limit", 0));
  truncate(test, args.get_int("test-limit", 0));
  Dataset validation;
  if (val_split > 0) {
    TrainValidation parts = split_validation(train, val_split, static_cast<uint64_t>(seed));
    train = std::move(parts.train);
    validation = std::move(parts.validation);
  }
  if (args.get_switch("normalize")) {
    const Dataset::ChannelStats stats = train.channel_stats();  // training images only
    for (Dataset* d : {&train, &test, &validation})
      if (d->size() > 0) d->set_normalization(stats.mean, stats.stddev);
  }

  std::unique_ptr<Model<float>> owned;
  if (resuming) {
    restore_optimizer(resumed, *optimizer);
    owned = std::move(resumed.model);
    if (owned->input_shape() != train.shape().with_batch(batch))  // keeps the loaded values
      owned->build(train.shape().with_batch(batch));
  } else {
    owned = load_model<float>(args.get("model"), train.classes());
    owned->build(train.shape().with_batch(batch), static_cast<uint64_t>(seed));
  }
  Model<float>& model = *owned;
  const Shape& out = model.output_shape();
  CONVNET_CHECK(out.rank() == 2 && out[1] == train.classes(), "model ", args.get("model"),
                " has output ", out.str(), " but the data has ", train.classes(),
                " classes: its last layer needs ", train.classes(), " outputs");
  // The best validation accuracy so far (--save-best). Checkpoints record it, so a resumed run
  // replaces the best checkpoint only with a better model than it already holds.
  double best_val_acc = -1;
  if (resuming && !best_path.empty())
    if (const auto it = resumed.state.extra.find("best_val_acc"); it != resumed.state.extra.end())
      best_val_acc = std::strtod(it->second.c_str(), nullptr);
  auto save = [&](const std::string& path, int epoch) {
    TrainingState state{.epoch = epoch,
                        .seed = static_cast<uint64_t>(seed),
                        .extra = {},
                        .input = {train.class_names(), train.mean(), train.stddev()}};
    for (const char* name : kResumedFlags) state.extra[name] = args.value_text(name);
    if (!best_path.empty()) {
      char best[32];
      std::snprintf(best, sizeof best, "%.17g", best_val_acc);
      state.extra["best_val_acc"] = best;
    }
    save_checkpoint(path, model, optimizer.get(), state);
  };
  std::ostream& info = json ? std::cerr : std::cout;
  if (resuming)
    info << "resuming " << resume_path << " after epoch " << resumed.state.epoch << " (step "
         << optimizer->steps() << ")\n";
  info << "model " << args.get("model") << " on " << train.size() << " training, "
       << (validation.size() > 0 ? std::to_string(validation.size()) + " validation, " : "")
       << test.size() << " test images " << train.sample_shape().str() << " (" << data.format
       << "), optimizer "
       << optimizer->name() << " lr " << optimizer->learning_rate() << ", batch " << batch
       << ", threads " << num_threads() << "\n"
       << model.summary() << std::flush;

  SoftmaxCrossEntropy<float> loss;
  fit(model, train, &test, loss, *optimizer,
      {.epochs = static_cast<int>(epochs),
       .completed_epochs = resuming ? static_cast<int>(resumed.state.epoch) : 0,
       .batch = batch,
       .seed = static_cast<uint64_t>(seed),
       .augment = {.crop_padding = crop_padding, .horizontal_flip = args.get_switch("flip")},
       .validation = validation.size() > 0 ? &validation : nullptr},
      [&](const EpochStats& s) {
        const bool has_val = validation.size() > 0;
        char line[640], val[160] = "";
        if (json) {
          if (has_val)
            std::snprintf(val, sizeof val, "\"val_loss\": %.6f, \"val_acc\": %.6f, ", s.val_loss,
                          s.val_acc);
          std::snprintf(line, sizeof line,
                        "{\"epoch\": %d, \"train_loss\": %.6f, \"train_acc\": %.6f, %s"
                        "\"test_loss\": %.6f, \"test_acc\": %.6f, \"seconds\": %.3f, "
                        "\"images_per_s\": %.1f}",
                        s.epoch, s.train_loss, s.train_acc, val, s.test_loss, s.test_acc,
                        s.seconds, s.images_per_s);
        } else {
          if (has_val)
            std::snprintf(val, sizeof val, "val loss %.4f acc %.2f%%  ", s.val_loss,
                          100 * s.val_acc);
          std::snprintf(line, sizeof line,
                        "epoch %d/%lld  train loss %.4f acc %.2f%%  %stest loss %.4f acc %.2f%%  "
                        "%.1f s  %.0f images/s",
                        s.epoch, static_cast<long long>(epochs), s.train_loss,
                        100 * s.train_acc, val, s.test_loss, 100 * s.test_acc, s.seconds,
                        s.images_per_s);
        }
        std::cout << line << std::endl;
        // Strictly better only: on a tie the earlier (less trained) model stays.
        if (!best_path.empty() && s.val_acc > best_val_acc) {
          best_val_acc = s.val_acc;
          save(best_path, s.epoch);
          char note[96];
          std::snprintf(note, sizeof note, "best val acc %.2f%% at epoch %d: saved ",
                        100 * s.val_acc, s.epoch);
          info << note << best_path << std::endl;
        }
        if (save_every > 0 && s.epoch % save_every == 0 && s.epoch < epochs)
          save(save_path, s.epoch);
      });
  if (!save_path.empty()) {
    save(save_path, static_cast<int>(epochs));
    info << "saved " << save_path << "\n";
  }
  return 0;
}

}  // namespace convnet::cli
