// convnet predict: classifies image files with a checkpoint's model, printing each image's most
// probable classes (or, with --json, one JSON object per image with every probability and logit);
// a regression model's values in the targets' units; an autoencoder's reconstructions as PNG.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <utility>

#include "args.hpp"
#include "commands.hpp"
#include "common_flags.hpp"
#include "convnet/predictor.hpp"
#include "convnet/runtime.hpp"

namespace convnet::cli {

namespace {

std::string json_numbers(const float* values, int64_t count) {
  std::string out = "[";
  char buf[32];
  for (int64_t i = 0; i < count; ++i) {
    std::snprintf(buf, sizeof buf, "%s%.9g", i ? ", " : "", static_cast<double>(values[i]));
    out += buf;
  }
  return out + "]";
}

// A regression model's values per image (named by the checkpoint's targets), or an
// autoencoder's reconstructions written as PNG into out_dir.
int predict_values(const Predictor<float>& predictor, const std::vector<std::string>& files,
                   const Tensor<float>& input, const std::string& out_dir, bool json) {
  const InputInfo& info = predictor.input_info();
  const Tensor<float> values = predictor.values(input);
  const int64_t per = predictor.classes();
  if (info.target == "input") {
    if (out_dir.empty())
      throw UsageError{"--out: required for a reconstruction model (a folder for the images)"};
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);
    if (!std::filesystem::is_directory(out_dir))
      throw Error("--out " + out_dir + ": not a folder that can be made");
    const Shape sample = predictor.sample_shape();
    for (size_t i = 0; i < files.size(); ++i) {
      const float* v = values.data() + static_cast<int64_t>(i) * per;
      const float* x = input.data() + static_cast<int64_t>(i) * per;
      Image image{sample[0], sample[1], sample[2], std::vector<uint8_t>(static_cast<size_t>(per))};
      double squared = 0;
      for (int64_t k = 0; k < per; ++k) {
        image.pixels[static_cast<size_t>(k)] =
            static_cast<uint8_t>(std::lround(std::clamp(v[k], 0.0f, 1.0f) * 255.0f));
        squared += (v[k] - x[k]) * (v[k] - x[k]);
      }
      const std::string path =
          (std::filesystem::path(out_dir) /
           (std::filesystem::path(files[i]).stem().string() + ".reconstruction.png"))
              .string();
      write_png(path, image);
      char mse[32];
      std::snprintf(mse, sizeof mse, "%.6g", squared / static_cast<double>(per));
      std::cout << (json ? "{\"file\": " + json_string(files[i]) + ", \"reconstruction\": " +
                               json_string(path) + ", \"mse\": " + mse + "}"
                         : files[i] + ": " + path + "  mse " + mse)
                << "\n";
    }
    return 0;
  }
  for (size_t i = 0; i < files.size(); ++i) {
    const float* v = values.data() + static_cast<int64_t>(i) * per;
    if (json) {
      std::cout << "{\"file\": " << json_string(files[i])
                << ", \"values\": " << json_numbers(v, per) << "}\n";
      continue;
    }
    std::cout << files[i] << ":";
    for (int64_t k = 0; k < per; ++k) {
      char text[48];
      std::snprintf(text, sizeof text, "%.6g", static_cast<double>(v[k]));
      std::cout << "  "
                << (static_cast<size_t>(k) < info.target_names.size()
                        ? info.target_names[static_cast<size_t>(k)]
                        : "y" + std::to_string(k + 1))
                << " " << text;
    }
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

int cmd_predict(int argc, char** argv) {
  ArgParser args("convnet predict",
                 "Classifies images with a checkpoint's model. Each image is read (PNG, JPEG,\n"
                 "PGM/PPM or BMP), converted to the model's channels, resized to its input size,\n"
                 "scaled to [0, 1] and normalised as in training; then the top classes are\n"
                 "printed with their probabilities. A regression model prints its values (in\n"
                 "the targets' units); an autoencoder writes its reconstructions (--out).");
  args.add_positional("IMAGE", "image files to classify");
  add_checkpoint_flag(args);
  args.add("top", "3", "how many of the most probable classes to print per image");
  args.add_switch("json",
                  "one JSON object per image: file, top classes, every probability and logit");
  args.add("batch", "32", "images per forward pass");
  args.add("out", "",
           "a reconstruction model (trained with --target input): write each image's "
           "reconstruction as DIR/<name>.reconstruction.png");
  add_context_flags(args);
  if (!args.parse(argc, argv, 2)) {
    std::cout << args.help();
    return 0;
  }
  const std::string checkpoint = checkpoint_flag(args);
  const std::vector<std::string>& files = args.positional();
  if (files.empty())
    throw UsageError{"no images given (convnet predict --checkpoint CKPT IMAGE...)"};
  const int64_t top_k = args.get_int("top", 1);
  const int64_t batch = args.get_int("batch", 1);
  apply_context_flags(args, "convnet predict");
  const bool json = args.get_switch("json");

  // Loaded here, not by Predictor's path constructor, so that its notes (a file without
  // checksums) reach the user; for one sample, as the predictor's template never runs.
  Checkpoint<float> loaded = load_checkpoint<float>(checkpoint, 1);
  for (const std::string& note : loaded.notes)
    std::cerr << "convnet predict: warning: " << note << "\n";
  const Predictor<float> predictor(std::move(loaded), batch);
  const Shape sample = predictor.sample_shape();
  if (sample.rank() != 3)
    throw Error(checkpoint + ": the model takes " + sample.str() +
                " samples, not images (C x H x W)");
  // Every image is read before any is classified: a bad file stops the run with its name, and
  // nothing is printed for the others.
  std::vector<Image> images;
  for (const std::string& file : files) images.push_back(read_image(file, sample[0]));
  const std::string& target = predictor.input_info().target;
  if (target == "values" || target == "input")
    return predict_values(predictor, files, predictor.to_input(images), args.get("out"), json);
  const Tensor<float> logits = predictor.logits(predictor.to_input(images));
  const Tensor<float> probabilities = softmax_rows(logits);
  const std::vector<Prediction> top = predictor.top(probabilities, top_k);
  const int64_t classes = predictor.classes();
  for (size_t i = 0; i < files.size(); ++i) {
    const int64_t row = static_cast<int64_t>(i) * classes;
    if (json) {
      std::string line = "{\"file\": " + json_string(files[i]) + ", \"top\": [";
      for (size_t k = 0; k < top[i].top.size(); ++k) {
        const Prediction::Entry& e = top[i].top[k];
        char p[32];
        std::snprintf(p, sizeof p, "%.9g", e.probability);
        line += std::string(k ? ", " : "") + "{\"class\": " + std::to_string(e.label) +
                ", \"name\": " + json_string(e.name) + ", \"probability\": " + p + "}";
      }
      line += "], \"probabilities\": " + json_numbers(probabilities.data() + row, classes) +
              ", \"logits\": " + json_numbers(logits.data() + row, classes) + "}";
      std::cout << line << "\n";
    } else {
      std::cout << files[i] << ":";
      for (const Prediction::Entry& e : top[i].top) {
        char p[32];
        std::snprintf(p, sizeof p, "%.2f%%", 100 * e.probability);
        std::cout << "  " << e.name << " " << p;
      }
      std::cout << "\n";
    }
  }
  return 0;
}

}  // namespace convnet::cli
