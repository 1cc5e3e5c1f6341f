// Trainer: fit() with a run's side effects around it, each written once in TrainerOutput.
#include "convnet/trainer.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "convnet/distributed.hpp"
#include "convnet/files.hpp"
#include "convnet/metrics.hpp"
#include "convnet/report.hpp"

namespace convnet {
namespace {

// The regression figures of a set as "name": value pairs (per output when there are several).
std::string regression_json(const char* set, const RegressionStats& r) {
  std::string out;
  char part[160];
  std::snprintf(part, sizeof part, "\"%s_mse\": %.6g, \"%s_mae\": %.6g, \"%s_r2\": %.6f, ", set,
                r.mean_mse, set, r.mean_mae, set, r.mean_r2);
  out += part;
  if (r.mae.size() > 1) {
    for (const auto& [name, values] : {std::pair<const char*, const std::vector<double>*>{"mae", &r.mae},
                                       {"r2", &r.r2}}) {
      out += std::string("\"") + set + "_" + name + "_per_output\": [";
      for (size_t k = 0; k < values->size(); ++k) {
        std::snprintf(part, sizeof part, "%s%.6g", k ? ", " : "", (*values)[k]);
        out += part;
      }
      out += "], ";
    }
  }
  return out;
}

// A set's figures as JSON pairs: "<set>_loss", then its accuracy or its regression figures.
std::string set_json(const char* set, double loss, double accuracy,
                     const RegressionStats* regression) {
  char part[96];
  std::snprintf(part, sizeof part, "\"%s_loss\": %.6f, ", set, loss);
  std::string out = part;
  if (regression) return out + regression_json(set, *regression);
  std::snprintf(part, sizeof part, "\"%s_acc\": %.6f, ", set, accuracy);
  return out + part;
}

// One epoch as a JSON object (Format::Json and a .jsonl log).
std::string epoch_json(const EpochStats& s, bool has_validation) {
  const bool regression = !s.test_regression.empty() || !s.val_regression.empty();
  char head[160], tail[96];
  std::snprintf(head, sizeof head, "{\"epoch\": %d, \"learning_rate\": %.9g, ", s.epoch,
                s.learning_rate);
  std::snprintf(tail, sizeof tail, "\"seconds\": %.3f, \"images_per_s\": %.1f}", s.seconds,
                s.images_per_s);
  std::string line = head;
  if (regression) {  // the training pass's figure is its loss alone
    char train[64];
    std::snprintf(train, sizeof train, "\"train_loss\": %.6f, ", s.train_loss);
    line += train;
  } else {
    line += set_json("train", s.train_loss, s.train_acc, nullptr);
  }
  if (has_validation)
    line += set_json("val", s.val_loss, s.val_acc, regression ? &s.val_regression : nullptr);
  line += set_json("test", s.test_loss, s.test_acc, regression ? &s.test_regression : nullptr);
  return line + tail;
}

std::string epoch_text(const EpochStats& s, int64_t epochs, bool has_validation) {
  char line[640], val[160] = "";
  if (!s.test_regression.empty() || !s.val_regression.empty()) {
    const RegressionStats &v = s.val_regression, &t = s.test_regression;
    if (has_validation)
      std::snprintf(val, sizeof val, "val loss %.4f mae %.4g r2 %.3f  ", s.val_loss, v.mean_mae,
                    v.mean_r2);
    std::snprintf(line, sizeof line,
                  "epoch %d/%lld  train loss %.4f  %stest loss %.4f mse %.4g mae %.4g r2 %.3f  "
                  "%.1f s  %.0f images/s",
                  s.epoch, static_cast<long long>(epochs), s.train_loss, val, s.test_loss,
                  t.mean_mse, t.mean_mae, t.mean_r2, s.seconds, s.images_per_s);
    return line;
  }
  if (has_validation)
    std::snprintf(val, sizeof val, "val loss %.4f acc %.2f%%  ", s.val_loss, 100 * s.val_acc);
  std::snprintf(line, sizeof line,
                "epoch %d/%lld  train loss %.4f acc %.2f%%  %stest loss %.4f acc %.2f%%  %.1f s  "
                "%.0f images/s",
                s.epoch, static_cast<long long>(epochs), s.train_loss, 100 * s.train_acc, val,
                s.test_loss, 100 * s.test_acc, s.seconds, s.images_per_s);
  return line;
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

// The metrics log: CSV or JSON lines by the file's extension, one row per epoch. The whole log
// is rewritten atomically after every epoch (it is small), so a reader never sees half a row, a
// crash keeps every finished epoch, and no link at the log's path is ever written through. A
// resumed run appends to the log it finds.
class MetricsLog {
 public:
  MetricsLog(const std::string& path, bool append, bool regression)
      : path_(path), regression_(regression) {
    if (path.empty()) return;
    if (!is_metrics_log_path(path))
      throw Error("log " + path + ": expected a file ending in .csv, .jsonl or .json");
    csv_ = path.ends_with(".csv");
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
      text_ = regression ? "epoch,learning_rate,train_loss,val_loss,val_mse,val_mae,val_r2,"
                           "test_loss,test_mse,test_mae,test_r2,seconds,images_per_s\n"
                         : "epoch,learning_rate,train_loss,train_acc,val_loss,val_acc,test_loss,"
                           "test_acc,seconds,images_per_s\n";
  }
  bool enabled() const { return !path_.empty(); }
  void start() {
    if (enabled()) write_file_atomic(path_, text_);
  }
  void write(const EpochStats& s, bool has_validation) {
    if (!enabled()) return;
    if (csv_ && regression_) {
      char row[400], val[120] = ",,,";
      const RegressionStats &v = s.val_regression, &t = s.test_regression;
      if (has_validation)
        std::snprintf(val, sizeof val, "%.6f,%.6g,%.6g,%.6f", s.val_loss, v.mean_mse, v.mean_mae,
                      v.mean_r2);
      std::snprintf(row, sizeof row, "%d,%.9g,%.6f,%s,%.6f,%.6g,%.6g,%.6f,%.3f,%.1f\n", s.epoch,
                    s.learning_rate, s.train_loss, val, s.test_loss, t.mean_mse, t.mean_mae,
                    t.mean_r2, s.seconds, s.images_per_s);
      text_ += row;
    } else if (csv_) {
      char row[400], val[80] = ",";
      if (has_validation) std::snprintf(val, sizeof val, "%.6f,%.6f", s.val_loss, s.val_acc);
      std::snprintf(row, sizeof row, "%d,%.9g,%.6f,%.6f,%s,%.6f,%.6f,%.3f,%.1f\n", s.epoch,
                    s.learning_rate, s.train_loss, s.train_acc, val, s.test_loss, s.test_acc,
                    s.seconds, s.images_per_s);
      text_ += row;
    } else {
      text_ += epoch_json(s, has_validation) + "\n";
    }
    write_file_atomic(path_, text_);
  }

 private:
  std::string path_;
  bool regression_;
  bool csv_ = false;
  std::string text_;  // the whole log as it is on disk
};

}  // namespace

bool is_metrics_log_path(const std::string& path) {
  return path.ends_with(".csv") || path.ends_with(".jsonl") || path.ends_with(".json");
}

EarlyStopping::Monitor monitor_from_name(const std::string& name) {
  if (name == "val_loss") return EarlyStopping::Monitor::ValLoss;
  if (name == "val_acc") return EarlyStopping::Monitor::ValAcc;
  if (name == "val_mae") return EarlyStopping::Monitor::ValMae;
  throw Error("early stopping: expected val_loss, val_acc or val_mae to monitor, got '" + name +
              "'");
}

const char* monitor_name(EarlyStopping::Monitor monitor) {
  switch (monitor) {
    case EarlyStopping::Monitor::ValLoss:
      return "val_loss";
    case EarlyStopping::Monitor::ValAcc:
      return "val_acc";
    case EarlyStopping::Monitor::ValMae:
      return "val_mae";
  }
  return "?";
}

// --- TrainerOutput --------------------------------------------------------------------------

struct TrainerOutput::State {
  const TrainerOptions& options;
  std::ostringstream discard;  // where a quiet run's notes and a non-writer's lines go
  std::ostream& out;
  std::ostream& err;
  MetricsLog log;
  std::string last_line;
  std::chrono::steady_clock::time_point last_progress = std::chrono::steady_clock::now();
  bool bar_drawn = false;
  ReportData report;
  Tensor<float> report_sample;
  const Dataset* test;
  bool reconstruct;

  State(const TrainerOptions& o, const Dataset& train, const Dataset* test_set)
      : options(o),
        out(!o.writer ? discard
            : o.out   ? *o.out
                      : std::cout),
        err(!o.writer ? discard
            : o.err   ? *o.err
                      : std::cerr),
        log(o.writer ? o.log : std::string(), o.append_log,
            resolve_target(o.fit.target, train) != Target::Labels),
        report{.title = o.report_title,
               .config = o.report_config,
               .epochs = {},
               .class_names = train.class_names(),
               .confusion = ConfusionMatrix(train.classes()),
               .regression = resolve_target(o.fit.target, train) != Target::Labels},
        test(test_set),
        reconstruct(resolve_target(o.fit.target, train) == Target::Input) {
    if (writes_report() && test) {  // the first test image, as the model takes it
      report_sample = Tensor<float>(test->shape().with_batch(1));
      int32_t label = 0;
      const int64_t first = 0;
      test->gather(std::span(&first, 1), report_sample.data(), &label);
    }
  }
  bool writes_report() const { return options.writer && !options.report.empty(); }
  void clear_bar() {
    if (bar_drawn) err << "\r\033[K" << std::flush;
    bar_drawn = false;
  }
};

TrainerOutput::TrainerOutput(const TrainerOptions& options, const Dataset& train,
                             const Dataset* test)
    : state_(std::make_unique<State>(options, train, test)) {
  state_->log.start();
}

TrainerOutput::~TrainerOutput() = default;

std::ostream& TrainerOutput::info() {
  State& s = *state_;
  if (s.options.quiet) return s.discard;
  return s.options.format == TrainerOptions::Format::Json ? s.err : s.out;
}

std::ostream& TrainerOutput::err() {
  state_->clear_bar();
  return state_->err;
}

void TrainerOutput::progress(const BatchStats& b, int64_t epochs, int64_t batch_size) {
  State& s = *state_;
  const TrainerOptions& o = s.options;
  if (o.quiet || !o.writer) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - s.last_progress).count();
  const bool last = b.step + 1 == b.steps;
  if (!(o.progress_bar ? since >= 0.1 || last : o.progress_every > 0 && since >= o.progress_every))
    return;
  s.last_progress = now;
  const double rate = static_cast<double>(b.images) / std::max(b.seconds, 1e-9);
  const double eta =
      static_cast<double>(b.steps - b.step - 1) * static_cast<double>(batch_size) / rate;
  char text[256];
  if (o.progress_bar) {
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(kWidth * (b.step + 1) / b.steps);
    std::string meter(static_cast<size_t>(filled), '=');
    if (filled < kWidth) meter += '>' + std::string(static_cast<size_t>(kWidth - filled - 1), ' ');
    std::snprintf(text, sizeof text,
                  "\r\033[Kepoch %d/%lld [%s] %lld/%lld  loss %.4f  acc %.2f%%  %.0f images/s  "
                  "ETA %s",
                  b.epoch, static_cast<long long>(epochs), meter.c_str(),
                  static_cast<long long>(b.step + 1), static_cast<long long>(b.steps),
                  b.running_loss, 100 * b.running_acc, rate, clock_text(eta).c_str());
    s.bar_drawn = true;
  } else {
    std::snprintf(text, sizeof text,
                  "epoch %d/%lld: batch %lld/%lld  loss %.4f  acc %.2f%%  %.0f images/s  ETA %s\n",
                  b.epoch, static_cast<long long>(epochs), static_cast<long long>(b.step + 1),
                  static_cast<long long>(b.steps), b.running_loss, 100 * b.running_acc, rate,
                  clock_text(eta).c_str());
  }
  s.err << text << std::flush;
}

void TrainerOutput::epoch(const EpochStats& e, int64_t epochs, bool has_validation,
                          Model<float>& model) {
  State& s = *state_;
  s.clear_bar();
  s.last_line = s.options.format == TrainerOptions::Format::Json
                    ? epoch_json(e, has_validation)
                    : epoch_text(e, epochs, has_validation);
  if (!s.options.quiet) s.out << s.last_line << std::endl;
  s.log.write(e, has_validation);
  if (s.writes_report()) {
    s.report.epochs.push_back({.epoch = e.epoch,
                               .learning_rate = e.learning_rate,
                               .train_loss = e.train_loss,
                               .train_acc = e.train_acc,
                               .test_loss = e.test_loss,
                               .test_acc = e.test_acc,
                               .has_validation = has_validation,
                               .val_loss = e.val_loss,
                               .val_acc = e.val_acc,
                               .test_mae = e.test_regression.mean_mae,
                               .val_mae = e.val_regression.mean_mae,
                               .test_r2 = e.test_regression.mean_r2,
                               .val_r2 = e.val_regression.mean_r2,
                               .seconds = e.seconds,
                               .grad_norms = e.grad_norms});
    if (s.report.regression && s.test)
      s.report.predictions = regression_view(model, *s.test, s.reconstruct);
    write_report(s.options.report, s.report, model, s.report_sample);
  }
}

void TrainerOutput::checkpoint(const std::string& path, const Model<float>& model,
                               const Optimizer<float>& optimizer, const TrainingState& state) {
  if (state_->options.writer) save_checkpoint(path, model, &optimizer, state);
}

void TrainerOutput::finish() {
  State& s = *state_;
  s.clear_bar();
  if (s.options.quiet && !s.last_line.empty()) s.out << s.last_line << std::endl;
}

ConfusionMatrix* TrainerOutput::report_confusion() {
  return state_->writes_report() && !state_->report_sample.empty() ? &state_->report.confusion
                                                                   : nullptr;
}

// --- Trainer ----------------------------------------------------------------------------------

Trainer::Trainer(Model<float>& model, Optimizer<float>& optimizer, Loss<float>& loss,
                 const Dataset& train, const Dataset* test, TrainerOptions options)
    : model_(model),
      optimizer_(optimizer),
      loss_(loss),
      train_(train),
      test_(test),
      options_(std::move(options)),
      regression_(resolve_target(options_.fit.target, train) != Target::Labels),
      best_val_acc_(options_.best_val_acc),
      best_val_monitored_(options_.best_val_monitored),
      best_monitored_(options_.early_stop.monitor == EarlyStopping::Monitor::ValAcc ? -HUGE_VAL
                                                                                    : HUGE_VAL) {
  const TrainerOptions& o = options_;
  CONVNET_CHECK(regression_ || o.early_stop.monitor != EarlyStopping::Monitor::ValMae,
                "val_mae is a regression figure: a classifier monitors val_loss or val_acc");
  CONVNET_CHECK(!regression_ || o.early_stop.monitor != EarlyStopping::Monitor::ValAcc,
                "val_acc is a classification figure: a regression (target ",
                target_name(resolve_target(o.fit.target, train)),
                ") monitors val_loss or val_mae");
  const bool has_validation = o.fit.validation && o.fit.validation->size() > 0;
  CONVNET_CHECK(o.early_stop.patience >= 0 && o.early_stop.min_delta >= 0,
                "early stopping: patience and min_delta must be >= 0");
  CONVNET_CHECK(o.early_stop.patience == 0 || has_validation,
                "early stopping needs a validation set (it is decided on validation data, never "
                "on the test set)");
  CONVNET_CHECK(o.save_best.empty() || has_validation,
                "save_best needs a validation set (the best model is chosen on validation data, "
                "never on the test set)");
  CONVNET_CHECK(o.save_best.empty() || o.save_best != o.save, "save_best must differ from save (",
                o.save, ")");
  CONVNET_CHECK(o.report.empty() || test,
                "the report needs a test set (its confusion matrix and the sample it draws)");
  CONVNET_CHECK(o.save_every >= 0, "save_every must be >= 0, got ", o.save_every);
  CONVNET_CHECK(o.save_every == 0 || !o.save.empty(), "save_every needs a path to save to");
  if (o.writer) {
    if (!o.save.empty()) check_output_file(o.save, "save");
    if (!o.save_best.empty()) check_output_file(o.save_best, "save_best");
    if (!o.log.empty()) check_output_file(o.log, "log");
  }
  output_ = std::make_unique<TrainerOutput>(options_, train_, test_);
}

Trainer::~Trainer() = default;

TrainingState Trainer::state(int epoch, int64_t step) const {
  TrainingState state{.epoch = epoch,
                      .step = step,
                      .seed = options_.fit.seed,
                      .extra = options_.recipe,
                      .input = options_.input};
  if (!options_.save_best.empty()) {
    char best[32];
    std::snprintf(best, sizeof best, "%.17g", regression_ ? best_val_monitored_ : best_val_acc_);
    state.extra[regression_ ? std::string("best_") + monitor_name(options_.early_stop.monitor)
                            : std::string("best_val_acc")] = best;
  }
  return state;
}

void Trainer::save(const std::string& path, int epoch, int64_t step) {
  output_->checkpoint(path, model_, optimizer_, state(epoch, step));
}

bool Trainer::on_epoch_end(const EpochStats& s) {
  const TrainerOptions& o = options_;
  const bool has_validation = o.fit.validation != nullptr;
  output_->epoch(s, o.fit.epochs, has_validation, model_);
  if (o.fit.communicator && o.fit.communicator->size() > 1 && s.seconds > 0) {
    char note[192];
    std::snprintf(note, sizeof note,
                  "epoch %d: %d ranks; summing gradients took %.3f s, of which the steps waited "
                  "%.3f s (%.1f%% of the training time)",
                  s.epoch, o.fit.communicator->size(), s.reduce_seconds, s.reduce_waited_seconds,
                  100 * s.reduce_waited_seconds / s.seconds);
    output_->info() << note << std::endl;
  }
  const bool by_mae = o.early_stop.monitor == EarlyStopping::Monitor::ValMae;
  const double monitored = by_mae ? s.val_regression.mean_mae : s.val_loss;
  // Strictly better only: on a tie the earlier (less trained) model stays.
  if (!o.save_best.empty() && regression_ && monitored < best_val_monitored_) {
    best_val_monitored_ = monitored;
    save(o.save_best, s.epoch);
    char note[96];
    std::snprintf(note, sizeof note, "best %s %.6g at epoch %d: saved ",
                  monitor_name(o.early_stop.monitor), monitored, s.epoch);
    output_->info() << note << o.save_best << std::endl;
  } else if (!o.save_best.empty() && !regression_ && s.val_acc > best_val_acc_) {
    best_val_acc_ = s.val_acc;
    save(o.save_best, s.epoch);
    char note[96];
    std::snprintf(note, sizeof note, "best val acc %.2f%% at epoch %d: saved ", 100 * s.val_acc,
                  s.epoch);
    output_->info() << note << o.save_best << std::endl;
  }
  if (o.save_every > 0 && s.epoch % o.save_every == 0 && s.epoch < o.fit.epochs)
    save(o.save, s.epoch);
  if (o.early_stop.patience > 0) {
    const bool loss = o.early_stop.monitor != EarlyStopping::Monitor::ValAcc;  // lower is better
    const double value = o.early_stop.monitor == EarlyStopping::Monitor::ValAcc ? s.val_acc
                         : by_mae ? s.val_regression.mean_mae
                                  : s.val_loss;
    const bool improved = loss ? value < best_monitored_ - o.early_stop.min_delta
                               : value > best_monitored_ + o.early_stop.min_delta;
    if (improved) {
      best_monitored_ = value;
      epochs_without_improvement_ = 0;
    } else if (++epochs_without_improvement_ >= o.early_stop.patience) {
      output_->info() << "early stop after epoch " << s.epoch << ": "
                      << monitor_name(o.early_stop.monitor) << " has not improved for "
                      << o.early_stop.patience << " epochs" << std::endl;
      return false;
    }
  }
  return true;
}

TrainerResult Trainer::run() {
  CONVNET_CHECK(!ran_, "Trainer::run: a Trainer runs once (continue with a new one)");
  ran_ = true;
  TrainerOptions& o = options_;
  o.fit.test_confusion = output_->report_confusion();
  if (o.fit.communicator) {  // the settings that change the math, alike on every rank
    std::string recipe;
    for (const auto& [name, value] : o.recipe) recipe += name + "=" + value + "\n";
    const Agreement items[] = {{"training recipe (" + std::to_string(o.recipe.size()) +
                                    " settings a checkpoint records)",
                                fingerprint_of(recipe)}};
    require_agreement(*o.fit.communicator, items);
  }
  TrainerResult result;
  const char* stop_reason = nullptr;
  auto stop = [&] {
    if (o.stop_requested && !stop_reason) stop_reason = o.stop_requested();
    return stop_reason != nullptr;
  };
  try {
    result.fit = fit(model_, train_, test_, loss_, optimizer_, o.fit,
                     {.on_batch_end =
                          [&](const BatchStats& b) {
                            output_->progress(b, o.fit.epochs, o.fit.batch);
                            return !stop();
                          },
                      .on_epoch_end =
                          [&](const EpochStats& s) {
                            if (!on_epoch_end(s)) {
                              result.end = TrainerResult::End::EarlyStopped;
                              return false;
                            }
                            return !stop();
                          }});
  } catch (const Diverged& e) {
    return diverged(e, std::move(result.fit));
  } catch (const BadData& e) {
    return bad_data(e, std::move(result.fit));
  }
  // In a data-parallel run a stop requested of one process stops them all (fit's callbacks
  // agree), and is this process's stop too.
  if (result.fit.stopped && result.end != TrainerResult::End::EarlyStopped && !stop_reason)
    stop_reason = "a stop request to another process of the job";
  output_->finish();
  const std::string& stop_path = o.save.empty() ? o.stop_save : o.save;
  if (stop_reason && result.fit.stopped && result.end != TrainerResult::End::EarlyStopped) {
    // Stopped after a batch or an epoch: keep the state reached, and say how to go on.
    result.end = TrainerResult::End::Stopped;
    result.stop_reason = stop_reason;
    save(stop_path, result.fit.completed_epochs, result.fit.completed_steps);
    result.saved = stop_path;
    std::ostream& err = output_->err();
    err << "interrupted by " << stop_reason << " after epoch " << result.fit.completed_epochs;
    if (result.fit.completed_steps > 0)
      err << " and " << result.fit.completed_steps << " batches of epoch "
          << result.fit.completed_epochs + 1;
    err << ": saved " << stop_path;
    if (o.resume_hint) err << " (continue with: " << o.resume_hint(stop_path, std::nullopt) << ")";
    err << std::endl;
    return result;
  }
  if (!o.save.empty()) {
    save(o.save, result.fit.completed_epochs);
    result.saved = o.save;
    output_->info() << "saved " << o.save << "\n";
  }
  return result;
}

TrainerResult Trainer::bad_data(const BadData& e, FitResult fit_result) {
  // The batch was never computed: the model is the state after the batch before. Keep it, as a
  // stop would, so that the run goes on once the file is mended or removed.
  TrainerResult result{.end = TrainerResult::End::BadData,
                       .fit = std::move(fit_result),
                       .saved = {},
                       .stop_reason = nullptr,
                       .error = e.what()};
  result.fit.completed_epochs = e.completed_epochs;
  result.fit.completed_steps = e.completed_steps;
  std::ostream& err = output_->err();
  err << options_.error_prefix << e.what() << std::endl;
  const std::string path = options_.save.empty() ? options_.stop_save : options_.save;
  save(path, e.completed_epochs, e.completed_steps);
  result.saved = path;
  err << "saved the state before that batch, after epoch " << e.completed_epochs;
  if (e.completed_steps > 0)
    err << " and " << e.completed_steps << " batches of epoch " << e.completed_epochs + 1;
  err << ", to " << path;
  if (options_.resume_hint)
    err << " (continue with: " << options_.resume_hint(path, std::nullopt) << ")";
  err << std::endl;
  return result;
}

TrainerResult Trainer::diverged(const Diverged& e, FitResult fit_result) {
  // The step failed before its update: the model and optimizer are the last good state. Keep
  // it, where a stop would, and say how to go on at a lower rate.
  TrainerResult result{.end = TrainerResult::End::Diverged,
                       .fit = std::move(fit_result),
                       .saved = {},
                       .stop_reason = nullptr,
                       .error = e.what()};
  result.fit.completed_epochs = e.completed_epochs;
  result.fit.completed_steps = e.completed_steps;
  std::ostream& err = output_->err();
  err << options_.error_prefix << e.what() << std::endl;
  // An update can make weights infinite with a finite loss; the next step then fails. Such
  // weights are no good state: the file already there is worth more.
  for (const auto& p : model_.params())
    for (const float v : p.value->span())
      if (!std::isfinite(v)) {
        err << "nothing saved: " << p.name << " already holds " << v
            << " (an earlier update overflowed); the last checkpoint is left as it was"
            << std::endl;
        return result;
      }
  const std::string path = options_.save.empty() ? options_.stop_save : options_.save;
  save(path, e.completed_epochs, e.completed_steps);
  result.saved = path;
  err << "saved the last good state, after epoch " << e.completed_epochs;
  if (e.completed_steps > 0)
    err << " and " << e.completed_steps << " batches of epoch " << e.completed_epochs + 1;
  err << ", to " << path;
  if (options_.resume_hint)
    err << " (continue at a lower rate with: "
        << options_.resume_hint(path, optimizer_.learning_rate() / 10) << ")";
  err << std::endl;
  return result;
}

}  // namespace convnet
