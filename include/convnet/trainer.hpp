// A training run with everything around fit(): progress and one line per epoch, the metrics log,
// the HTML report, checkpoints (every N epochs, the best by validation accuracy, the last one, and
// the last good state of a run that is stopped or diverges) and early stopping. `convnet train`
// is this class with its options read from flags.
//
//   Trainer trainer(model, optimizer, loss, train, &test, {.fit = {.epochs = 10, .batch = 64},
//                                                         .save = "net.safetensors"});
//   TrainerResult result = trainer.run();
//
// Every side effect of a run (a line printed, a file written) goes through one place,
// TrainerOutput, which prints and writes only in the writer process: a data-parallel run's other
// processes train and take the same decisions (early stopping, the end of the run) from the same
// figures, but print and write nothing.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "convnet/checkpoint.hpp"
#include "convnet/data.hpp"
#include "convnet/loss.hpp"
#include "convnet/model.hpp"
#include "convnet/optim.hpp"
#include "convnet/train.hpp"

namespace convnet {

// Early stopping as Keras's EarlyStopping: stop when the monitored validation figure has not
// improved by more than min_delta for `patience` epochs.
// Regression runs monitor val_loss or val_mae (the validation set's mean MAE over the outputs),
// classification runs val_loss or val_acc.
struct EarlyStopping {
  enum class Monitor { ValLoss, ValAcc, ValMae };
  int64_t patience = 0;  // 0: never stop early
  Monitor monitor = Monitor::ValLoss;
  double min_delta = 0;
};
// "val_loss", "val_acc" or "val_mae"; Error for another name.
EarlyStopping::Monitor monitor_from_name(const std::string& name);
const char* monitor_name(EarlyStopping::Monitor monitor);

// Whether `path` names a metrics log of a format the Trainer writes: .csv, or JSON lines (.jsonl,
// .json).
bool is_metrics_log_path(const std::string& path);

struct TrainerOptions {
  FitOptions fit{};  // the recipe: epochs, batch, seed, augmentation, schedule, clipping

  // --- files (empty: not written); each is written atomically (convnet/files.hpp) -------------
  std::string save{};        // a checkpoint after the last epoch, and every save_every epochs
  int64_t save_every = 0;    // 0: only at the end
  // After every epoch that improves validation accuracy (classification), or the monitored
  // val_loss or val_mae (regression and reconstruction: early_stop.monitor, patience or not).
  std::string save_best{};
  double best_val_acc = -1;  // the best so far (a resumed run's checkpoint records it)
  double best_val_monitored = HUGE_VAL;  // regression's best so far (lower is better), likewise
  // Where the last good state of a stopped or diverged run goes when `save` is empty.
  std::string stop_save = "interrupted.safetensors";
  std::string log{};        // every epoch's figures: .csv, or JSON lines (.jsonl, .json)
  bool append_log = false;  // add to the log found at `log` (a resumed run)
  std::string report{};     // a folder: index.html rewritten after every epoch (needs a test set)
  std::string report_title{};
  std::vector<std::pair<std::string, std::string>> report_config{};  // shown in the report

  EarlyStopping early_stop{};

  // What every checkpoint records besides the model, the optimizer and the position: the
  // caller's settings that a resume reuses (TrainingState::extra; the CLI's flags) and what
  // inference needs to know about the inputs.
  std::map<std::string, std::string> recipe{};
  InputInfo input{};

  // --- printing ---------------------------------------------------------------------------------
  enum class Format { Text, Json };  // an epoch as a line of text or as one JSON object
  Format format = Format::Text;
  bool quiet = false;  // print only the last epoch's line (and errors)
  // Progress while an epoch runs, on `err`: a bar redrawn in place (for a terminal), or else a
  // line every progress_every seconds (0: none).
  bool progress_bar = false;
  double progress_every = 10;
  std::ostream* out = nullptr;           // epoch lines; null: std::cout
  std::ostream* err = nullptr;           // progress, errors; null: std::cerr
  bool writer = true;                    // false: print and write nothing (see TrainerOutput)
  std::string error_prefix = "error: ";  // before a divergence's message ("convnet train: error: ")

  // Polled after every batch and every epoch: a non-null reason ("Ctrl-C (SIGINT)") stops the run
  // there; its state is saved (to `save`, else `stop_save`) and the reason printed. Must not
  // allocate.
  std::function<const char*()> stop_requested{};
  // How to continue from a checkpoint the run saved when it stopped (lr: nullopt) or diverged
  // (lr: a lower rate to continue at), printed after it; none when not set. The CLI gives its
  // command line: "convnet train --resume PATH --epochs N".
  std::function<std::string(const std::string& path, std::optional<double> lr)> resume_hint{};
};

// Every line a run prints and every file it writes. In a process that is not the writer, each
// call does nothing (the streams discard).
class TrainerOutput {
 public:
  // The report's classes come from train, its sample (the first test image) from test.
  TrainerOutput(const TrainerOptions& options, const Dataset& train, const Dataset* test);
  ~TrainerOutput();
  TrainerOutput(const TrainerOutput&) = delete;
  TrainerOutput& operator=(const TrainerOutput&) = delete;

  // Notes about the run: stdout, or stderr under Format::Json (stdout is then pure JSON lines),
  // nowhere when quiet.
  std::ostream& info();
  // Errors: stderr. The progress bar, if drawn, gives way first.
  std::ostream& err();
  // After a batch: the bar, or a line when progress_every seconds have passed.
  void progress(const BatchStats& batch, int64_t epochs, int64_t batch_size);
  // After an epoch: its line (printed at once unless quiet), the log's row, the report.
  void epoch(const EpochStats& epoch, int64_t epochs, bool has_validation, Model<float>& model);
  void checkpoint(const std::string& path, const Model<float>& model,
                  const Optimizer<float>& optimizer, const TrainingState& state);
  // The end of the run: under quiet, the last epoch's line.
  void finish();
  // What fit() fills with the test set's confusion matrix when the report needs it; else null.
  ConfusionMatrix* report_confusion();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

struct TrainerResult {
  enum class End {
    Finished,      // every epoch ran
    EarlyStopped,  // early stopping ended it (after an epoch)
    Stopped,       // stop_requested ended it; its state was saved to `saved`
    Diverged,      // a non-finite loss or gradient; the last good state was saved to `saved`
                   // unless the weights had already overflowed (saved is then empty)
    BadData,       // a training sample could not be read (BadData); the state before its batch
                   // was saved to `saved`
  };
  End end = End::Finished;
  FitResult fit;
  std::string saved;                  // the checkpoint written last at the end of the run
  const char* stop_reason = nullptr;  // End::Stopped: what stop_requested returned
  std::string error;                  // End::Diverged and End::BadData: the error message
};

class Trainer {
 public:
  // The model must be built for options.fit.batch samples of train's shape (or more); test and
  // validation (options.fit.validation) may be null. Checks the options (early stopping and
  // save_best need a validation set; save_best differs from save) and that every output file
  // can be written, throwing convnet::Error naming the problem, before any training.
  Trainer(Model<float>& model, Optimizer<float>& optimizer, Loss<float>& loss, const Dataset& train,
          const Dataset* test, TrainerOptions options);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  const TrainerOptions& options() const { return options_; }
  // Notes before the run (the model, the data), through the run's one output.
  std::ostream& info() { return output_->info(); }
  // Trains to options.fit.epochs or until stopped; see TrainerResult. Errors other than
  // divergence propagate as convnet::Error. Runs once: a run to continue is a new Trainer whose
  // fit.completed_* say where the last one ended.
  TrainerResult run();

 private:
  TrainingState state(int epoch, int64_t step) const;
  void save(const std::string& path, int epoch, int64_t step = 0);
  bool on_epoch_end(const EpochStats& s);
  TrainerResult diverged(const Diverged& e, FitResult fit);
  TrainerResult bad_data(const BadData& e, FitResult fit);

  Model<float>& model_;
  Optimizer<float>& optimizer_;
  Loss<float>& loss_;
  const Dataset& train_;
  const Dataset* test_;
  TrainerOptions options_;
  std::unique_ptr<TrainerOutput> output_;
  bool regression_;  // the output is trained to real values (Target::Values or ::Input)
  double best_val_acc_;
  double best_val_monitored_;
  double best_monitored_;
  int64_t epochs_without_improvement_ = 0;
  bool ran_ = false;
};

}  // namespace convnet
