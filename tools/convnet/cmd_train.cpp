// convnet train: load Fashion-MNIST (or any MNIST-format IDX set), build a model, train it,
// report every epoch as text or JSON lines.
#include <cstdio>
#include <iostream>
#include <memory>

#include "args.hpp"
#include "commands.hpp"
#include "convnet/runtime.hpp"
#include "convnet/train.hpp"
#include "convnet/zoo.hpp"

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

}  // namespace

int cmd_train(int argc, char** argv) {
  ArgParser args("convnet train",
                 "Trains a built-in model on an MNIST-format IDX dataset and reports, per epoch,\n"
                 "train loss and accuracy, test loss and accuracy, seconds and images/s.\n"
                 "The defaults are the reference recipe: LeNet, SGD lr 0.05 momentum 0.9.");
  args.add("data", "/usr/share/datasets/fashion-mnist",
           "folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]");
  args.add("model", "lenet", "built-in model: lenet or vgg-small");
  args.add("epochs", "5", "passes over the training set");
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
  if (!args.parse(argc, argv, 2)) {
    std::cout << args.help();
    return 0;
  }

  const int64_t epochs = args.get_int("epochs", 1);
  const int64_t batch = args.get_int("batch", 1);
  const int64_t threads = args.get_int("threads", 0);
  if (threads > 1024) throw UsageError{"--threads: expected at most 1024, got " + args.get("threads")};
  const int64_t seed = args.get_int("seed", 0);
  const bool json = args.get_switch("json");
  auto optimizer = make_optimizer(args);
  if (threads > 0) set_num_threads(static_cast<int>(threads));

  Dataset train = load_mnist_split(args.get("data"), "train");
  Dataset test = load_mnist_split(args.get("data"), "t10k");
  truncate(train, args.get_int("train-limit", 0));
  truncate(test, args.get_int("test-limit", 0));

  Sequential<float> model = make_model<float>(args.get("model"), train.classes());
  model.build(train.shape().with_batch(batch), static_cast<uint64_t>(seed));
  std::ostream& info = json ? std::cerr : std::cout;
  info << "model " << args.get("model") << " on " << train.size() << " training and "
       << test.size() << " test images " << train.sample_shape().str() << ", optimizer "
       << optimizer->name() << " lr " << optimizer->learning_rate() << ", batch " << batch
       << ", threads " << num_threads() << "\n"
       << model.summary() << std::flush;

  SoftmaxCrossEntropy<float> loss;
  fit(model, train, &test, loss, *optimizer,
      {.epochs = static_cast<int>(epochs), .batch = batch, .seed = static_cast<uint64_t>(seed)},
      [&](const EpochStats& s) {
        char line[512];
        if (json) {
          std::snprintf(line, sizeof line,
                        "{\"epoch\": %d, \"train_loss\": %.6f, \"train_acc\": %.6f, "
                        "\"test_loss\": %.6f, \"test_acc\": %.6f, \"seconds\": %.3f, "
                        "\"images_per_s\": %.1f}",
                        s.epoch, s.train_loss, s.train_acc, s.test_loss, s.test_acc, s.seconds,
                        s.images_per_s);
        } else {
          std::snprintf(line, sizeof line,
                        "epoch %d/%lld  train loss %.4f acc %.2f%%  test loss %.4f acc %.2f%%  "
                        "%.1f s  %.0f images/s",
                        s.epoch, static_cast<long long>(epochs), s.train_loss,
                        100 * s.train_acc, s.test_loss, 100 * s.test_acc, s.seconds,
                        s.images_per_s);
        }
        std::cout << line << std::endl;
      });
  return 0;
}

}  // namespace convnet::cli
