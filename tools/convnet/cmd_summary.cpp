// convnet summary: builds a model (built-in or a spec file) for one input shape and prints its
// layer table, parameter count and FLOPs, or with --spec the model as spec text.
#include <iostream>

#include "args.hpp"
#include "commands.hpp"
#include "common_flags.hpp"
#include "convnet/spec.hpp"

namespace convnet::cli {

int cmd_summary(int argc, char** argv) {
  ArgParser args("convnet summary",
                 "Prints a model's layers with their output shapes and parameters, the parameter\n"
                 "count and the FLOPs per sample of a forward pass and of a training step.\n"
                 "With --spec, prints the model as a spec file instead (docs/model-spec.md).");
  add_model_flag(args);
  args.add("input", "1x28x28", "one sample's shape, CxHxW");
  args.add("classes", "10", "outputs of a built-in model's last layer");
  args.add_switch("spec", "print the model as spec text instead of the table");
  if (!args.parse(argc, argv, 2)) {
    std::cout << args.help();
    return 0;
  }
  const Shape sample = parse_chw("input", args.get("input"));
  std::unique_ptr<Model<float>> model =
      load_model<float>(args.get("model"), args.get_int("classes", 1));
  if (args.get_switch("spec")) {
    std::cout << model->spec();
    return 0;
  }
  model->build(Shape{1, sample[0], sample[1], sample[2]});
  std::cout << "model " << args.get("model") << ", input " << args.get("input") << "\n"
            << model->summary();
  return 0;
}

}  // namespace convnet::cli
