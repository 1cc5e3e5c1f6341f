// convnet eval: a checkpoint's model on a labelled set: loss, accuracy, top-k accuracy,
// per-class precision, recall and F1, and the confusion matrix.
#include <cstdio>
#include <iostream>

#include "args.hpp"
#include "commands.hpp"
#include "common_flags.hpp"
#include "convnet/checkpoint.hpp"
#include "convnet/metrics.hpp"
#include "convnet/runtime.hpp"
#include "data_source.hpp"

namespace convnet::cli {

int cmd_eval(int argc, char** argv) {
  ArgParser args("convnet eval",
                 "Evaluates a checkpoint's model on a labelled dataset (by default the test split\n"
                 "of the data it was trained on) and prints the loss, accuracy, top-k accuracy,\n"
                 "per-class precision, recall and F1, and the confusion matrix (rows: true\n"
                 "classes, columns: predictions). Inputs are normalised as in training.");
  add_checkpoint_flag(args);
  args.add("data", "",
           "IDX, CIFAR-10 or image folder(s), as for train; a single folder of class "
           "sub-folders is evaluated whole (default: the data the checkpoint was trained on)");
  args.add("split", "test", "test or train");
  args.add("top", "5", "k of the top-k accuracy");
  args.add("batch", "256", "images per forward pass");
  args.add("limit", "0", "use only the first N images (0 = all)");
  add_threads_flag(args);
  args.add_switch("json", "print the report as one JSON object");
  if (!args.parse(argc, argv, 2)) {
    std::cout << args.help();
    return 0;
  }
  const std::string path = checkpoint_flag(args);
  const std::string split_name = args.get("split");
  if (split_name != "test" && split_name != "train")
    throw UsageError{"--split: expected test or train, got '" + split_name + "'"};
  const int64_t top_k = args.get_int("top", 1);
  const int64_t batch = args.get_int("batch", 1);
  const int64_t limit = args.get_int("limit", 0);
  apply_threads_flag(args, "convnet eval");
  const bool json = args.get_switch("json");

  Checkpoint<float> checkpoint = load_checkpoint<float>(path, batch);
  for (const std::string& note : checkpoint.notes)
    std::cerr << "convnet eval: warning: " << note << "\n";
  std::string dir = args.get("data");
  if (dir.empty()) {
    const auto it = checkpoint.state.extra.find("data");
    if (it == checkpoint.state.extra.end())
      throw UsageError{"--data: required (" + path + " does not record its training data)"};
    dir = it->second;
  }
  Model<float>& model = *checkpoint.model;
  const Shape& in = model.input_shape();
  if (in.rank() != 4)
    throw Error(path + ": the model takes " + in.str() + " inputs, not images (N x C x H x W)");
  LoadedSplit loaded = load_split(dir, split_name == "train" ? Split::Train : Split::Test,
                                  Shape{in[1], in[2], in[3]});
  Dataset& data = loaded.data;
  if (limit > 0 && limit < data.size()) data.truncate(limit);
  const InputInfo& info = checkpoint.state.input;
  if (!info.mean.empty()) data.set_normalization(info.mean, info.stddev);
  // Names: the checkpoint's (what the model learned), else the data's.
  const std::vector<std::string> names =
      !info.class_names.empty() ? info.class_names : data.class_names();
  if (!info.class_names.empty() && !data.class_names().empty() &&
      data.class_names() != info.class_names)
    throw Error(dir + ": its classes differ from those " + path + " was trained on");

  SoftmaxCrossEntropy<float> loss;
  const ClassificationReport r =
      evaluate_classifier(model, data, loss, std::min(top_k, data.classes()), batch);
  const ConfusionMatrix& m = r.confusion;
  auto name = [&](int64_t c) {
    return names.empty() ? std::to_string(c) : names[static_cast<size_t>(c)];
  };
  char buf[256];
  if (json) {
    std::snprintf(buf, sizeof buf,
                  "{\"images\": %lld, \"loss\": %.6f, \"accuracy\": %.6f, \"top_k\": %lld, "
                  "\"top_k_accuracy\": %.6f, \"macro_precision\": %.6f, \"macro_recall\": %.6f, "
                  "\"macro_f1\": %.6f, \"classes\": [",
                  static_cast<long long>(m.total()), r.loss, m.accuracy(),
                  static_cast<long long>(r.top_k), r.top_k_accuracy, m.macro_precision(),
                  m.macro_recall(), m.macro_f1());
    std::string out = buf;
    for (int64_t c = 0; c < m.classes(); ++c) {
      std::snprintf(buf, sizeof buf,
                    ", \"precision\": %.6f, \"recall\": %.6f, \"f1\": %.6f, \"support\": %lld}",
                    m.precision(c), m.recall(c), m.f1(c), static_cast<long long>(m.row_sum(c)));
      out += std::string(c ? ", " : "") + "{\"class\": " + std::to_string(c) +
             ", \"name\": " + json_string(name(c)) + buf;
    }
    out += "], \"confusion\": [";
    for (int64_t l = 0; l < m.classes(); ++l) {
      out += l ? ", [" : "[";
      for (int64_t p = 0; p < m.classes(); ++p)
        out += (p ? ", " : "") + std::to_string(m.count(l, p));
      out += "]";
    }
    std::cout << out << "]}\n";
    return 0;
  }
  std::cout << path << " on " << dir << " (" << loaded.format << ", " << split_name << ", "
            << m.total() << " images)\n";
  std::snprintf(buf, sizeof buf, "loss %.4f  accuracy %.2f%%  top-%lld accuracy %.2f%%\n\n", r.loss,
                100 * m.accuracy(), static_cast<long long>(r.top_k), 100 * r.top_k_accuracy);
  std::cout << buf;
  size_t width = 5;
  for (int64_t c = 0; c < m.classes(); ++c) width = std::max(width, name(c).size());
  std::snprintf(buf, sizeof buf, "%-*s  %9s  %9s  %9s  %7s\n", static_cast<int>(width), "class",
                "precision", "recall", "f1", "support");
  std::cout << buf;
  for (int64_t c = 0; c < m.classes(); ++c) {
    std::snprintf(buf, sizeof buf, "%-*s  %9.4f  %9.4f  %9.4f  %7lld\n", static_cast<int>(width),
                  name(c).c_str(), m.precision(c), m.recall(c), m.f1(c),
                  static_cast<long long>(m.row_sum(c)));
    std::cout << buf;
  }
  std::snprintf(buf, sizeof buf, "%-*s  %9.4f  %9.4f  %9.4f  %7lld\n\n", static_cast<int>(width),
                "macro avg", m.macro_precision(), m.macro_recall(), m.macro_f1(),
                static_cast<long long>(m.total()));
  std::cout << buf << "confusion matrix\n" << m.table(names);
  return 0;
}

}  // namespace convnet::cli
