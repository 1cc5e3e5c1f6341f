// Classification metrics, read off a confusion matrix.
#include "convnet/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "convnet/error.hpp"

namespace convnet {

ConfusionMatrix::ConfusionMatrix(int64_t classes)
    : classes_(classes), counts_(static_cast<size_t>(classes * classes), 0) {
  CONVNET_CHECK(classes >= 0, "confusion matrix: classes must be >= 0, got ", classes);
}

void ConfusionMatrix::add(int64_t label, int64_t predicted, int64_t times) {
  CONVNET_CHECK(label >= 0 && label < classes_ && predicted >= 0 && predicted < classes_,
                "confusion matrix: label ", label, " / prediction ", predicted, " outside [0, ",
                classes_, ")");
  CONVNET_CHECK(times >= 0, "confusion matrix: a count of ", times, " samples");
  counts_[static_cast<size_t>(label * classes_ + predicted)] += times;
  total_ += times;
}

void ConfusionMatrix::add(const Tensor<float>& outputs, std::span<const int32_t> labels) {
  CONVNET_CHECK(outputs.shape().rank() == 2 && outputs.dim(1) == classes_ &&
                    outputs.dim(0) == static_cast<int64_t>(labels.size()),
                "confusion matrix: outputs ", outputs.shape().str(), " for ", labels.size(),
                " labels of ", classes_, " classes");
  for (size_t i = 0; i < labels.size(); ++i) {
    const float* row = outputs.data() + static_cast<int64_t>(i) * classes_;
    add(labels[i], std::max_element(row, row + classes_) - row);
  }
}

int64_t ConfusionMatrix::count(int64_t label, int64_t predicted) const {
  CONVNET_CHECK(label >= 0 && label < classes_ && predicted >= 0 && predicted < classes_,
                "confusion matrix: cell (", label, ", ", predicted, ") outside ", classes_, "x",
                classes_);
  return counts_[static_cast<size_t>(label * classes_ + predicted)];
}

int64_t ConfusionMatrix::row_sum(int64_t label) const {
  int64_t sum = 0;
  for (int64_t p = 0; p < classes_; ++p) sum += count(label, p);
  return sum;
}

int64_t ConfusionMatrix::column_sum(int64_t predicted) const {
  int64_t sum = 0;
  for (int64_t l = 0; l < classes_; ++l) sum += count(l, predicted);
  return sum;
}

namespace {
double ratio(int64_t num, int64_t den) {
  return den == 0 ? 0.0 : static_cast<double>(num) / static_cast<double>(den);
}
}  // namespace

double ConfusionMatrix::accuracy() const {
  int64_t diagonal = 0;
  for (int64_t c = 0; c < classes_; ++c) diagonal += count(c, c);
  return ratio(diagonal, total_);
}

double ConfusionMatrix::precision(int64_t c) const { return ratio(count(c, c), column_sum(c)); }
double ConfusionMatrix::recall(int64_t c) const { return ratio(count(c, c), row_sum(c)); }
double ConfusionMatrix::f1(int64_t c) const {
  const double p = precision(c), r = recall(c);
  return p + r == 0 ? 0.0 : 2 * p * r / (p + r);
}

namespace {
template <class F>
double class_mean(int64_t classes, F&& per_class) {
  if (classes == 0) return 0;
  double sum = 0;
  for (int64_t c = 0; c < classes; ++c) sum += per_class(c);
  return sum / static_cast<double>(classes);
}
}  // namespace

double ConfusionMatrix::macro_precision() const {
  return class_mean(classes_, [&](int64_t c) { return precision(c); });
}
double ConfusionMatrix::macro_recall() const {
  return class_mean(classes_, [&](int64_t c) { return recall(c); });
}
double ConfusionMatrix::macro_f1() const {
  return class_mean(classes_, [&](int64_t c) { return f1(c); });
}

std::string ConfusionMatrix::table(const std::vector<std::string>& names) const {
  auto row_label = [&](int64_t c) {
    return std::to_string(c) + " " + (names.empty() ? "" : names[static_cast<size_t>(c)]);
  };
  const std::string corner = "true \\ predicted";
  size_t left = corner.size(), cell = 4;
  for (int64_t c = 0; c < classes_; ++c) {
    left = std::max(left, row_label(c).size());
    cell = std::max(cell, std::to_string(column_sum(c)).size());
  }
  auto pad = [](const std::string& s, size_t width) {  // right-aligned in width + 1
    return std::string(width + 1 - std::min(width, s.size()), ' ') + s;
  };
  std::string out = corner + std::string(left - corner.size(), ' ');
  for (int64_t c = 0; c < classes_; ++c) out += pad(std::to_string(c), cell);
  out += "\n";
  for (int64_t l = 0; l < classes_; ++l) {
    const std::string label = row_label(l);
    out += label + std::string(left - label.size(), ' ');
    for (int64_t p = 0; p < classes_; ++p) out += pad(std::to_string(count(l, p)), cell);
    out += "\n";
  }
  return out;
}

int64_t count_top_k(const Tensor<float>& outputs, std::span<const int32_t> labels, int64_t k) {
  CONVNET_CHECK(outputs.shape().rank() == 2 && outputs.dim(0) == static_cast<int64_t>(labels.size()),
                "top-k: outputs ", outputs.shape().str(), " for ", labels.size(), " labels");
  CONVNET_CHECK(k >= 1, "top-k: k must be at least 1, got ", k);
  const int64_t classes = outputs.dim(1);
  int64_t hits = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const float* row = outputs.data() + static_cast<int64_t>(i) * classes;
    const int64_t label = labels[i];
    CONVNET_CHECK(label >= 0 && label < classes, "top-k: label ", label, " outside [0, ", classes,
                  ")");
    // The label's rank: outputs above it, or equal to it at a lower index, come first.
    int64_t ahead = 0;
    for (int64_t j = 0; j < classes; ++j)
      ahead += row[j] > row[label] || (row[j] == row[label] && j < label);
    hits += ahead < k;
  }
  return hits;
}

ClassificationReport evaluate_classifier(Model<float>& model, const Dataset& data,
                                         Loss<float>& loss, int64_t top_k, int64_t batch) {
  CONVNET_CHECK(model.input_shape().rank() == 4 &&
                    model.input_shape().with_batch(1) == data.shape().with_batch(1),
                "evaluation: the data's samples are ", data.sample_shape().str(),
                " but the model takes ", model.input_shape().str());
  CONVNET_CHECK(model.output_shape().rank() == 2 && model.output_shape()[1] == data.classes(),
                "evaluation: the data has ", data.classes(), " classes but the model outputs ",
                model.output_shape().str());
  CONVNET_CHECK(data.size() > 0, "evaluation: the data set is empty");
  batch = std::clamp<int64_t>(batch, 1, model.input_shape()[0]);
  ClassificationReport report{0, top_k, 0, ConfusionMatrix(data.classes())};
  std::vector<int64_t> order(static_cast<size_t>(data.size()));
  std::iota(order.begin(), order.end(), 0);
  Tensor<float> x(data.shape().with_batch(batch));
  std::vector<int32_t> labels(static_cast<size_t>(batch));
  double total_loss = 0;
  int64_t top_hits = 0;
  for (int64_t first = 0; first < data.size(); first += batch) {
    const int64_t count = std::min(batch, data.size() - first);
    x.resize(data.shape().with_batch(count));
    labels.resize(static_cast<size_t>(count));
    data.gather(std::span(order).subspan(static_cast<size_t>(first), static_cast<size_t>(count)),
                x.data(), labels.data());
    const Tensor<float>& out = model.forward(x, Mode::Eval);
    total_loss += static_cast<double>(loss.compute(out, {.labels = labels}, nullptr)) *
                  static_cast<double>(count);
    report.confusion.add(out, labels);
    top_hits += count_top_k(out, labels, top_k);
  }
  report.loss = total_loss / static_cast<double>(data.size());
  report.top_k_accuracy = static_cast<double>(top_hits) / static_cast<double>(data.size());
  return report;
}

RegressionReport evaluate_regression(Model<float>& model, const Dataset& data, Loss<float>& loss,
                                     bool reconstruct, int64_t worst, int64_t batch) {
  const Shape& in = model.input_shape();
  const Shape& out_shape = model.output_shape();
  CONVNET_CHECK(in.rank() == 4 && in.with_batch(1) == data.shape().with_batch(1),
                "evaluation: the data's samples are ", data.sample_shape().str(),
                " but the model takes ", in.str());
  CONVNET_CHECK(data.size() > 0, "evaluation: the data set is empty");
  const int64_t per_sample = out_shape.numel() / std::max<int64_t>(out_shape[0], 1);
  if (reconstruct)
    CONVNET_CHECK(out_shape.with_batch(1) == in.with_batch(1), "evaluation: a reconstruction ",
                  "needs an output of the input's shape ", data.sample_shape().str(),
                  ", but the model outputs ", out_shape.str());
  else
    CONVNET_CHECK(data.has_targets() && per_sample == data.target_size(), "evaluation: the data has ",
                  data.target_size(), " targets per sample but the model outputs ",
                  out_shape.str());
  batch = std::clamp<int64_t>(batch, 1, in[0]);
  RegressionMetrics metrics =
      reconstruct ? RegressionMetrics(per_sample, {}, {}, true)
                  : RegressionMetrics(per_sample, data.target_mean(), data.target_stddev());
  RegressionReport report;
  std::vector<int64_t> order(static_cast<size_t>(data.size()));
  std::iota(order.begin(), order.end(), 0);
  Tensor<float> x(data.shape().with_batch(batch)), y(out_shape.with_batch(batch));
  std::vector<int32_t> labels(static_cast<size_t>(batch));
  const std::vector<float>&mean = data.target_mean(), &stddev = data.target_stddev();
  auto units = [&](float v, int64_t k) {
    return reconstruct || mean.empty()
               ? v
               : v * stddev[static_cast<size_t>(k)] + mean[static_cast<size_t>(k)];
  };
  // The worst so far, worst first (among equal errors the earlier sample), kept during the one
  // pass with their predictions: no sample runs twice.
  const auto keep = static_cast<size_t>(std::clamp<int64_t>(worst, 0, data.size()));
  auto worse = [](const RegressionReport::Example& a, const RegressionReport::Example& b) {
    return a.error != b.error ? a.error > b.error : a.index < b.index;
  };
  double total_loss = 0;
  for (int64_t first = 0; first < data.size(); first += batch) {
    const int64_t count = std::min(batch, data.size() - first);
    x.resize(data.shape().with_batch(count));
    y.resize(out_shape.with_batch(count));
    labels.resize(static_cast<size_t>(count));
    data.gather(std::span(order).subspan(static_cast<size_t>(first), static_cast<size_t>(count)),
                x.data(), labels.data(), reconstruct ? nullptr : y.data());
    if (reconstruct) std::copy_n(x.data(), x.numel(), y.data());
    const Tensor<float>& out = model.forward(x, Mode::Eval);
    total_loss += static_cast<double>(loss.compute(out, {.values = &y}, nullptr)) *
                  static_cast<double>(count);
    metrics.add(out.data(), y.data(), count);
    for (int64_t n = 0; n < count && keep > 0; ++n) {
      const float* p = out.data() + n * per_sample;
      const float* t = y.data() + n * per_sample;
      double error = 0;
      for (int64_t k = 0; k < per_sample; ++k)
        error += std::abs(static_cast<double>(units(p[k], k)) - units(t[k], k));
      RegressionReport::Example e{.index = first + n,
                                  .error = error / static_cast<double>(per_sample)};
      if (report.worst.size() == keep && !worse(e, report.worst.back())) continue;
      if (!reconstruct) {
        for (int64_t k = 0; k < per_sample; ++k) e.predicted.push_back(units(p[k], k));
        const std::span<const float> stored = data.targets_of(e.index);  // as the data has it
        e.target.assign(stored.begin(), stored.end());
      }
      report.worst.insert(std::upper_bound(report.worst.begin(), report.worst.end(), e, worse),
                          std::move(e));
      if (report.worst.size() > keep) report.worst.pop_back();
    }
  }
  report.loss = total_loss / static_cast<double>(data.size());
  report.stats = metrics.stats();
  return report;
}

RegressionMetrics::RegressionMetrics(int64_t outputs, std::vector<float> mean,
                                     std::vector<float> stddev, bool pooled)
    : outputs_(outputs), mean_(std::move(mean)), stddev_(std::move(stddev)), pooled_(pooled) {
  CONVNET_CHECK(outputs >= 1, "regression metrics: need at least one output, got ", outputs);
  CONVNET_CHECK((mean_.empty() && stddev_.empty()) ||
                    (static_cast<int64_t>(mean_.size()) == outputs &&
                     static_cast<int64_t>(stddev_.size()) == outputs),
                "regression metrics: ", mean_.size(), " means and ", stddev_.size(),
                " stddevs for ", outputs, " outputs");
  reset();
}

void RegressionMetrics::reset() { sums_.assign(static_cast<size_t>(5 * this->outputs()), 0.0); }

void RegressionMetrics::add(const float* predicted, const float* target, int64_t count) {
  for (int64_t n = 0; n < count; ++n)
    for (int64_t k = 0; k < outputs_; ++k) {
      const int64_t i = n * outputs_ + k;
      double p = predicted[i], t = target[i];
      if (!mean_.empty()) {
        const double m = mean_[static_cast<size_t>(k)], sd = stddev_[static_cast<size_t>(k)];
        p = p * sd + m;
        t = t * sd + m;
      }
      double* s = sums_.data() + 5 * (pooled_ ? 0 : k);
      const double e = p - t;
      s[0] += e * e;
      s[1] += std::abs(e);
      s[2] += t;
      s[3] += t * t;
      s[4] += 1;
    }
}

void RegressionMetrics::add_sums(std::span<const double> sums) {
  CONVNET_CHECK(sums.size() == sums_.size(), "regression metrics: ", sums.size(),
                " sums added to ", sums_.size());
  for (size_t i = 0; i < sums.size(); ++i) sums_[i] += sums[i];
}

RegressionStats RegressionMetrics::stats() const {
  RegressionStats r;
  const int64_t K = outputs();
  for (int64_t k = 0; k < K; ++k) {
    const double* s = sums_.data() + 5 * k;
    const double n = std::max(s[4], 1.0);
    const double total = std::max(0.0, s[3] - s[2] * s[2] / n);  // Σ (t - t̄)²
    r.mse.push_back(s[0] / n);
    r.mae.push_back(s[1] / n);
    r.r2.push_back(total > 0 ? 1.0 - s[0] / total : 0.0);
    r.mean_mse += r.mse.back() / static_cast<double>(K);
    r.mean_mae += r.mae.back() / static_cast<double>(K);
    r.mean_r2 += r.r2.back() / static_cast<double>(K);
  }
  return r;
}

}  // namespace convnet
