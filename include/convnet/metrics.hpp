// Classification metrics: a confusion matrix and what is read off it (accuracy, per-class
// precision, recall and F1, their macro averages), top-k accuracy, and a full evaluation pass
// that fills them.
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
