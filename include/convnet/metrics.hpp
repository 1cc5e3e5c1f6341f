// Classification metrics: a confusion matrix and what is read off it (accuracy, per-class
// precision, recall and F1, their macro averages), top-k accuracy, and a full evaluation pass
// that fills them. Regression metrics: MSE, MAE and R² per output and their means.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "convnet/data.hpp"
#include "convnet/loss.hpp"
#include "convnet/model.hpp"

namespace convnet {

// counts[label][predicted]: rows are the true classes, columns the predictions (as
// sklearn.metrics.confusion_matrix). For class c, with TP = counts[c][c]:
//   precision(c) = TP / (column c's sum)   (0 when nothing was predicted as c)
//   recall(c)    = TP / (row c's sum)      (0 when no sample has label c)
//   f1(c)        = 2·precision·recall / (precision + recall)   (0 when both are 0)
// the zero conventions being sklearn's zero_division=0.
class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int64_t classes = 0);
  int64_t classes() const { return classes_; }
  void add(int64_t label, int64_t predicted, int64_t times = 1);
  // One sample per row of N x K outputs: its arg-max (the lowest index among ties) against its
  // label.
  void add(const Tensor<float>& outputs, std::span<const int32_t> labels);

  int64_t count(int64_t label, int64_t predicted) const;
  int64_t total() const { return total_; }
  int64_t row_sum(int64_t label) const;         // samples with this label (support)
  int64_t column_sum(int64_t predicted) const;  // samples predicted as this class
  double accuracy() const;
  double precision(int64_t c) const;
  double recall(int64_t c) const;
  double f1(int64_t c) const;
  // Unweighted means over the classes.
  double macro_precision() const;
  double macro_recall() const;
  double macro_f1() const;

  // The matrix as aligned text, rows labelled "true <name>"; names as many as classes (or empty
  // for the indices).
  std::string table(const std::vector<std::string>& names) const;

 private:
  int64_t classes_ = 0, total_ = 0;
  std::vector<int64_t> counts_;  // classes x classes, row-major
};

// Samples whose label is among the k largest outputs of their row (ties broken toward the lower
// index, as in the arg-max).
int64_t count_top_k(const Tensor<float>& outputs, std::span<const int32_t> labels, int64_t k);

// Regression figures, in the targets' own units (a normalisation undone), per output and their
// unweighted means over the outputs:
//   mse = Σ (p - t)² / n,  mae = Σ |p - t| / n,  r2 = 1 - Σ (p - t)² / Σ (t - t̄)²
// (sklearn's r2_score; 0 where the targets are constant, as sklearn's force_finite).
struct RegressionStats {
  std::vector<double> mse, mae, r2;  // per output
  double mean_mse = 0, mean_mae = 0, mean_r2 = 0;
  bool empty() const { return mse.empty(); }
};

// Accumulates predictions against targets, sample by sample, in double.
class RegressionMetrics {
 public:
  RegressionMetrics() = default;
  // `outputs` figures per sample. Predictions and targets are added in normalised units and
  // mapped back by v·stddev[k] + mean[k] when mean and stddev are given (one per output).
  // pooled: every value of a sample counts toward one figure (a reconstruction: the pixels of
  // an image are not separate outputs), so outputs() is 1.
  RegressionMetrics(int64_t outputs, std::vector<float> mean, std::vector<float> stddev,
                    bool pooled = false);
  int64_t outputs() const { return pooled_ ? 1 : outputs_; }
  // `count` samples of outputs values each, row-major.
  void add(const float* predicted, const float* target, int64_t count);
  // The sums, 5 per figure (Σe², Σ|e|, Σt, Σt², n), to add another's in a fixed order (a
  // data-parallel evaluation's batches).
  std::span<const double> sums() const { return sums_; }
  void add_sums(std::span<const double> sums);
  void reset();
  RegressionStats stats() const;

 private:
  int64_t outputs_ = 0;
  std::vector<float> mean_, stddev_;
  bool pooled_ = false;
  std::vector<double> sums_;
};

struct RegressionReport {
  double loss = 0;  // mean per sample
  RegressionStats stats{};
  // The samples farthest from their targets, worst first: the mean absolute error over a
  // sample's values (in the targets' units), with its prediction and target for real-valued
  // targets (empty for a reconstruction, whose values are an image).
  struct Example {
    int64_t index = 0;
    double error = 0;
    std::vector<float> predicted{}, target{};
  };
  std::vector<Example> worst{};
};

// One eval-mode pass over `data` in batches (at most the model's built batch): the loss, the
// regression figures, and the `worst` samples farthest from their targets. The targets are the
// data's real values (normalised as the data says, the figures mapped back), or the input
// itself when `reconstruct`.
RegressionReport evaluate_regression(Model<float>& model, const Dataset& data, Loss<float>& loss,
                                     bool reconstruct, int64_t worst = 5, int64_t batch = 256);

struct ClassificationReport {
  double loss = 0;  // mean per sample
  int64_t top_k = 0;
  double top_k_accuracy = 0;
  ConfusionMatrix confusion;
};

// One eval-mode pass over `data` in batches (at most the model's built batch), filling the loss,
// the confusion matrix and the top-k accuracy.
ClassificationReport evaluate_classifier(Model<float>& model, const Dataset& data,
                                         Loss<float>& loss, int64_t top_k = 5,
                                         int64_t batch = 256);

}  // namespace convnet
