// The optimizer flags shared by train and explain.
#include "optimizer_flags.hpp"

#include <iostream>

namespace convnet::cli {

void add_optimizer_flags(ArgParser& args) {
  args.add("optimizer", "sgd", "sgd, adam, adamw or rmsprop");
  args.add("lr", "auto", "learning rate; auto = 0.05 for sgd, 0.001 for adam, adamw, rmsprop");
  args.add("momentum", "0.9", "momentum for sgd and rmsprop");
  args.add("weight-decay", "auto",
           "L2 penalty (decoupled for adamw); auto = 0.01 for adamw (PyTorch's default), 0 for "
           "the others");
  args.add_switch("nesterov", "use Nesterov momentum with sgd");
}

// A negative rate, momentum or weight decay is refused (exit 2, naming the flag): PyTorch's
// optimizers reject them too.

double learning_rate_flag(const ArgParser& args) {
  if (args.get("lr") == "auto") return args.get("optimizer") == "sgd" ? 0.05 : 1e-3;
  return non_negative_flag(args, "lr", "a learning rate");
}

std::unique_ptr<Optimizer<float>> make_optimizer(const ArgParser& args) {
  const std::string name = args.get("optimizer");
  if (name != "sgd" && name != "adam" && name != "adamw" && name != "rmsprop")
    throw UsageError{"--optimizer: expected sgd, adam, adamw or rmsprop, got '" + name + "'"};
  const double lr = learning_rate_flag(args);
  const double momentum = non_negative_flag(args, "momentum", "a momentum");
  // PyTorch accepts a momentum of 1 or more, so it is not refused; but the velocity then never
  // decays, and a user who typed 9 for 0.9 should hear of it before hours of training.
  if (momentum >= 1 && (name == "sgd" || name == "rmsprop"))
    std::cerr << "convnet: warning: --momentum " << args.get("momentum")
              << " is not below 1: the velocity keeps all of every past gradient and grows "
                 "without bound (usual values are 0.9 to 0.99)\n";
  const double wd = args.get("weight-decay") == "auto"
                        ? (name == "adamw" ? AdamWOptions{}.weight_decay : 0.0)
                        : non_negative_flag(args, "weight-decay", "a weight decay");
  if (name == "sgd")
    return std::make_unique<Sgd<float>>(SgdOptions{.lr = lr,
                                                   .momentum = momentum,
                                                   .weight_decay = wd,
                                                   .nesterov = args.get_switch("nesterov")});
  if (name == "adamw")
    return std::make_unique<AdamW<float>>(AdamWOptions{.lr = lr, .weight_decay = wd});
  if (name == "adam")
    return std::make_unique<Adam<float>>(AdamOptions{.lr = lr, .weight_decay = wd});
  return std::make_unique<RmsProp<float>>(
      RmsPropOptions{.lr = lr, .weight_decay = wd, .momentum = momentum});
}

}  // namespace convnet::cli
