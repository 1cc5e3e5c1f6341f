// The optimizer flags shared by train and explain: --optimizer, --lr, --momentum,
// --weight-decay, --nesterov.
#pragma once

#include <memory>

#include "args.hpp"
#include "convnet/optim.hpp"

namespace convnet::cli {

void add_optimizer_flags(ArgParser& args);
// The optimizer the flags describe; UsageError (exit 2) for an unknown name and for a negative
// --lr, --momentum or --weight-decay, a warning on stderr for a momentum of 1 or more.
std::unique_ptr<Optimizer<float>> make_optimizer(const ArgParser& args);
// --lr resolved: "auto" is 0.05 for sgd and 0.001 for the others; UsageError when negative.
double learning_rate_flag(const ArgParser& args);

}  // namespace convnet::cli
