// convnet eval: a checkpoint's model on a labelled set: loss, accuracy, top-k accuracy,
// per-class precision, recall and F1, and the confusion matrix; or for a regression (or
// reconstruction) checkpoint, MSE, MAE and R² per output and the worst samples.
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "args.hpp"
#include "commands.hpp"
#include "common_flags.hpp"
#include "convnet/checkpoint.hpp"
#include "convnet/metrics.hpp"
#include "convnet/runtime.hpp"
#include "data_source.hpp"

namespace convnet::cli {
namespace {

// The loss the checkpoint was trained with (its --loss and --huber-delta), so that eval reports
// the figure training printed; `fallback` for "auto" and for a checkpoint that records none.
std::unique_ptr<Loss<float>> recorded_loss(const Checkpoint<float>& checkpoint,
                                           const char* fallback) {
  const auto& extra = checkpoint.state.extra;
  const auto name = extra.find("loss"), delta = extra.find("huber-delta");
  const bool named = name != extra.end() && name->second != "auto";
  return make_loss(named ? name->second : fallback,
                   delta != extra.end() ? std::strtod(delta->second.c_str(), nullptr) : 1.0);
}

// A regression or reconstruction checkpoint: the loss it trained with, MSE, MAE and R² per
// output (in the targets' units) and the samples farthest from their targets.
int eval_regression(const std::string& path, const std::string& dir, const LoadedSplit& loaded,
                    const std::string& split, Checkpoint<float>& checkpoint, Dataset& data,
                    int64_t worst, int64_t batch, bool json) {
  const InputInfo& info = checkpoint.state.input;
  const bool reconstruct = info.target == "input";
  if (!reconstruct) {
    if (!data.has_targets())
      throw Error(dir + ": has no real-valued targets, and " + path +
                  " predicts values (its --target was values)");
    if (!info.target_names.empty() && data.target_names() != info.target_names)
      throw Error(dir + ": its " + std::to_string(data.target_size()) +
                  " targets differ from the " + std::to_string(info.target_names.size()) + " " +
                  path + " was trained on");
    if (!info.target_mean.empty()) data.set_target_normalization(info.target_mean, info.target_stddev);
  }
  const auto loss = recorded_loss(checkpoint, "mse");
  const RegressionReport r =
      evaluate_regression(*checkpoint.model, data, *loss, reconstruct, worst, batch);
  const RegressionStats& s = r.stats;
  const std::vector<std::string> names =
      reconstruct ? std::vector<std::string>{"pixels"} : data.target_names();
  char buf[256];
  if (json) {
    std::snprintf(buf, sizeof buf,
                  "{\"images\": %lld, \"loss\": %.6f, \"mse\": %.6g, \"mae\": %.6g, "
                  "\"r2\": %.6f, \"outputs\": [",
                  static_cast<long long>(data.size()), r.loss, s.mean_mse, s.mean_mae, s.mean_r2);
    std::string out = buf;
    for (size_t k = 0; k < s.mse.size(); ++k) {
      std::snprintf(buf, sizeof buf, ", \"mse\": %.6g, \"mae\": %.6g, \"r2\": %.6f}", s.mse[k],
                    s.mae[k], s.r2[k]);
      out += std::string(k ? ", " : "") + "{\"name\": " + json_string(names[k]) + buf;
    }
    out += "], \"worst\": [";
    for (size_t i = 0; i < r.worst.size(); ++i) {
      std::snprintf(buf, sizeof buf, "{\"index\": %lld, \"error\": %.6g",
                    static_cast<long long>(r.worst[i].index), r.worst[i].error);
      out += std::string(i ? ", " : "") + buf;
      for (const auto& [key, values] : {std::pair{"predicted", &r.worst[i].predicted},
                                        {"target", &r.worst[i].target}}) {
        if (values->empty()) continue;
        out += std::string(", \"") + key + "\": [";
        for (size_t k = 0; k < values->size(); ++k) {
          std::snprintf(buf, sizeof buf, "%s%.6g", k ? ", " : "", (*values)[k]);
          out += buf;
        }
        out += "]";
      }
      out += "}";
    }
    std::cout << out << "]}\n";
    return 0;
  }
  std::cout << path << " on " << dir << " (" << loaded.format << ", " << split << ", "
            << data.size() << " images, " << (reconstruct ? "reconstruction" : "regression")
            << ")\n";
  std::snprintf(buf, sizeof buf, "loss %.6g  mse %.6g  mae %.6g  r2 %.4f\n\n", r.loss, s.mean_mse,
                s.mean_mae, s.mean_r2);
  std::cout << buf;
  size_t width = 6;
  for (const std::string& n : names) width = std::max(width, n.size());
  std::snprintf(buf, sizeof buf, "%-*s  %12s  %12s  %8s\n", static_cast<int>(width), "output",
                "mse", "mae", "r2");
  std::cout << buf;
  for (size_t k = 0; k < s.mse.size(); ++k) {
    std::snprintf(buf, sizeof buf, "%-*s  %12.6g  %12.6g  %8.4f\n", static_cast<int>(width),
                  names[k].c_str(), s.mse[k], s.mae[k], s.r2[k]);
    std::cout << buf;
  }
  if (!r.worst.empty()) std::cout << "\nworst " << r.worst.size() << " (mean absolute error)\n";
  for (const RegressionReport::Example& e : r.worst) {
    std::snprintf(buf, sizeof buf, "  #%-7lld %10.4g", static_cast<long long>(e.index), e.error);
    std::cout << buf;
    for (size_t k = 0; k < e.predicted.size() && k < 4; ++k) {
      std::snprintf(buf, sizeof buf, "   %s: predicted %.4g, true %.4g", names[k].c_str(),
                    e.predicted[k], e.target[k]);
      std::cout << buf;
    }
    std::cout << (e.predicted.size() > 4 ? "   ..." : "") << "\n";
  }
  return 0;
}

}  // namespace

int cmd_eval(int argc, char** argv) {
  ArgParser args("convnet eval",
                 "Evaluates a checkpoint's model on a labelled dataset (by default the test split\n"
                 "of the data it was trained on) and prints the loss, accuracy, top-k accuracy,\n"
                 "per-class precision, recall and F1, and the confusion matrix (rows: true\n"
                 "classes, columns: predictions). Inputs are normalised as in training.\n"
                 "A regression checkpoint (trained with --target values or input) prints MSE,\n"
                 "MAE and R^2 per output, in the targets' units, and the worst samples.");
  add_checkpoint_flag(args);
  args.add("data", "",
           "IDX, CIFAR-10 or image folder(s), as for train; a single folder of class "
           "sub-folders is evaluated whole (default: the data the checkpoint was trained on)");
  args.add("split", "test", "test or train");
  args.add("top", "5", "k of the top-k accuracy");
  args.add("worst", "5", "regression: list this many samples farthest from their targets");
  args.add("batch", "256", "images per forward pass");
  args.add("limit", "0", "use only the first N images (0 = all)");
  add_context_flags(args);
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
  apply_context_flags(args, "convnet eval");
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
  if (info.target == "values" || info.target == "input")
    return eval_regression(path, dir, loaded, split_name, checkpoint, data,
                           args.get_int("worst", 0), batch, json);
  // Names: the checkpoint's (what the model learned), else the data's.
  const std::vector<std::string> names =
      !info.class_names.empty() ? info.class_names : data.class_names();
  if (!info.class_names.empty() && !data.class_names().empty() &&
      data.class_names() != info.class_names)
    throw Error(dir + ": its classes differ from those " + path + " was trained on");

  const auto loss = recorded_loss(checkpoint, "cross-entropy");
  const ClassificationReport r =
      evaluate_classifier(model, data, *loss, std::min(top_k, data.classes()), batch);
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
