// The optimizer flags shared by train and explain.
#include "optimizer_flags.hpp"

namespace convnet::cli {

void add_optimizer_flags(ArgParser& args) {
  args.add("optimizer", "sgd", "sgd, adam, adamw or rmsprop");
  args.add("lr", "auto", "learning rate; auto = 0.05 for sgd, 0.001 for adam, adamw, rmsprop");
  args.add("momentum", "0.9", "momentum for sgd and rmsprop");
  args.add("weight-decay", "0", "L2 penalty (decoupled for adamw)");
  args.add_switch("nesterov", "use Nesterov momentum with sgd");
}

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

}  // namespace convnet::cli
