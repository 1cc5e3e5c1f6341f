// The flag blocks several commands share.
#include "common_flags.hpp"

#include <algorithm>

#include "convnet/spec.hpp"
#include "convnet/zoo.hpp"

namespace convnet::cli {

void add_model_flag(ArgParser& args) {
  args.add("model", "lenet",
           "built-in model (lenet, vgg-small, resnet-small) or a model spec file (a path ending "
           "in .txt or containing '/'; see docs/model-spec.md)");
}

std::unique_ptr<Model<float>> check_model_flag(const ArgParser& args) {
  const std::string name = args.get("model");
  if (is_model_spec_path(name)) return load_model<float>(name);
  if (const auto names = model_names();
      std::find(names.begin(), names.end(), name) == names.end()) {
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    throw UsageError{"--model: unknown model '" + name + "' (built-in: " + known +
                     "; or a spec file, a path ending in .txt or containing '/')"};
  }
  return nullptr;
}

void add_data_flags(ArgParser& args, const std::string& data_default,
                    const std::string& data_help) {
  args.add("data", data_default, data_help);
  args.add("image-size", "3x32x32", "CxHxW images of an image folder are converted to");
}

void add_checkpoint_flag(ArgParser& args) {
  args.add("checkpoint", "", "checkpoint written by convnet train --save (required)");
}

std::string checkpoint_flag(const ArgParser& args) {
  const std::string path = args.get("checkpoint");
  if (path.empty()) throw UsageError{"--checkpoint: required (a file from convnet train --save)"};
  return path;
}

}  // namespace convnet::cli
