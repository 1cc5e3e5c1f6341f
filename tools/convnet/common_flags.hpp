// The flag blocks several commands share: the model (--model), the data (--data, --image-size),
// a trained model (--checkpoint).
#pragma once

#include <memory>
#include <string>

#include "args.hpp"
#include "convnet/model.hpp"

namespace convnet::cli {

// --model NAME|FILE: a built-in model or a model spec file.
void add_model_flag(ArgParser& args);
// The --model flag checked before any data is loaded or time spent: a spec file is read and
// parsed (its errors name FILE:LINE), returned unbuilt; a built-in name must be known (null is
// returned: the model is made once the data's class count is known); a UsageError otherwise.
std::unique_ptr<Model<float>> check_model_flag(const ArgParser& args);

// --data DIR and --image-size CxHxW (what images of an image folder become). `data_default`:
// "" when the flag is required to name the data.
void add_data_flags(ArgParser& args, const std::string& data_default, const std::string& data_help);

// --checkpoint CKPT: a file written by convnet train --save, and its value, a UsageError when
// not given.
void add_checkpoint_flag(ArgParser& args);
std::string checkpoint_flag(const ArgParser& args);

}  // namespace convnet::cli
