// convnet train's flags: their definitions, the recipe a checkpoint records and --resume reuses,
// and the checks that turn them into TrainerOptions.
#include "train_flags.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "common_flags.hpp"
#include "convnet/files.hpp"
#include "optimizer_flags.hpp"

namespace convnet::cli {
namespace {

// The flags a checkpoint records and --resume reuses unless given again: everything that decides
// the data, the batches and the updates (the seed is the checkpoint's own), and the planned
// total of epochs, so that `--resume FILE` alone finishes an interrupted run on its own schedule.
constexpr const char* kResumedFlags[] = {"epochs",         "model",      "data",
                                         "image-size",     "val-split",  "normalize",
                                         "crop-padding",   "flip",       "batch",
                                         "optimizer",      "lr",         "momentum",
                                         "weight-decay",   "nesterov",   "train-limit",
                                         "test-limit",     "schedule",   "gamma",
                                         "step-size",      "milestones", "min-lr",
                                         "t-max",          "warmup",     "warmup-start",
                                         "pct-start",      "div-factor", "final-div-factor",
                                         "clip-grad-norm", "loss",       "huber-delta",
                                         "target",         "noise",      "normalize-targets",
                                         "precision",      "stream",     "train-transform",
                                         "eval-transform"};

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
  if (const double lr = learning_rate_flag(args); s.min_lr > lr) {
    char rate[32];
    std::snprintf(rate, sizeof rate, "%g", lr);
    throw UsageError{"--min-lr " + args.get("min-lr") + ": above the learning rate " + rate +
                     " (--lr " + args.get("lr") +
                     "): the schedule anneals from --lr down to --min-lr"};
  }
  return s;
}

}  // namespace

void check_train_outputs(const ArgParser& args) {
  for (const char* flag : {"save", "save-best", "log"})
    if (const std::string path = args.get(flag); !path.empty())
      check_output_file(path, "--" + std::string(flag));
  const std::string log = args.get("log");
  if (!log.empty() && !is_metrics_log_path(log))
    throw UsageError{"--log: expected a file ending in .csv, .jsonl or .json, got " + quoted(log)};
  const std::string dir = args.get("report");
  if (dir.empty()) return;
  const std::filesystem::path parent = std::filesystem::path(dir).parent_path();
  const std::string shown = parent.empty() ? "." : parent.string();
  if (!std::filesystem::is_directory(dir) && ::access(shown.c_str(), W_OK) != 0)
    throw Error("--report " + dir + ": cannot write in " + shown + ": " + std::strerror(errno));
  if (std::filesystem::exists(dir) && !std::filesystem::is_directory(dir))
    throw Error("--report " + dir + ": is a file; the report is written into a folder");
}

void add_train_flags(ArgParser& args) {
  add_data_flags(args, "/usr/share/datasets/fashion-mnist",
                 "folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (MNIST format), "
                 "CIFAR-10 binary batches (data_batch_1.bin ... test_batch.bin), or train/ and "
                 "test/ folders of class sub-folders of PNG/JPEG/PGM/BMP images");
  args.add("val-split", "0", "hold out this fraction of the training set for validation");
  args.add("target", "auto",
           "what the output learns: labels (classes), values (the data's real-valued targets: "
           "<split>-targets-idx2-float files, or targets.csv beside the images), input (the "
           "image itself: an autoencoder); auto = values when the data has them, else labels");
  args.add("loss", "auto",
           std::string("the loss: ") + loss_names() +
               " (auto = cross-entropy for labels, mse otherwise; a regression loss on labels "
               "compares the outputs with one-hot rows)");
  args.add("huber-delta", "1", "--loss huber: where the loss turns from quadratic to linear");
  args.add_switch("normalize-targets",
                  "train on targets normalised by the training set's mean and stddev per output "
                  "(stored in the checkpoint; predict maps outputs back)");
  args.add("noise", "0",
           "--target input: add Gaussian noise of this stddev to training inputs (a denoising "
           "autoencoder)");
  args.add_switch("normalize", "normalise each channel by the training set's mean and stddev");
  args.add("crop-padding", "0", "augment: random crops of images padded by this many pixels");
  args.add_switch("flip", "augment: mirror training images left-right at random");
  args.add_switch("stream",
                  "read the image folders (or train.txt and test.txt lists of '<path> <label>') "
                  "as they are used: only the list of files is held in memory, each batch "
                  "decoded on --workers threads");
  args.add("workers", "2", "--stream: threads decoding images (they do not change the result)");
  args.add("train-transform", "resize",
           "--stream: how a training image becomes a sample: resize (the whole image), "
           "random-resized-crop[:SMIN,SMAX[:RMIN,RMAX]] (torchvision's, default 0.08,1:0.75,"
           "1.333) or center-crop[:RESIZE], each optionally followed by +flip");
  args.add("eval-transform", "resize",
           "--stream: the same for test and validation images (torchvision's evaluation: "
           "center-crop:RESIZE, the shorter side resized first)");
  add_model_flag(args);
  args.add("epochs", "5",
           "passes over the training set (the total, when resuming: by default the checkpoint's)");
  args.add("batch", "64", "mini-batch size (under mpirun: the global batch, split over the ranks)");
  args.add("micro-batches", "1",
           "compute each batch as this many parts whose gradients are summed in order before one "
           "update (big batches in small memory; the same bits as mpirun -np K)");
  args.add("allreduce", "ordered",
           "under mpirun: ordered (the gradients summed after the backward pass) or overlap (in "
           "buckets, as the backward pass finishes them, on a communication thread); both sum in "
           "rank order: the bits of --micro-batches N");
  args.add("bucket-mb", "auto",
           "--allreduce overlap: MiB of gradients per bucket, as PyTorch DDP's bucket_cap_mb "
           "(auto: an eighth of the gradients, from 0.25 to 25 MiB; the first bucket is at most "
           "1 MiB, so that communication starts early)");
  args.add("comm-timeout", "300",
           "under mpirun: seconds a rank waits for the others before it ends the job (0 = for "
           "ever)");
  add_optimizer_flags(args);
  // Cosine by default: a run of a fixed number of epochs should end annealed, not at the full
  // rate's noise (the README's Results). The library's fit() keeps PyTorch's constant default;
  // this is the command's recipe.
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
  args.add("monitor", "val_loss",
           "what early stopping (and, for regression, --save-best) watches: val_loss, val_acc "
           "(classification) or val_mae (regression)");
  args.add("min-delta", "0", "early stopping: the least change that counts as improvement");
  args.add("seed", "1", "seed for initialisation and shuffling (same seed, same run)");
  add_context_flags(args);
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
}

Checkpoint<float> resume_from_flags(ArgParser& args) {
  Checkpoint<float> resumed;
  const std::string path = args.get("resume");
  if (path.empty()) return resumed;
  resumed = load_checkpoint<float>(path);
  for (const std::string& note : resumed.notes)
    std::cerr << "convnet train: warning: " << note << "\n";
  // The original command with --resume added is accepted: a flag given again with the value the
  // checkpoint records changes nothing. Only the model cannot change.
  const auto& extra = resumed.state.extra;
  if (args.given("model")) {
    const auto it = extra.find("model");
    if (it == extra.end() || it->second != args.get("model"))
      throw UsageError{"--model " + args.get("model") + ": " + path + " holds " +
                       (it == extra.end() ? std::string("its own model") : "model " + it->second) +
                       ", and --resume continues that model (drop --model, or train a new run "
                       "without --resume)"};
  }
  for (const char* name : kResumedFlags)
    if (const auto it = extra.find(name); it != extra.end()) args.set_default(name, it->second);
  args.set_default("seed", std::to_string(resumed.state.seed));
  return resumed;
}

int64_t join_ranks(const ArgParser& args, Communicator& communicator, TrainerOptions& options) {
  const int ranks = communicator.size();
  communicator.set_timeout(non_negative_flag(args, "comm-timeout", "seconds"));
  const std::string reduction = args.get("allreduce");
  if (reduction != "ordered" && reduction != "overlap")
    throw UsageError{"--allreduce: expected ordered or overlap, got '" + reduction + "'"};
  if (reduction == "overlap") options.fit.reduction = FitOptions::Reduction::Overlapped;
  if (args.get("bucket-mb") != "auto") {
    const double bucket_mb = args.get_double("bucket-mb");
    if (!(bucket_mb > 0 && bucket_mb <= 1024))
      throw UsageError{"--bucket-mb: expected auto or MiB in (0, 1024], got " +
                       args.get("bucket-mb")};
    options.fit.bucket = std::max<int64_t>(1, static_cast<int64_t>(bucket_mb * 1048576 / 4));
  }
  options.writer = communicator.rank() == 0;
  if (ranks == 1) return options.fit.micro_batches;
  if (options.fit.micro_batches != 1 && options.fit.micro_batches != ranks)
    throw UsageError{"--micro-batches " + args.get("micro-batches") +
                     ": under mpirun each of the " + std::to_string(ranks) +
                     " ranks computes one part of a batch (give 1 or " + std::to_string(ranks) +
                     ")"};
  if (options.fit.batch < ranks)
    throw UsageError{"--batch " + args.get("batch") + ": fewer samples than the " +
                     std::to_string(ranks) + " ranks that share each batch"};
  options.fit.communicator = &communicator;
  return ranks;
}

TrainerOptions trainer_options(const ArgParser& args, const Checkpoint<float>* resumed) {
  TrainerOptions o;
  const int64_t epochs = args.get_int("epochs", 1);
  if (epochs > 1000000)
    throw UsageError{"--epochs: expected at most 1000000, got " + args.get("epochs")};
  if (resumed && resumed->state.epoch >= epochs)
    throw UsageError{"--epochs " + std::to_string(epochs) + ": " + args.get("resume") +
                     " has already run " + std::to_string(resumed->state.epoch) +
                     " epochs (--epochs is the total)"};
  o.fit.epochs = static_cast<int>(epochs);
  o.fit.completed_epochs = resumed ? static_cast<int>(resumed->state.epoch) : 0;
  o.fit.completed_steps = resumed ? resumed->state.step : 0;
  o.fit.batch = args.get_int("batch", 1);
  o.fit.seed = static_cast<uint64_t>(args.get_int("seed", 0));
  o.fit.augment = {.crop_padding = args.get_int("crop-padding", 0),
                   .horizontal_flip = args.get_switch("flip")};
  o.fit.schedule = make_schedule(args);
  o.fit.clip_grad_norm = non_negative_flag(args, "clip-grad-norm", "a norm");
  const int64_t micro_batches = args.get_int("micro-batches", 1);
  if (micro_batches > o.fit.batch)
    throw UsageError{"--micro-batches " + args.get("micro-batches") + ": more parts than the " +
                     args.get("batch") + " samples of a batch"};
  o.fit.micro_batches = static_cast<int>(micro_batches);

  const double val_split = args.get_double("val-split");
  if (!(val_split >= 0 && val_split < 1))
    throw UsageError{"--val-split: expected a fraction in [0, 1), got " + args.get("val-split")};
  o.early_stop.patience = args.get_int("early-stop", 0);
  const std::string monitor = args.get("monitor");
  if (monitor != "val_loss" && monitor != "val_acc" && monitor != "val_mae")
    throw UsageError{"--monitor: expected val_loss, val_acc or val_mae, got '" + monitor + "'"};
  o.early_stop.monitor = monitor_from_name(monitor);
  o.early_stop.min_delta = non_negative_flag(args, "min-delta", "a change");
  if (o.early_stop.patience > 0 && !(val_split > 0))
    throw UsageError{
        "--early-stop: needs --val-split (stopping is decided on validation data, never on the "
        "test set)"};

  o.save = args.get("save");
  o.save_every = args.get_int("save-every", 0);
  if (o.save_every > 0 && o.save.empty())
    throw UsageError{"--save-every: needs --save FILE to write to"};
  o.save_best = args.get("save-best");
  if (!o.save_best.empty() && !(val_split > 0))
    throw UsageError{
        "--save-best: needs --val-split (the best model is chosen on validation data, never on "
        "the test set)"};
  if (!o.save_best.empty() && o.save_best == o.save)
    throw UsageError{"--save-best: must differ from --save (" + o.save + ")"};
  // Checkpoints record the best validation accuracy, so a resumed run replaces the best
  // checkpoint only with a better model than it already holds.
  if (resumed && !o.save_best.empty()) {
    const auto& extra = resumed->state.extra;
    if (const auto it = extra.find("best_val_acc"); it != extra.end())
      o.best_val_acc = std::strtod(it->second.c_str(), nullptr);
    if (const auto it = extra.find("best_" + monitor); it != extra.end() && monitor != "val_acc")
      o.best_val_monitored = std::strtod(it->second.c_str(), nullptr);
  }
  o.log = args.get("log");
  o.append_log = resumed != nullptr;
  o.report = args.get("report");
  o.report_title = "convnet train --model " + args.get("model") + " on " + args.get("data");
  o.report_config = args.values();
  for (const char* name : kResumedFlags) o.recipe[name] = args.value_text(name);

  o.format = args.get_switch("json") ? TrainerOptions::Format::Json : TrainerOptions::Format::Text;
  o.quiet = args.get_switch("quiet");
  o.progress_bar = !o.quiet && isatty(STDERR_FILENO) != 0;
  o.progress_every = args.get_double("progress-every");
  if (o.progress_every < 0)
    throw UsageError{"--progress-every: expected seconds >= 0 (0 = no progress lines), got " +
                     args.get("progress-every")};
  o.error_prefix = "convnet train: error: ";
  o.resume_hint = [epochs](const std::string& path, std::optional<double> lr) {
    std::string hint = "convnet train --resume " + path;
    if (lr) {
      char text[32];
      std::snprintf(text, sizeof text, "%g", *lr);
      hint += " --lr " + std::string(text);
    }
    return hint + " --epochs " + std::to_string(epochs);
  };
  return o;
}

std::unique_ptr<Loss<float>> prepare_task(const ArgParser& args, TrainerOptions& options,
                                          Dataset& train, Dataset& test, Dataset& validation) {
  const std::string target = args.get("target");
  if (target == "auto")
    options.fit.target = Target::Auto;
  else if (target == "labels")
    options.fit.target = Target::Labels;
  else if (target == "values")
    options.fit.target = Target::Values;
  else if (target == "input")
    options.fit.target = Target::Input;
  else
    throw UsageError{"--target: expected auto, labels, values or input, got '" + target + "'"};
  const Target resolved = resolve_target(options.fit.target, train);
  if (resolved == Target::Values && !train.has_targets())
    throw UsageError{"--target values: " + args.get("data") +
                     " has no real-valued targets (<split>-targets-idx2-float files, or "
                     "targets.csv beside the images)"};
  if (resolved == Target::Labels && train.classes() == 0)
    throw UsageError{"--target labels: " + args.get("data") + " has no class labels"};
  options.fit.noise = non_negative_flag(args, "noise", "a standard deviation");
  if (options.fit.noise > 0 && resolved != Target::Input)
    throw UsageError{"--noise: corrupts the input of an autoencoder (--target input); the target "
                     "here is " + std::string(target_name(resolved))};
  if (args.get_switch("normalize-targets")) {
    if (resolved != Target::Values)
      throw UsageError{"--normalize-targets: for real-valued targets (--target values); the "
                       "target here is " + std::string(target_name(resolved))};
    const MeanStddev stats = train.target_stats();  // training targets only
    for (Dataset* d : {&train, &test, &validation})
      if (d->size() > 0) d->set_target_normalization(stats.mean, stats.stddev);
  }
  options.input.target = target_name(resolved);
  options.input.target_names = train.target_names();
  options.input.target_mean = train.target_mean();
  options.input.target_stddev = train.target_stddev();
  const double delta = args.get_double("huber-delta");
  if (!(delta > 0 && std::isfinite(delta)))
    throw UsageError{"--huber-delta: expected a positive number, got " + args.get("huber-delta")};
  std::string loss = args.get("loss");
  if (loss == "auto") loss = resolved == Target::Labels ? "cross-entropy" : "mse";
  if (loss == "cross-entropy" && resolved != Target::Labels)
    throw UsageError{"--loss cross-entropy: compares class scores with labels; the target here is " +
                     std::string(target_name(resolved)) + " (use mse, l1 or huber)"};
  try {
    return make_loss(loss, delta);
  } catch (const Error& e) {
    throw UsageError{std::string("--loss: ") + e.what()};
  }
}

}  // namespace convnet::cli
