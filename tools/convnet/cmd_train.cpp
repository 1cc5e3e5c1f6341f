// convnet train: the flags read into the library's Trainer (convnet/trainer.hpp), which owns the
// run (progress, epoch lines, log, report, checkpoints, early stopping); here the data is loaded,
// the model built or resumed, and the process's signals and exit code handled.
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <new>

#include "args.hpp"
#include "commands.hpp"
#include "common_flags.hpp"
#include "convnet/runtime.hpp"
#include "convnet/spec.hpp"
#include "convnet/trainer.hpp"
#include "data_source.hpp"
#include "optimizer_flags.hpp"
#include "stop_signals.hpp"
#include "train_flags.hpp"

namespace convnet::cli {

int cmd_train(int argc, char** argv, Communicator& communicator) {
  ArgParser args(
      "convnet train",
      "Trains a built-in model or a model spec file on an IDX, CIFAR-10 or image-folder\n"
      "dataset and reports, per epoch, train loss and accuracy, test loss and accuracy,\n"
      "seconds and images/s. --save writes a checkpoint; --resume continues one exactly.\n"
      "The defaults are the reference recipe: LeNet, SGD lr 0.05 momentum 0.9,\n"
      "batch 64, 5 epochs, the rate annealed by a cosine.");
  add_train_flags(args);
  if (!args.parse(argc, argv, 2)) {
    std::cout << args.help();
    return 0;
  }
  // A resumed run takes its model, seed and recipe from the checkpoint.
  Checkpoint<float> resumed = resume_from_flags(args);
  const bool resuming = resumed.model != nullptr;
  TrainerOptions options = trainer_options(args, resuming ? &resumed : nullptr);
  const int64_t batch_parts = join_ranks(args, communicator, options);  // parts of a batch
  auto optimizer = make_optimizer(args);
  apply_context_flags(args, "convnet train");
  const double val_split = args.get_double("val-split");
  const int64_t crop_padding = options.fit.augment.crop_padding;
  const Shape image_shape = parse_chw("image-size", args.get("image-size"));
  // What can be checked before the data is loaded and hours are spent training.
  std::unique_ptr<Model<float>> spec_model = resuming ? nullptr : check_model_flag(args);
  if (communicator.rank() == 0) check_train_outputs(args);  // the writer's files

  const StreamOptions stream = stream_options(args);
  TrainTest data = load_train_test(args.get("data"), image_shape, stream);
  Dataset &train = data.train, &test = data.test, validation;
  for (auto [set, flag] : {std::pair{&train, "train-limit"}, {&test, "test-limit"}})
    if (const int64_t limit = args.get_int(flag, 0); limit > 0 && limit < set->size())
      set->truncate(limit);  // the first `limit` samples
  if (val_split > 0) {
    TrainValidation parts = split_for_validation(train, val_split, options.fit.seed, stream);
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
  options.fit.validation = validation.size() > 0 ? &validation : nullptr;
  options.input = {train.class_names(), train.mean(), train.stddev()};
  std::unique_ptr<Loss<float>> loss = prepare_task(args, options, train, test, validation);

  // A batch larger than the training set is the whole set: build for what will be used.
  options.fit.batch = std::min(options.fit.batch, train.size());
  const Shape input = train.shape().with_batch((options.fit.batch + batch_parts - 1) / batch_parts);
  const std::string oom = "out of memory building " + args.get("model") + " for batches of " +
                          std::to_string(options.fit.batch) + " images of " +
                          train.sample_shape().str();
  std::unique_ptr<Model<float>> model;
  try {
    if (resuming) {
      restore_optimizer(resumed, *optimizer);
      model = std::move(resumed.model);
      if (model->input_shape() != input) model->build(input);  // keeps the values
    } else {
      model = spec_model ? std::move(spec_model)
                         : load_model<float>(args.get("model"), train.has_targets()
                                                                    ? train.target_size()
                                                                    : train.classes());
      model->build(input, options.fit.seed);
    }
  } catch (const OutOfMemory& e) {  // the stage and the size, from the model's build
    throw Error(oom + " (" + e.what() + "): try a smaller --batch");
  } catch (const std::bad_alloc&) {
    throw Error(oom + ": try a smaller --batch");
  }
  // The process default as --threads left it (a resumed model was made before the flag was).
  model->set_context(std::make_shared<Context>(default_context()));
  check_output_fits(*model, train, options.fit.target,  // classes, targets or the image
                    "model " + args.get("model") + " on " + args.get("data"));

  options.stop_requested = [] { return stop_signal_name(stop_signal()); };
  Trainer trainer(*model, *optimizer, *loss, train, &test, std::move(options));
  std::ostream& info = trainer.info();
  if (resuming)
    info << "resuming " << args.get("resume") << " after epoch " << resumed.state.epoch
         << (resumed.state.step > 0
                 ? " and " + std::to_string(resumed.state.step) + " batches of the next"
                 : "")
         << " (step " << optimizer->steps() << ")\n";
  // A resumed run with a new total continues on its curve: exact only with its own total.
  const LrSchedule& schedule = trainer.options().fit.schedule;
  const int epochs = trainer.options().fit.epochs;
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
       << (schedule.warmup_epochs > 0 ? " with warm-up" : "") << ", batch "
       << args.get_int("batch", 1)
       << (batch_parts > 1 ? " in parts of " + std::to_string(input[0]) : "")
       << (communicator.size() > 1 ? ", " + std::to_string(communicator.size()) + " ranks" : "")
       << ", threads " << num_threads() << ", " << precision_name(precision()) << "\n"
       << model->summary() << std::flush;

  handle_stop_signals();
  TrainerResult result;
  try {
    result = trainer.run();
  } catch (const std::bad_alloc&) {
    restore_stop_signals();
    throw Error("out of memory while training " + args.get("model") + " on batches of " +
                std::to_string(input[0]) + " images of " + train.sample_shape().str() +
                ": try a smaller --batch");
  }
  restore_stop_signals();
  using End = TrainerResult::End;
  if (result.end == End::Diverged || result.end == End::BadData) return 1;  // its state saved
  if (result.end == End::Stopped) return 128 + stop_signal();  // the shell's code
  return 0;
}

}  // namespace convnet::cli
