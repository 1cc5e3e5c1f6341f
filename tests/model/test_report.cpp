// The report's pieces: base64 (RFC 4648's test vectors), HTML escaping, the filter and feature-map
// grids' sizes, and a report for a small run that holds every section, escaped.
#include "support/testing.hpp"

namespace convnet {
namespace {

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
}

}  // namespace
}  // namespace convnet
