// The report's pieces: base64 (RFC 4648's test vectors), HTML escaping, the filter and feature-map
// grids' sizes, and a report for a small run that holds every section, escaped.
#include "report/axis.hpp"
#include "support/testing.hpp"

namespace convnet {
namespace {

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = 0; (at = text.find(what, at)) != std::string::npos; at += what.size()) ++n;
  return n;
}

// The <svg> element with this id, from a report page.
std::string chart(const std::string& html, const std::string& id) {
  const size_t begin = html.find("<svg id=\"" + id + "\"");
  if (begin == std::string::npos) return {};
  return html.substr(begin, html.find("</svg>", begin) - begin);
}

// The base64 of the input picture's PNG bytes 24-26 (bit depth, colour type, compression): "CAAA"
// for 8-bit grey, "CAIA" for 8-bit RGB.
std::string input_png_format(const std::string& html) {
  const size_t data = html.find("base64,", html.find("<img alt=\"input\""));
  return data == std::string::npos ? "" : html.substr(data + 7 + 32, 4);
}

TEST(Report, Base64MatchesRfc4648) {
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64("foob"), "Zm9vYg==");
  EXPECT_EQ(base64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64(std::string("\xff\x00\xfe", 3)), "/wD+");
}

TEST(Report, EscapesHtml) {
  EXPECT_EQ(html_escape("<b>T-shirt & \"top\"</b> 'x'"),
            "&lt;b&gt;T-shirt &amp; &quot;top&quot;&lt;/b&gt; &#39;x&#39;");
}

// Axes end on round ticks around the data: the ranges of a 3-epoch lenet run's charts.
TEST(ReportAxis, LinearTicksAreOneTwoOrFiveTimesAPowerOfTen) {
  const report::Axis loss = report::linear_axis(0.9206, 2.362);  // step 1.44 / 5 -> 0.5
  EXPECT_EQ(loss.lo, 0.5);
  EXPECT_EQ(loss.hi, 2.5);
  EXPECT_EQ(loss.ticks, (std::vector<double>{0.5, 1, 1.5, 2, 2.5}));
  const report::Axis accuracy = report::linear_axis(9.783, 63.44);  // 10.7 -> 20
  EXPECT_EQ(accuracy.ticks, (std::vector<double>{0, 20, 40, 60, 80}));
  const report::Axis negative = report::linear_axis(-0.7, 0.3);  // 0.2; 0 is a tick, exactly
  ASSERT_EQ(negative.ticks.size(), 7u);
  EXPECT_NEAR(negative.lo, -0.8, 1e-12);
  EXPECT_EQ(negative.ticks[4], 0.0);
  EXPECT_NEAR(negative.hi, 0.4, 1e-12);
  // A constant (a fixed learning rate) is widened by 10% each way: 0.045 .. 0.055 in steps of
  // 0.002, on ticks 0.044 .. 0.056.
  const report::Axis constant = report::linear_axis(0.05, 0.05);
  ASSERT_EQ(constant.ticks.size(), 7u);
  EXPECT_NEAR(constant.lo, 0.044, 1e-12);
  EXPECT_NEAR(constant.hi, 0.056, 1e-12);
  EXPECT_EQ(report::linear_axis(0, 0).ticks.size(), 5u);  // -0.001 .. 0.001 by 0.0005
}

TEST(ReportAxis, EpochsAreWholeNumbers) {
  EXPECT_EQ(report::integer_axis(1, 3).ticks, (std::vector<double>{1, 2, 3}));
  const report::Axis one = report::integer_axis(1, 1);
  EXPECT_EQ(one.lo, 1);
  EXPECT_EQ(one.hi, 2);
  EXPECT_EQ(report::integer_axis(1, 40).ticks, (std::vector<double>{0, 10, 20, 30, 40}));
  EXPECT_EQ(report::integer_axis(1, 12).ticks, (std::vector<double>{0, 5, 10, 15}));
}

TEST(ReportAxis, LogTicksAreDecades) {
  const report::Axis grads = report::log_axis(0.02086, 1.909);
  EXPECT_EQ(grads.lo, -2);
  EXPECT_EQ(grads.hi, 1);
  EXPECT_EQ(grads.ticks, (std::vector<double>{-2, -1, 0, 1}));
  EXPECT_EQ(report::log_axis(0.2, 0.5).ticks, (std::vector<double>{-1, 0}));  // inside a decade
  EXPECT_EQ(report::log_axis(1, 1).ticks, (std::vector<double>{0, 1}));
  // 12 decades do not fit 7 ticks: every second one, from the lowest.
  EXPECT_EQ(report::log_axis(1e-9, 1e3).ticks, (std::vector<double>{-9, -7, -5, -3, -1, 1, 3}));
  EXPECT_EQ(report::log_axis(1e-9, 1e4).ticks, (std::vector<double>{-9, -6, -3, 0, 3, 6}));
}

std::unique_ptr<Model<float>> small_cnn() {
  std::unique_ptr<Model<float>> m = parse_model_spec<float>(
      "model sequential\nlayer conv2d out_channels=6 kernel=5 pad=2\nlayer relu\n"
      "layer maxpool2d kernel=2\nlayer conv2d out_channels=4 kernel=3\nlayer relu\n"
      "layer flatten\nlayer linear out_features=3\n");
  m->build(Shape{4, 1, 12, 12}, 1);
  return m;
}

TEST(Report, FilterAndFeatureMapGrids) {
  std::unique_ptr<Model<float>> m = small_cnn();
  // 6 filters of 5x5 in a 3x2 grid, each enlarged 8 times (40 / 5), 2 pixels apart.
  const NamedImage f = filter_grid(*m);
  EXPECT_EQ(f.image.channels, 1);
  EXPECT_EQ(f.image.width, 3 * 40 + 2 * 2);
  EXPECT_EQ(f.image.height, 2 * 40 + 2);
  EXPECT_EQ(f.name, "filters of layer0 (conv2d 5x5 ->6 pad 2x2)");
  // Each filter spans 0..255 (scaled to its own range).
  uint8_t lo = 255, hi = 0;
  for (int64_t y = 0; y < 40; ++y)
    for (int64_t x = 0; x < 40; ++x) {
      lo = std::min(lo, f.image.pixels[static_cast<size_t>(y * f.image.width + x)]);
      hi = std::max(hi, f.image.pixels[static_cast<size_t>(y * f.image.width + x)]);
    }
  EXPECT_EQ(lo, 0);
  EXPECT_EQ(hi, 255);

  Rng rng(1);
  const std::vector<NamedImage> maps =
      feature_maps(*m, testing::random_normal<float>(Shape{1, 1, 12, 12}, rng));
  ASSERT_EQ(maps.size(), 2u);  // one per convolution
  EXPECT_EQ(maps[0].name, "layer0 conv2d 5x5 ->6 pad 2x2: 6 maps of 12x12");
  EXPECT_EQ(maps[0].image.width, 3 * 48 + 2 * 2);  // 12x12 maps enlarged 4 times (56 / 12)
  EXPECT_EQ(maps[1].name, "layer3 conv2d 3x3 ->4: 4 maps of 4x4");
  EXPECT_EQ(maps[1].image.height, 2 * 56 + 2);

  std::unique_ptr<Model<float>> no_conv = parse_model_spec<float>(
      "model sequential\nlayer flatten\nlayer linear out_features=2\n");
  no_conv->build(Shape{1, 1, 2, 2}, 1);
  EXPECT_EQ(testing::error_of([&] { filter_grid(*no_conv); }),
            "the model has no convolution, so no filters to show");
}

TEST(Report, HoldsEverySectionEscaped) {
  std::unique_ptr<Model<float>> m = small_cnn();
  ReportData data{.title = "run <1>",
                  .config = {{"model", "a<b>.txt"}},
                  .epochs = {},
                  .class_names = {"cat", "dog & co", "<bird>"},
                  .confusion = ConfusionMatrix(3)};
  for (int e = 1; e <= 3; ++e)
    data.epochs.push_back({.epoch = e, .learning_rate = 0.1 / e, .train_loss = 1.0 / e,
                           .train_acc = 0.3 * e, .test_loss = 1.2 / e, .test_acc = 0.25 * e,
                           .has_validation = true, .val_loss = 1.1 / e, .val_acc = 0.28 * e,
                           .seconds = 1, .grad_norms = std::vector<double>(m->params().size(), e)});
  data.confusion.add(0, 0);
  data.confusion.add(1, 2);
  Rng rng(2);
  const std::string html =
      report_html(data, *m, testing::random_normal<float>(Shape{1, 1, 12, 12}, rng));
  for (const char* id : {"id=\"loss-chart\"", "id=\"accuracy-chart\"", "id=\"lr-chart\"",
                         "id=\"grad-norm-chart\"", "id=\"confusion\"", "id=\"filters\"",
                         "id=\"feature-maps\"", "id=\"summary\"", "id=\"config\""})
    EXPECT_NE(html.find(id), std::string::npos) << id;
  // Lines: 3 loss (train, test, validation), 3 accuracy, 1 rate, 3 layers with parameters.
  size_t lines = 0;
  for (size_t at = 0; (at = html.find("<polyline", at)) != std::string::npos; ++at) ++lines;
  EXPECT_EQ(lines, 3u + 3u + 1u + 3u);
  // Pictures: the filters, the input, two feature-map grids; no external resources.
  size_t images = 0;
  for (size_t at = 0; (at = html.find("src=\"data:image/png;base64,", at)) != std::string::npos; ++at)
    ++images;
  EXPECT_EQ(images, 4u);
  for (const char* external : {"src=\"http", "href=\"http", "url(http", "<link"})
    EXPECT_EQ(html.find(external), std::string::npos) << external;
  EXPECT_EQ(html.find("<script"), std::string::npos);
  // Text from the run is escaped.
  EXPECT_NE(html.find("run &lt;1&gt;"), std::string::npos);
  EXPECT_NE(html.find("dog &amp; co"), std::string::npos);
  EXPECT_NE(html.find("&lt;bird&gt;"), std::string::npos);
  EXPECT_NE(html.find("a&lt;b&gt;.txt"), std::string::npos);
  EXPECT_EQ(html.find("<bird>"), std::string::npos);

  EXPECT_EQ(input_png_format(html), "CAAA");  // one channel: grey

  // Percentages with one decimal: the last epoch's line, and the confusion matrix's recall (class
  // 0: 1 of 1), precision (class 2: 0 of 1) and accuracy (1 of 2).
  EXPECT_NE(html.find("Epoch 3: train loss 0.3333, accuracy 90.0%; test loss 0.4, accuracy 75.0%; "
                      "validation accuracy 84.0%"), std::string::npos);
  for (const char* cell : {"<td>100.0%</td></tr>", "<td>0.0%</td>", "<td>50.0% acc.</td>"})
    EXPECT_NE(html.find(cell), std::string::npos) << cell;

  // Axes: whole epochs 1, 2, 3 under each of the four charts; the losses (1/3 .. 1.2) on ticks
  // 0.2 .. 1.2; the gradient norms (per layer, sqrt(2)·e for weight and bias) on decades.
  EXPECT_EQ(count(html, "class=\"x-tick\""), 4u * 3u);
  const std::string loss_chart = chart(html, "loss-chart");
  for (const char* tick : {">0.2</text>", ">0.6</text>", ">1.2</text>"})
    EXPECT_NE(loss_chart.find(tick), std::string::npos) << tick;
  EXPECT_EQ(count(loss_chart, "class=\"y-tick\""), 6u);
  const std::string grad_chart = chart(html, "grad-norm-chart");
  EXPECT_EQ(count(grad_chart, "class=\"y-tick\""), 2u);
  for (const char* text : {">1</text>", ">10</text>", ">layer0 conv2d</text>",
                           ">layer3 conv2d</text>", ">layer6 linear</text>"})
    EXPECT_NE(grad_chart.find(text), std::string::npos) << text;
}

// A regression run: MAE curves, a scatter per output with every point, the residual histogram
// holding every residual, no accuracy or confusion matrix; an autoencoder's image pairs.
TEST(Report, RegressionDrawsPredictionsNotAConfusionMatrix) {
  std::unique_ptr<Model<float>> m = small_cnn();
  ReportData data{.title = "regression", .config = {}, .epochs = {}, .class_names = {},
                  .confusion = ConfusionMatrix(0), .regression = true};
  for (int e = 1; e <= 2; ++e)
    data.epochs.push_back({.epoch = e, .train_loss = 1.0 / e, .test_loss = 1.5 / e,
                           .has_validation = true, .val_loss = 1.2 / e, .test_mae = 3.0 / e,
                           .val_mae = 3.5 / e, .test_r2 = 0.4 * e, .val_r2 = 0.3 * e, .seconds = 1,
                           .grad_norms = {}});
  data.predictions.names = {"angle", "scale <x>"};
  data.predictions.points = {{{1, 1.5f}, {2, 1.5f}, {-3, -2}}, {{0.5f, 0.25f}, {1, 1}}};
  Rng rng(4);
  const std::string html =
      report_html(data, *m, testing::random_normal<float>(Shape{1, 1, 12, 12}, rng));
  for (const char* id : {"id=\"mae-chart\"", "id=\"predictions\"", "id=\"scatter-0\"",
                         "id=\"scatter-1\"", "id=\"residual-histogram\""})
    EXPECT_NE(html.find(id), std::string::npos) << id;
  for (const char* absent : {"id=\"accuracy-chart\"", "id=\"confusion\""})
    EXPECT_EQ(html.find(absent), std::string::npos) << absent;
  EXPECT_NE(html.find("Epoch 2: train loss 0.5; test loss 0.75, MAE 1.5, R&sup2; 0.8; "
                      "validation MAE 1.75"),
            std::string::npos);
  EXPECT_EQ(count(chart(html, "scatter-0"), "<circle"), 3u);
  EXPECT_EQ(count(chart(html, "scatter-1"), "<circle"), 2u);
  EXPECT_NE(chart(html, "scatter-1").find("scale &lt;x&gt;"), std::string::npos);
  // 5 residuals in 30 bins: the bins' counts add up to 5.
  const std::string histogram = chart(html, "residual-histogram");
  int64_t total = 0;
  for (size_t at = 0; (at = histogram.find(": ", histogram.find("class=\"bin\"", at))) !=
                      std::string::npos;
       at += 2) {
    total += std::strtoll(histogram.c_str() + at + 2, nullptr, 10);
    if (histogram.find("class=\"bin\"", at) == std::string::npos) break;
  }
  EXPECT_EQ(total, 5);
  EXPECT_EQ(count(histogram, "class=\"bin\""), 30u);

  // An autoencoder's view from a model: pixels paired with their reconstruction.
  Sequential<float> ae;
  ae.emplace<Conv2d>(Conv2dOptions{.out_channels = 1, .kernel = 3, .pad = 1});
  ae.build(Shape{4, 1, 8, 8}, 1);
  const Dataset images = testing::quadrant_images(6, 3);
  const RegressionView view = regression_view(ae, images, true, 5, 3);
  ASSERT_EQ(view.points.size(), 1u);
  EXPECT_EQ(view.names, std::vector<std::string>{"pixels"});
  EXPECT_EQ(view.points[0].size(), 5u * 64u);  // fewer than 2000 pixels: all of them
  ASSERT_EQ(view.reconstructions.size(), 3u);
  EXPECT_EQ(view.reconstructions[0].first.width, 8);
}

// A colour model's input is drawn in colour, its feature maps in grey.
TEST(Report, ColourInputInColour) {
  std::unique_ptr<Model<float>> m = parse_model_spec<float>(
      "model sequential\nlayer conv2d out_channels=2 kernel=3\nlayer flatten\n"
      "layer linear out_features=2\n");
  m->build(Shape{1, 3, 6, 6}, 1);
  ReportData data{.title = "rgb", .config = {}, .epochs = {}, .class_names = {},
                  .confusion = ConfusionMatrix(2)};
  Rng rng(3);
  const std::string html =
      report_html(data, *m, testing::random_normal<float>(Shape{1, 3, 6, 6}, rng));
  EXPECT_EQ(input_png_format(html), "CAIA");
  EXPECT_NE(html.find("2 maps of 4x4"), std::string::npos);
}

// A model with more layers than colours: layers 11-20 reuse the colours dashed, 21-30 dotted,
// and the chart grows to hold its legend.
TEST(Report, DeepModelGradientLinesStayDistinct) {
  std::string spec = "model sequential\nlayer flatten\n";
  for (int i = 0; i < 25; ++i) spec += "layer linear out_features=3\n";
  std::unique_ptr<Model<float>> m = parse_model_spec<float>(spec);
  m->build(Shape{1, 1, 2, 2}, 1);
  ReportData data{.title = "deep", .config = {}, .epochs = {}, .class_names = {},
                  .confusion = ConfusionMatrix(3)};
  data.epochs.push_back({.epoch = 1, .grad_norms = std::vector<double>(m->params().size(), 0.5)});
  const std::string grad_chart =
      chart(report_html(data, *m, Tensor<float>(Shape{1, 1, 2, 2}, 0.5f)), "grad-norm-chart");
  EXPECT_EQ(count(grad_chart, "<polyline"), 25u);
  // Each style twice: the line and its legend swatch.
  EXPECT_EQ(count(grad_chart, "stroke-dasharray=\"6 3\""), 2u * 10u);
  EXPECT_EQ(count(grad_chart, "stroke-dasharray=\"2 2\""), 2u * 5u);
  EXPECT_NE(grad_chart.find("width=\"560\" height=\"420\""), std::string::npos);  // 30+25*14+40
  EXPECT_NE(grad_chart.find(">layer25 linear</text>"), std::string::npos);
}

// A long layer name widens the chart for its legend instead of running off its edge.
TEST(Report, LegendMakesRoomForLongNames) {
  std::unique_ptr<Model<float>> m = parse_model_spec<float>(
      "model graph input=input\nnode flat flatten in=input\n"
      "node encoder.block_with_a_long_name.fc linear in=flat out_features=3\n");
  m->build(Shape{1, 1, 2, 2}, 1);
  ReportData data{.title = "long", .config = {}, .epochs = {}, .class_names = {},
                  .confusion = ConfusionMatrix(3)};
  data.epochs.push_back({.epoch = 1, .grad_norms = {0.5, 0.1}});
  const std::string grad_chart =
      chart(report_html(data, *m, Tensor<float>(Shape{1, 1, 2, 2}, 0.5f)), "grad-norm-chart");
  // "encoder.block_with_a_long_name.fc linear": 40 characters at 6.5 pixels, after 40 pixels of
  // swatch, beside 64 + 326 of axis and plot.
  EXPECT_NE(grad_chart.find("width=\"690\""), std::string::npos);
  EXPECT_NE(grad_chart.find(">encoder.block_with_a_long_name.fc linear</text>"), std::string::npos);
}

}  // namespace
}  // namespace convnet
