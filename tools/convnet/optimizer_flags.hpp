// The optimizer flags shared by train and explain: --optimizer, --lr, --momentum,
// --weight-decay, --nesterov.
#pragma once

#include <memory>

#include "args.hpp"
#include "convnet/optim.hpp"

namespace convnet::cli {

void add_optimizer_flags(ArgParser& args);
// The optimizer the flags describe; UsageError for an unknown name.
std::unique_ptr<Optimizer<float>> make_optimizer(const ArgParser& args);

}  // namespace convnet::cli
