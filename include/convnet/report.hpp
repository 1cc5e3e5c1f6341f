// Pictures of training: a self-contained HTML report (write_report) and the images behind it
// (filters and feature maps, also written as PNG files by `convnet visualize`).
//
// The report is one HTML file with no external resources: charts are SVG drawn here, images are
// PNG (stb_image_write) inlined as base64 data URIs, and there is no JavaScript. It shows the
// loss, accuracy and learning-rate curves, the gradient norm of every layer per epoch (log scale:
// vanishing or exploding gradients show as lines sinking or rising by orders of magnitude), the
// test confusion matrix as a heat map, the first convolution's filters, the feature maps of a
// sample image through every convolution, the model summary and the run's configuration. A
// regression run shows MAE and R² curves, predicted-against-true scatter plots and a histogram
// of the residuals instead of accuracy and the confusion matrix, and an autoencoder's input and
// reconstruction pairs.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "convnet/data.hpp"
#include "convnet/image.hpp"
#include "convnet/metrics.hpp"
#include "convnet/model.hpp"

namespace convnet {

struct ReportEpoch {
  int epoch = 0;
  double learning_rate = 0;
  double train_loss = 0, train_acc = 0, test_loss = 0, test_acc = 0;
  bool has_validation = false;
  double val_loss = 0, val_acc = 0;
  double test_mae = 0, val_mae = 0, test_r2 = 0, val_r2 = 0;  // regression runs
  double seconds = 0;
  std::vector<double> grad_norms;  // per model.params() entry (EpochStats::grad_norms)
};

// A regression or reconstruction run's test predictions, in the targets' units (what the
// report draws instead of a confusion matrix).
struct RegressionView {
  std::vector<std::string> names;  // one per output ("pixels" for a reconstruction)
  // Per output, (true, predicted) of the first test samples.
  std::vector<std::vector<std::pair<float, float>>> points;
  // A reconstruction's first test images and what the model made of them.
  std::vector<std::pair<Image, Image>> reconstructions;
};
// Runs the model (evaluation mode) on the first `samples` of `test` and collects what
// RegressionView holds: targets as the data's (normalisation undone), or the input itself when
// `reconstruct` (then `pairs` images are kept).
RegressionView regression_view(Model<float>& model, const Dataset& test, bool reconstruct,
                               int64_t samples = 1000, int64_t pairs = 8);

struct ReportData {
  std::string title;
  std::vector<std::pair<std::string, std::string>> config;  // every setting of the run
  std::vector<ReportEpoch> epochs;
  std::vector<std::string> class_names;  // empty: class indices
  ConfusionMatrix confusion;             // on the test set, after the last epoch
  bool regression = false;  // true: curves of MAE, and `predictions` instead of `confusion`
  RegressionView predictions{};
};

// A picture and what it shows ("filters of layer0", "layer3 conv2d ... output").
struct NamedImage {
  std::string name;
  Image image;
};

// The first convolution's filters as one grid image: each filter scaled to 0-255 on its own
// (RGB when it reads 3 channels, else its first input channel in grey), enlarged 8 times.
// Throws convnet::Error when the model has no convolution.
NamedImage filter_grid(Model<float>& model);
// Runs `sample` (1 x C x H x W, as the model takes it) through the model in evaluation mode and
// returns every convolution's output as a grid of its channels, each scaled to 0-255 on its own.
std::vector<NamedImage> feature_maps(Model<float>& model, const Tensor<float>& sample);

// The report as HTML text, and written atomically to dir/index.html (dir is created).
std::string report_html(const ReportData& data, Model<float>& model, const Tensor<float>& sample);
void write_report(const std::string& dir, const ReportData& data, Model<float>& model,
                  const Tensor<float>& sample);

// RFC 4648 base64, and text escaped for HTML (& < > " ').
std::string base64(std::string_view bytes);
std::string html_escape(std::string_view text);

}  // namespace convnet
