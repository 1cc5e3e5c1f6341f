// convnet visualize: a checkpoint's first-layer filters and the feature maps of one image through
// every convolution, as PNG files.
#include <cctype>
#include <filesystem>
#include <iostream>

#include "args.hpp"
#include "commands.hpp"
#include "common_flags.hpp"
#include "convnet/predictor.hpp"
#include "convnet/report.hpp"

namespace convnet::cli {

int cmd_visualize(int argc, char** argv) {
  ArgParser args("convnet visualize",
                 "Writes a checkpoint's first convolution's filters (filters.png) and the feature\n"
                 "maps of an image through every convolution (features_<n>_<layer>.png, one grid\n"
                 "of channels each, every map scaled to its own range) into a folder.");
  add_checkpoint_flag(args);
  args.add("image", "", "the image whose feature maps to draw (PNG, JPEG, PGM/PPM, BMP; required)");
  args.add("out", "", "the folder to write into (created if missing; required)");
  if (!args.parse(argc, argv, 2)) {
    std::cout << args.help();
    return 0;
  }
  const std::string path = checkpoint_flag(args);
  for (const char* flag : {"image", "out"})
    if (args.get(flag).empty()) throw UsageError{std::string("--") + flag + ": required"};
  const Checkpoint<float> checkpoint = load_checkpoint<float>(path, 1);
  for (const std::string& note : checkpoint.notes)
    std::cerr << "convnet visualize: warning: " << note << "\n";
  Model<float>& model = *checkpoint.model;
  const Shape& in = model.input_shape();
  if (in.rank() != 4) throw Error(path + ": the model takes " + in.str() + ", not images");
  // The image as predict prepares it: converted, resized, scaled, normalised as in training.
  const Shape sample{in[1], in[2], in[3]};
  Tensor<float> x = images_to_tensor<float>({read_image(args.get("image"), in[1])}, sample);
  normalise_input(x.data(), x.data(), 1, sample, checkpoint.state.input);

  const std::filesystem::path out = args.get("out");
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) throw Error(out.string() + ": cannot create: " + ec.message());
  NamedImage filters;
  try {
    filters = filter_grid(model);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());  // name the file the model came from
  }
  write_png((out / "filters.png").string(), filters.image);
  std::cout << (out / "filters.png").string() << ": " << filters.name << "\n";
  int index = 0;
  for (const NamedImage& map : feature_maps(model, x)) {
    std::string layer = map.name.substr(0, map.name.find(' '));
    for (char& c : layer)
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    const std::string file = "features_" + std::to_string(index++) + "_" + layer + ".png";
    write_png((out / file).string(), map.image);
    std::cout << (out / file).string() << ": " << map.name << "\n";
  }
  return 0;
}

}  // namespace convnet::cli
