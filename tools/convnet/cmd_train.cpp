// convnet train: load a dataset (Fashion-MNIST or any MNIST-format IDX set, CIFAR-10, or folders
// of images), build a model (built-in or a spec file) or resume a checkpoint, train it, report
// every epoch as text or JSON lines (and to a CSV or JSON-lines log), show progress, follow a
// learning-rate schedule, stop early on a validation metric or at Ctrl-C, and save checkpoints.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "args.hpp"
#include "commands.hpp"
#include "convnet/checkpoint.hpp"
#include "convnet/files.hpp"
#include "convnet/metrics.hpp"
#include "convnet/report.hpp"
#include "convnet/runtime.hpp"
#include "convnet/schedule.hpp"
#include "convnet/spec.hpp"
#include "convnet/train.hpp"
#include "convnet/zoo.hpp"
#include "data_source.hpp"
#include "optimizer_flags.hpp"

namespace convnet::cli {
namespace {

// Keeps the first `limit` samples (0: all).
void truncate(Dataset& d, int64_t limit) {
  if (limit > 0 && limit < d.size()) d.truncate(limit);
}

// The flags a checkpoint records and --resume reuses unless given again: everything that decides
// the data, the batches and the updates (the seed is the checkpoint's own), and the planned
// total of epochs, so that `--resume FILE` alone finishes an interrupted run on its own schedule.
constexpr const char* kResumedFlags[] = {"epochs",        "model",      "data",
                                         "image-size",    "val-split",  "normalize",
                                         "crop-padding",  "flip",       "batch",
                                         "optimizer",     "lr",         "momentum",
                                         "weight-decay",  "nesterov",   "train-limit",
                                         "test-limit",    "schedule",   "gamma",
                                         "step-size",     "milestones", "min-lr",
                                         "t-max",         "warmup",     "warmup-start",
                                         "pct-start",     "div-factor", "final-div-factor",
                                         "clip-grad-norm"};

// --schedule and its options.
LrSchedule make_schedule(const ArgParser& args) {
  LrSchedule s;
  try {
    s.kind = schedule_kind(args.get("schedule"));
  } catch (const Error& e) {
    throw UsageError{std::string("--schedule: ") + e.what()};
  }
  s.gamma = args.get_double("gamma");
  s.step_size = args.get_int("step-size", 0);
  if (s.kind == LrSchedule::Kind::Step && s.step_size == 0)
    throw UsageError{"--schedule step: needs --step-size N (epochs between decays)"};
  s.step_size = std::max<int64_t>(s.step_size, 1);
  const std::string milestones = args.get("milestones");
  for (size_t start = 0; !milestones.empty() && start <= milestones.size();) {
    const size_t comma = std::min(milestones.find(',', start), milestones.size());
    const std::string item = milestones.substr(start, comma - start);
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || end != item.c_str() + item.size())
      throw UsageError{"--milestones: expected epochs like 5,8, got '" + milestones + "'"};
    s.milestones.push_back(v);
    start = comma + 1;
  }
  s.min_lr = args.get_double("min-lr");
  s.t_max = args.get_int("t-max", 0);
  s.warmup_epochs = args.get_int("warmup", 0);
  s.warmup_start = args.get_double("warmup-start");
  s.pct_start = args.get_double("pct-start");
  s.div_factor = args.get_double("div-factor");
  s.final_div_factor = args.get_double("final-div-factor");
  try {
    s.validate();
  } catch (const Error& e) {
    throw UsageError{std::string("--schedule ") + args.get("schedule") + ": " + e.what()};
  }
  return s;
}

// One epoch as a JSON object (--json and --log FILE.jsonl).
std::string epoch_json(const EpochStats& s, bool has_validation) {
  char line[512], val[128] = "";
  if (has_validation)
    std::snprintf(val, sizeof val, "\"val_loss\": %.6f, \"val_acc\": %.6f, ", s.val_loss,
                  s.val_acc);
  std::snprintf(line, sizeof line,
                "{\"epoch\": %d, \"learning_rate\": %.9g, \"train_loss\": %.6f, "
                "\"train_acc\": %.6f, %s\"test_loss\": %.6f, \"test_acc\": %.6f, "
                "\"seconds\": %.3f, \"images_per_s\": %.1f}",
                s.epoch, s.learning_rate, s.train_loss, s.train_acc, val, s.test_loss, s.test_acc,
                s.seconds, s.images_per_s);
  return line;
}

// The metrics log: CSV or JSON lines by the file's extension, one row per epoch. The whole log
// is rewritten atomically after every epoch (it is small), so a reader never sees half a row, a
// crash keeps every finished epoch, and no link at the log's path is ever written through. A
// resumed run appends to the log it finds.
class MetricsLog {
 public:
  MetricsLog(const std::string& path, bool append, bool has_validation)
      : path_(path), has_validation_(has_validation) {
    if (path.empty()) return;
    const auto dot = path.rfind('.');
    const std::string ext = dot == std::string::npos ? "" : path.substr(dot);
    if (ext == ".csv")
      csv_ = true;
    else if (ext != ".jsonl" && ext != ".json")
      throw UsageError{"--log: expected a file ending in .csv, .jsonl or .json, got '" + path +
                       "'"};
    // A link at the log's path is not read through (nor written through: the rename replaces
    // the link); a resumed run then starts a new log.
    if (append && std::filesystem::is_regular_file(std::filesystem::symlink_status(path))) {
      std::ifstream in(path, std::ios::binary);
      text_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      if (!in.eof() && in.fail())
        throw Error(path + ": cannot read the metrics log to append to: " + std::strerror(errno));
      if (!text_.empty() && text_.back() != '\n') text_ += '\n';
    }
    if (csv_ && text_.empty())
      text_ =
          "epoch,learning_rate,train_loss,train_acc,val_loss,val_acc,test_loss,test_acc,"
          "seconds,images_per_s\n";
    write_file_atomic(path_, text_);
  }
  void write(const EpochStats& s) {
    if (path_.empty()) return;
    if (csv_) {
      char row[400], val[80] = ",";
      if (has_validation_) std::snprintf(val, sizeof val, "%.6f,%.6f", s.val_loss, s.val_acc);
      std::snprintf(row, sizeof row, "%d,%.9g,%.6f,%.6f,%s,%.6f,%.6f,%.3f,%.1f\n", s.epoch,
                    s.learning_rate, s.train_loss, s.train_acc, val, s.test_loss, s.test_acc,
                    s.seconds, s.images_per_s);
      text_ += row;
    } else {
      text_ += epoch_json(s, has_validation_) + "\n";
    }
    write_file_atomic(path_, text_);
  }

 private:
  std::string path_;
  bool has_validation_, csv_ = false;
  std::string text_;  // the whole log as it is on disk
};

// Ctrl-C (SIGINT), SIGTERM and SIGHUP (what Docker, SLURM, systemd and a closed ssh session
// send): the first stops training after the current batch (the handler only records the
// signal); a second, with the default actions restored, ends the process at once.
constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP};
volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int signal) {
  g_stop_signal = signal;
  for (const int s : kStopSignals) std::signal(s, SIG_DFL);
}
void handle_stop_signals() {
  g_stop_signal = 0;
  for (const int s : kStopSignals) std::signal(s, on_stop_signal);
}
void restore_stop_signals() {
  for (const int s : kStopSignals) std::signal(s, SIG_DFL);
}
const char* signal_name(int signal) {
  switch (signal) {
    case SIGINT:
      return "Ctrl-C (SIGINT)";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "a signal";
  }
}

// "1:02:03" or "2:03".
std::string clock_text(double seconds) {
  const auto total = static_cast<long long>(std::max(seconds, 0.0) + 0.5);
  char buf[32];
  if (total >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", total / 3600, total / 60 % 60, total % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", total / 60, total % 60);
  return buf;
}

}  // namespace

int cmd_train(int argc, char** argv) {
  ArgParser args(
      "convnet train",
      "Trains a built-in model or a model spec file on an IDX, CIFAR-10 or image-folder\n"
      "dataset and reports, per epoch, train loss and accuracy, test loss and accuracy,\n"
      "seconds and images/s. --save writes a checkpoint; --resume continues one exactly.\n"
      "The defaults are the reference recipe: LeNet, SGD lr 0.05 momentum 0.9,\n"
      "batch 64, 5 epochs, the rate annealed by a cosine.");
  args.add("data", "/usr/share/datasets/fashion-mnist",
           "folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (MNIST format), CIFAR-10 "
           "binary batches (data_batch_1.bin ... test_batch.bin), or train/ and test/ folders of "
           "class sub-folders of PNG/JPEG/PGM/BMP images");
  args.add("image-size", "3x32x32", "CxHxW images of an image folder are converted to");
  args.add("val-split", "0", "hold out this fraction of the training set for validation");
  args.add_switch("normalize", "normalise each channel by the training set's mean and stddev");
  args.add("crop-padding", "0", "augment: random crops of images padded by this many pixels");
  args.add_switch("flip", "augment: mirror training images left-right at random");
  args.add("model", "lenet",
           "built-in model (lenet, vgg-small, resnet-small) or a model spec file (a path ending "
           "in .txt or containing '/'; see docs/model-spec.md)");
  args.add("epochs", "5",
           "passes over the training set (the total, when resuming: by default the checkpoint's)");
  args.add("batch", "64", "mini-batch size");
  add_optimizer_flags(args);
  // Cosine by default: a run of a fixed number of epochs should end annealed, not at the full
  // rate's noise (the README's Results: lenet's reference recipe 88.7% -> 90.0%, median of 5
  // seeds at 2 threads; resnet-small's last epochs held above 92%). The library's fit() keeps
  // PyTorch's constant default; this is the command's recipe.
  args.add("schedule", "cosine",
           "learning-rate schedule: cosine (--lr annealed over --epochs towards --min-lr), "
           "constant, step, multistep, exponential, onecycle (PyTorch's CosineAnnealingLR, "
           "StepLR, MultiStepLR, ExponentialLR, OneCycleLR; with onecycle --lr is the peak)");
  args.add("gamma", "0.1", "step, multistep, exponential: the decay factor");
  args.add("step-size", "0", "step: epochs between decays");
  args.add("milestones", "", "multistep: epochs at which to decay, like 5,8");
  args.add("min-lr", "0", "cosine: the lowest rate (eta_min)");
  args.add("t-max", "0", "cosine: the period in epochs (0 = --epochs)");
  args.add("warmup", "0", "linear warm-up over this many epochs (LinearLR), before any schedule");
  args.add("warmup-start", "0.333333333333333", "the warm-up's first factor (start_factor)");
  args.add("pct-start", "0.3", "onecycle: fraction of the steps spent rising");
  args.add("div-factor", "25", "onecycle: starts at lr / div-factor");
  args.add("final-div-factor", "10000", "onecycle: ends at lr / (div-factor * final-div-factor)");
  args.add("clip-grad-norm", "0",
           "scale the gradients down when their joint L2 norm exceeds this (0 = never)");
  args.add("early-stop", "0",
           "stop when the --monitor metric has not improved for this many epochs (0 = never; "
           "needs --val-split)");
  args.add("monitor", "val_loss", "what early stopping watches: val_loss or val_acc");
  args.add("min-delta", "0", "early stopping: the least change that counts as improvement");
  args.add("seed", "1", "seed for initialisation and shuffling (same seed, same run)");
  add_threads_flag(args);
  args.add("train-limit", "0", "use only the first N training images (0 = all)");
  args.add("test-limit", "0", "use only the first N test images (0 = all)");
  args.add_switch("json", "print each epoch as one JSON object per line (summary to stderr)");
  args.add_switch("quiet", "print only the last epoch's line (and errors)");
  args.add("log", "", "write every epoch's metrics to this file: .csv, or JSON lines (.jsonl)");
  args.add("report", "",
           "write DIR/index.html after every epoch: curves, gradient norms, confusion matrix, "
           "filters and feature maps, the model and this configuration (self-contained)");
  args.add("progress-every", "10",
           "when stderr is not a terminal, a progress line every this many seconds (0 = none); "
           "on a terminal a progress bar");
  args.add("save", "", "write a checkpoint (safetensors) to this file at the end");
  args.add("save-every", "0",
           "also write the --save checkpoint every N epochs (0 = only at the end)");
  args.add("save-best", "",
           "write a checkpoint to this file after every epoch that improves validation accuracy "
           "(needs --val-split)");
  args.add("resume", "",
           "continue the checkpoint in this file up to --epochs; flags not given again take the "
           "checkpoint's values");
  if (!args.parse(argc, argv, 2)) {
    std::cout << args.help();
    return 0;
  }

  // A resumed run takes its model, seed and recipe from the checkpoint.
  Checkpoint<float> resumed;
  const std::string resume_path = args.get("resume");
  if (!resume_path.empty()) {
    resumed = load_checkpoint<float>(resume_path);
    for (const std::string& note : resumed.notes)
      std::cerr << "convnet train: warning: " << note << "\n";
    // The original command with --resume added is accepted: a flag given again with the value
    // the checkpoint records changes nothing. Only the model cannot change.
    if (args.given("model")) {
      const auto it = resumed.state.extra.find("model");
      if (it == resumed.state.extra.end() || it->second != args.get("model"))
        throw UsageError{"--model " + args.get("model") + ": " + resume_path + " holds " +
                         (it == resumed.state.extra.end() ? std::string("its own model")
                                                          : "model " + it->second) +
                         ", and --resume continues that model (drop --model, or train a new run "
                         "without --resume)"};
    }
    for (const char* name : kResumedFlags)
      if (const auto it = resumed.state.extra.find(name); it != resumed.state.extra.end())
        args.set_default(name, it->second);
    args.set_default("seed", std::to_string(resumed.state.seed));
  }
  const std::string save_path = args.get("save");
  const int64_t save_every = args.get_int("save-every", 0);
  if (save_every > 0 && save_path.empty())
    throw UsageError{"--save-every: needs --save FILE to write to"};

  const std::string best_path = args.get("save-best");
  const int64_t epochs = args.get_int("epochs", 1);
  if (epochs > 1000000)
    throw UsageError{"--epochs: expected at most 1000000, got " + args.get("epochs")};
  const bool resuming = !resume_path.empty();
  if (resuming && resumed.state.epoch >= epochs)
    throw UsageError{"--epochs " + std::to_string(epochs) + ": " + resume_path +
                     " has already run " + std::to_string(resumed.state.epoch) +
                     " epochs (--epochs is the total)"};
  const int64_t batch = args.get_int("batch", 1);
  const int64_t seed = args.get_int("seed", 0);
  const bool json = args.get_switch("json");
  const bool quiet = args.get_switch("quiet");
  const double progress_every = args.get_double("progress-every");
  if (progress_every < 0)
    throw UsageError{"--progress-every: expected seconds >= 0 (0 = no progress lines), got " +
                     args.get("progress-every")};
  const int64_t patience = args.get_int("early-stop", 0);
  const std::string monitor = args.get("monitor");
  if (monitor != "val_loss" && monitor != "val_acc")
    throw UsageError{"--monitor: expected val_loss or val_acc, got '" + monitor + "'"};
  const double min_delta = args.get_double("min-delta");
  if (min_delta < 0)
    throw UsageError{"--min-delta: expected a change >= 0, got " + args.get("min-delta")};
  const LrSchedule schedule = make_schedule(args);
  const double clip_grad_norm = args.get_double("clip-grad-norm");
  if (clip_grad_norm < 0)
    throw UsageError{"--clip-grad-norm: expected a norm >= 0, got " + args.get("clip-grad-norm")};
  auto optimizer = make_optimizer(args);
  if (schedule.min_lr > optimizer->learning_rate()) {
    char rate[32];
    std::snprintf(rate, sizeof rate, "%g", optimizer->learning_rate());
    throw UsageError{"--min-lr " + args.get("min-lr") + ": above the learning rate " + rate +
                     " (--lr " + args.get("lr") +
                     "): the schedule anneals from --lr down to --min-lr"};
  }
  apply_threads_flag(args, "convnet train");

  const double val_split = args.get_double("val-split");
  if (!(val_split >= 0 && val_split < 1))
    throw UsageError{"--val-split: expected a fraction in [0, 1), got " + args.get("val-split")};
  if (patience > 0 && !(val_split > 0))
    throw UsageError{
        "--early-stop: needs --val-split (stopping is decided on validation data, "
        "never on the test set)"};
  if (!best_path.empty() && !(val_split > 0))
    throw UsageError{
        "--save-best: needs --val-split (the best model is chosen on validation "
        "data, never on the test set)"};
  if (!best_path.empty() && best_path == save_path)
    throw UsageError{"--save-best: must differ from --save (" + save_path + ")"};
  const int64_t crop_padding = args.get_int("crop-padding", 0);
  const Shape image_shape = parse_chw("image-size", args.get("image-size"));
  // What can be checked before the data is loaded and hours are spent training: the model's
  // name or spec file, and that every output file can be written.
  std::unique_ptr<Model<float>> spec_model;
  if (!resuming) {
    const std::string name = args.get("model");
    if (is_model_spec_path(name)) {
      spec_model = load_model<float>(name);
    } else if (const auto names = model_names();
               std::find(names.begin(), names.end(), name) == names.end()) {
      std::string known;
      for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
      throw UsageError{"--model: unknown model '" + name + "' (built-in: " + known +
                       "; or a spec file, a path ending in .txt or containing '/')"};
    }
  }
  // Every file is written atomically beside its target (convnet/files.hpp), so what must hold
  // is that the target is not a folder and its folder is writable.
  for (const char* flag : {"save", "save-best", "log"})
    if (const std::string path = args.get(flag); !path.empty())
      check_output_file(path, "--" + std::string(flag));
  if (const std::string dir = args.get("report"); !dir.empty()) {
    const std::filesystem::path parent = std::filesystem::path(dir).parent_path();
    const std::string shown = parent.empty() ? "." : parent.string();
    if (!std::filesystem::is_directory(dir) && ::access(shown.c_str(), W_OK) != 0)
      throw Error("--report " + dir + ": cannot write in " + shown + ": " + std::strerror(errno));
  }
  // The report is a folder: refused now if a file has its name, not after the first epoch.
  if (const std::string dir = args.get("report");
      !dir.empty() && std::filesystem::exists(dir) && !std::filesystem::is_directory(dir))
    throw Error("--report " + dir + ": is a file; the report is written into a folder");

  TrainTest data = load_train_test(args.get("data"), image_shape);
  Dataset& train = data.train;
  Dataset& test = data.test;
  truncate(train, args.get_int("train-limit", 0));
  truncate(test, args.get_int("test-limit", 0));
  Dataset validation;
  if (val_split > 0) {
    TrainValidation parts = split_validation(train, val_split, static_cast<uint64_t>(seed));
    train = std::move(parts.train);
    validation = std::move(parts.validation);
  }
  if (const int64_t side = std::min(train.shape()[2], train.shape()[3]); crop_padding >= side)
    throw UsageError{"--crop-padding " + std::to_string(crop_padding) + ": not smaller than the " +
                     train.sample_shape().str() + " images (at most " + std::to_string(side - 1) +
                     ", so that every crop keeps part of the image)"};
  if (args.get_switch("normalize")) {
    const Dataset::ChannelStats stats = train.channel_stats();  // training images only
    for (Dataset* d : {&train, &test, &validation})
      if (d->size() > 0) d->set_normalization(stats.mean, stats.stddev);
  }

  // A batch larger than the training set is the whole set: build for what will be used.
  const int64_t built_batch = std::min(batch, train.size());
  std::unique_ptr<Model<float>> owned;
  try {
    if (resuming) {
      restore_optimizer(resumed, *optimizer);
      owned = std::move(resumed.model);
      if (owned->input_shape() != train.shape().with_batch(built_batch))  // keeps the values
        owned->build(train.shape().with_batch(built_batch));
    } else {
      owned = spec_model ? std::move(spec_model)
                         : load_model<float>(args.get("model"), train.classes());
      owned->build(train.shape().with_batch(built_batch), static_cast<uint64_t>(seed));
    }
  } catch (const OutOfMemory& e) {  // the stage and the size, from the model's build
    throw Error("out of memory building " + args.get("model") + " for batches of " +
                std::to_string(built_batch) + " images of " + train.sample_shape().str() + " (" +
                e.what() + "): try a smaller --batch");
  } catch (const std::bad_alloc&) {
    throw Error("out of memory building " + args.get("model") + " for batches of " +
                std::to_string(built_batch) + " images of " + train.sample_shape().str() +
                ": try a smaller --batch");
  }
  Model<float>& model = *owned;
  // The process default as --threads left it: a resumed or spec-file model was made (with a
  // copy of the default) before the flag was applied.
  model.set_context(std::make_shared<Context>(default_context()));
  const Shape& out = model.output_shape();
  CONVNET_CHECK(out.rank() == 2 && out[1] == train.classes(), "model ", args.get("model"),
                " has output ", out.str(), " but the data has ", train.classes(),
                " classes: its last layer needs ", train.classes(), " outputs");
  // The best validation accuracy so far (--save-best). Checkpoints record it, so a resumed run
  // replaces the best checkpoint only with a better model than it already holds.
  double best_val_acc = -1;
  if (resuming && !best_path.empty())
    if (const auto it = resumed.state.extra.find("best_val_acc"); it != resumed.state.extra.end())
      best_val_acc = std::strtod(it->second.c_str(), nullptr);
  auto save = [&](const std::string& path, int epoch, int64_t step = 0) {
    TrainingState state{.epoch = epoch,
                        .step = step,
                        .seed = static_cast<uint64_t>(seed),
                        .extra = {},
                        .input = {train.class_names(), train.mean(), train.stddev()}};
    for (const char* name : kResumedFlags) state.extra[name] = args.value_text(name);
    if (!best_path.empty()) {
      char best[32];
      std::snprintf(best, sizeof best, "%.17g", best_val_acc);
      state.extra["best_val_acc"] = best;
    }
    save_checkpoint(path, model, optimizer.get(), state);
  };
  // Informational lines go to stderr under --json (stdout is then pure JSON lines) and nowhere
  // under --quiet.
  std::ostringstream discard;
  std::ostream& info = quiet ? discard : json ? std::cerr : std::cout;
  const int64_t resumed_step = resuming ? resumed.state.step : 0;
  if (resuming)
    info << "resuming " << resume_path << " after epoch " << resumed.state.epoch
         << (resumed_step > 0 ? " and " + std::to_string(resumed_step) + " batches of the next"
                              : "")
         << " (step " << optimizer->steps() << ")\n";
  // A resumed run with a new total continues on the new total's curve: exact for an interrupted
  // run only with its own total.
  if (resuming && schedule.depends_on_total())
    if (const auto it = resumed.state.extra.find("epochs");
        it != resumed.state.extra.end() && std::strtoll(it->second.c_str(), nullptr, 10) != epochs)
      info << "note: --schedule " << args.get("schedule") << " follows the total of epochs: "
           << "from here on the rates are those of a " << epochs << "-epoch run, not of the "
           << it->second << "-epoch run this checkpoint was trained as\n";
  info << "model " << args.get("model") << " on " << train.size() << " training, "
       << (validation.size() > 0 ? std::to_string(validation.size()) + " validation, " : "")
       << test.size() << " test images " << train.sample_shape().str() << " (" << data.format
       << "), optimizer " << optimizer->name() << " lr " << optimizer->learning_rate()
       << (schedule.kind != LrSchedule::Kind::Constant ? " " + args.get("schedule") : "")
       << (schedule.warmup_epochs > 0 ? " with warm-up" : "") << ", batch " << batch << ", threads "
       << num_threads() << "\n"
       << model.summary() << std::flush;

  const bool has_val = validation.size() > 0;
  MetricsLog log(args.get("log"), resuming, has_val);
  // Early stopping (Keras's EarlyStopping): the best monitored value and the epochs since.
  double best_monitored = monitor == "val_loss" ? HUGE_VAL : -HUGE_VAL;
  int64_t epochs_without_improvement = 0;
  std::string last_line;
  const bool bar = !quiet && isatty(STDERR_FILENO) != 0;
  auto last_progress = std::chrono::steady_clock::now();

  // --report: the run so far, and the first test image as the model takes it.
  const std::string report_dir = args.get("report");
  ReportData report{
      .title = "convnet train --model " + args.get("model") + " on " + args.get("data"),
      .config = args.values(),
      .epochs = {},
      .class_names = train.class_names(),
      .confusion = ConfusionMatrix(train.classes())};
  Tensor<float> report_sample(test.shape().with_batch(1));
  if (!report_dir.empty()) {
    int32_t label = 0;
    const int64_t first = 0;
    test.gather(std::span(&first, 1), report_sample.data(), &label);
  }

  handle_stop_signals();
  SoftmaxCrossEntropy<float> loss;
  const double base_lr = optimizer->learning_rate();
  FitResult result;
  try {
    result = fit(
        model, train, &test, loss, *optimizer,
        {.epochs = static_cast<int>(epochs),
         .completed_epochs = resuming ? static_cast<int>(resumed.state.epoch) : 0,
         .completed_steps = resumed_step,
         .batch = built_batch,
         .seed = static_cast<uint64_t>(seed),
         .augment = {.crop_padding = crop_padding, .horizontal_flip = args.get_switch("flip")},
         .validation = has_val ? &validation : nullptr,
         .schedule = schedule,
         .clip_grad_norm = clip_grad_norm,
         .test_confusion = report_dir.empty() ? nullptr : &report.confusion},
        {.on_batch_end =
             [&](const BatchStats& b) {
               const auto now = std::chrono::steady_clock::now();
               const double since = std::chrono::duration<double>(now - last_progress).count();
               const bool last = b.step + 1 == b.steps;
               if (!quiet &&
                   (bar ? since >= 0.1 || last : progress_every > 0 && since >= progress_every)) {
                 last_progress = now;
                 const double rate = static_cast<double>(b.images) / std::max(b.seconds, 1e-9);
                 const double eta =
                     static_cast<double>(b.steps - b.step - 1) * static_cast<double>(batch) / rate;
                 char text[256];
                 if (bar) {
                   constexpr int kWidth = 24;
                   const int filled = static_cast<int>(kWidth * (b.step + 1) / b.steps);
                   std::string meter(static_cast<size_t>(filled), '=');
                   if (filled < kWidth)
                     meter += '>' + std::string(static_cast<size_t>(kWidth - filled - 1), ' ');
                   std::snprintf(text, sizeof text,
                                 "\r\033[Kepoch %d/%lld [%s] %lld/%lld  loss %.4f  acc %.2f%%  "
                                 "%.0f images/s  ETA %s",
                                 b.epoch, static_cast<long long>(epochs), meter.c_str(),
                                 static_cast<long long>(b.step + 1),
                                 static_cast<long long>(b.steps), b.running_loss,
                                 100 * b.running_acc, rate, clock_text(eta).c_str());
                 } else {
                   std::snprintf(text, sizeof text,
                                 "epoch %d/%lld: batch %lld/%lld  loss %.4f  acc %.2f%%  %.0f "
                                 "images/s  ETA %s\n",
                                 b.epoch, static_cast<long long>(epochs),
                                 static_cast<long long>(b.step + 1),
                                 static_cast<long long>(b.steps), b.running_loss,
                                 100 * b.running_acc, rate, clock_text(eta).c_str());
                 }
                 std::cerr << text << std::flush;
               }
               return g_stop_signal == 0;
             },
         .on_epoch_end =
             [&](const EpochStats& s) {
               if (bar) std::cerr << "\r\033[K" << std::flush;  // the bar gives way to the line
               char line[640], val[160] = "";
               if (json) {
                 last_line = epoch_json(s, has_val);
               } else {
                 if (has_val)
                   std::snprintf(val, sizeof val, "val loss %.4f acc %.2f%%  ", s.val_loss,
                                 100 * s.val_acc);
                 std::snprintf(line, sizeof line,
                               "epoch %d/%lld  train loss %.4f acc %.2f%%  %stest loss %.4f acc "
                               "%.2f%%  %.1f s  %.0f images/s",
                               s.epoch, static_cast<long long>(epochs), s.train_loss,
                               100 * s.train_acc, val, s.test_loss, 100 * s.test_acc, s.seconds,
                               s.images_per_s);
                 last_line = line;
               }
               if (!quiet) std::cout << last_line << std::endl;
               log.write(s);
               if (!report_dir.empty()) {
                 report.epochs.push_back({.epoch = s.epoch,
                                          .learning_rate = s.learning_rate,
                                          .train_loss = s.train_loss,
                                          .train_acc = s.train_acc,
                                          .test_loss = s.test_loss,
                                          .test_acc = s.test_acc,
                                          .has_validation = has_val,
                                          .val_loss = s.val_loss,
                                          .val_acc = s.val_acc,
                                          .seconds = s.seconds,
                                          .grad_norms = s.grad_norms});
                 write_report(report_dir, report, model, report_sample);
               }
               // Strictly better only: on a tie the earlier (less trained) model stays.
               if (!best_path.empty() && s.val_acc > best_val_acc) {
                 best_val_acc = s.val_acc;
                 save(best_path, s.epoch);
                 char note[96];
                 std::snprintf(note, sizeof note, "best val acc %.2f%% at epoch %d: saved ",
                               100 * s.val_acc, s.epoch);
                 info << note << best_path << std::endl;
               }
               if (save_every > 0 && s.epoch % save_every == 0 && s.epoch < epochs)
                 save(save_path, s.epoch);
               if (patience > 0) {
                 const double value = monitor == "val_loss" ? s.val_loss : s.val_acc;
                 const bool improved = monitor == "val_loss" ? value < best_monitored - min_delta
                                                             : value > best_monitored + min_delta;
                 if (improved) {
                   best_monitored = value;
                   epochs_without_improvement = 0;
                 } else if (++epochs_without_improvement >= patience) {
                   info << "early stop after epoch " << s.epoch << ": " << monitor
                        << " has not improved for " << patience << " epochs" << std::endl;
                   return false;
                 }
               }
               return g_stop_signal == 0;
             }});
  } catch (const Diverged& e) {
    // The step failed before its update: the model and optimizer are the last good state. Keep
    // it, where a Ctrl-C would, and say how to go on at a lower rate.
    restore_stop_signals();
    if (bar) std::cerr << "\r\033[K";
    std::cerr << "convnet train: error: " << e.what() << std::endl;
    // An update can make weights infinite with a finite loss; the next step then fails. Such
    // weights are no good state: the file already there is worth more.
    for (const auto& p : model.params())
      for (const float v : p.value->span())
        if (!std::isfinite(v)) {
          std::cerr << "nothing saved: " << p.name << " already holds " << v
                    << " (an earlier update overflowed); the last checkpoint is left as it was"
                    << std::endl;
          return 1;
        }
    const std::string path = save_path.empty() ? "interrupted.safetensors" : save_path;
    save(path, e.completed_epochs, e.completed_steps);
    char lower[32];
    std::snprintf(lower, sizeof lower, "%g", base_lr / 10);
    std::cerr << "saved the last good state, after epoch " << e.completed_epochs;
    if (e.completed_steps > 0)
      std::cerr << " and " << e.completed_steps << " batches of epoch " << e.completed_epochs + 1;
    std::cerr << ", to " << path << " (continue at a lower rate with: convnet train --resume "
              << path << " --lr " << lower << " --epochs " << epochs << ")" << std::endl;
    return 1;
  } catch (const std::bad_alloc&) {
    throw Error("out of memory while training " + args.get("model") + " on batches of " +
                std::to_string(built_batch) + " images of " + train.sample_shape().str() +
                ": try a smaller --batch");
  }
  restore_stop_signals();
  if (quiet && !last_line.empty()) std::cout << last_line << std::endl;

  if (const int signal = g_stop_signal; signal != 0 && result.stopped) {
    if (bar) std::cerr << "\r\033[K";
    const std::string path = save_path.empty() ? "interrupted.safetensors" : save_path;
    save(path, result.completed_epochs, result.completed_steps);
    std::cerr << "interrupted by " << signal_name(signal) << " after epoch "
              << result.completed_epochs;
    if (result.completed_steps > 0)
      std::cerr << " and " << result.completed_steps << " batches of epoch "
                << result.completed_epochs + 1;
    std::cerr << ": saved " << path << " (continue with: convnet train --resume " << path
              << " --epochs " << epochs << ")" << std::endl;
    return 128 + signal;  // the shell's code for a process ended by that signal
  }
  if (!save_path.empty()) {
    save(save_path, result.completed_epochs);
    info << "saved " << save_path << "\n";
  }
  return 0;
}

}  // namespace convnet::cli
