// Metrics on hand-worked confusion matrices, top-k with ties, and a full evaluation pass that
// agrees with evaluate().
#include "support/testing.hpp"

namespace convnet {
namespace {

// 10 samples of 3 classes; rows are true labels, columns predictions:
//        0  1  2   | support
//   0 [  3  1  0 ] | 4
//   1 [  0  2  2 ] | 4
//   2 [  1  0  1 ] | 2
//   predicted: 4  3  3
ConfusionMatrix worked_example() {
  ConfusionMatrix m(3);
  const int pairs[][3] = {{0, 0, 3}, {0, 1, 1}, {1, 1, 2}, {1, 2, 2}, {2, 0, 1}, {2, 2, 1}};
  for (const auto& p : pairs)
    for (int i = 0; i < p[2]; ++i) m.add(p[0], p[1]);
  return m;
}

TEST(Metrics, HandWorkedConfusionMatrix) {
  const ConfusionMatrix m = worked_example();
  EXPECT_EQ(m.total(), 10);
  EXPECT_EQ(m.count(1, 2), 2);
  EXPECT_EQ(m.row_sum(2), 2);
  EXPECT_EQ(m.column_sum(0), 4);
  EXPECT_DOUBLE_EQ(m.accuracy(), 0.6);
  // precision = TP / predicted as c; recall = TP / labelled c.
  EXPECT_DOUBLE_EQ(m.precision(0), 3.0 / 4);
  EXPECT_DOUBLE_EQ(m.precision(1), 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.precision(2), 1.0 / 3);
  EXPECT_DOUBLE_EQ(m.recall(0), 3.0 / 4);
  EXPECT_DOUBLE_EQ(m.recall(1), 2.0 / 4);
  EXPECT_DOUBLE_EQ(m.recall(2), 1.0 / 2);
  EXPECT_DOUBLE_EQ(m.f1(0), 0.75);
  EXPECT_NEAR(m.f1(1), 4.0 / 7, 1e-15);  // 2·(2/3)·(1/2) / (2/3 + 1/2)
  EXPECT_NEAR(m.f1(2), 0.4, 1e-15);      // 2·(1/3)·(1/2) / (1/3 + 1/2)
  EXPECT_NEAR(m.macro_precision(), (0.75 + 2.0 / 3 + 1.0 / 3) / 3, 1e-15);
  EXPECT_NEAR(m.macro_recall(), (0.75 + 0.5 + 0.5) / 3, 1e-15);
  EXPECT_NEAR(m.macro_f1(), (0.75 + 4.0 / 7 + 0.4) / 3, 1e-15);
  EXPECT_EQ(m.table({"cat", "dog", "bird"}),
            "true \\ predicted    0    1    2\n"
            "0 cat               3    1    0\n"
            "1 dog               0    2    2\n"
            "2 bird              1    0    1\n");
}

TEST(Metrics, EmptyClassesScoreZeroAsSklearn) {
  ConfusionMatrix m(3);
  m.add(0, 0);
  m.add(1, 0);
  EXPECT_DOUBLE_EQ(m.precision(2), 0.0);  // never predicted
  EXPECT_DOUBLE_EQ(m.recall(2), 0.0);     // never present
  EXPECT_DOUBLE_EQ(m.f1(2), 0.0);
  EXPECT_DOUBLE_EQ(m.precision(0), 0.5);
  EXPECT_DOUBLE_EQ(m.f1(1), 0.0);
  EXPECT_THROW(m.add(3, 0), Error);
  EXPECT_DOUBLE_EQ(ConfusionMatrix(2).accuracy(), 0.0);
}

TEST(Metrics, OutputsCountByArgMaxAndTopK) {
  // Row 0: label 2 is the largest. Row 1: label 0 ties with index 1 for second place (0 wins the
  // tie, as the lower index). Row 2: label 1 is last.
  Tensor<float> out(Shape{3, 3});
  const float values[] = {0.1f, 0.2f, 0.7f, /**/ 0.3f, 0.3f, 0.4f, /**/ 0.5f, 0.1f, 0.4f};
  std::copy(std::begin(values), std::end(values), out.data());
  const std::vector<int32_t> labels = {2, 0, 1};
  ConfusionMatrix m(3);
  m.add(out, labels);
  EXPECT_EQ(m.count(2, 2), 1);
  EXPECT_EQ(m.count(0, 2), 1);
  EXPECT_EQ(m.count(1, 0), 1);
  EXPECT_EQ(count_top_k(out, labels, 1), 1);
  EXPECT_EQ(count_top_k(out, labels, 2), 2);  // label 0 of row 1 is second, ahead of index 1
  EXPECT_EQ(count_top_k(out, std::vector<int32_t>{2, 1, 1}, 2), 1);  // index 1 loses the tie
  EXPECT_EQ(count_top_k(out, labels, 3), 3);
}

TEST(Metrics, EvaluateClassifierAgreesWithEvaluate) {
  Rng rng(5);
  const int64_t n = 37;
  std::vector<int32_t> labels;
  for (int64_t i = 0; i < n; ++i) labels.push_back(static_cast<int32_t>(rng.below(4)));
  const Dataset data = Dataset::from_floats(testing::random_normal<float>(Shape{n, 1, 6, 6}, rng),
                                            labels, 4);
  std::unique_ptr<Model<float>> model = parse_model_spec<float>(
      "model sequential\nlayer conv2d out_channels=3 kernel=3\nlayer relu\nlayer flatten\n"
      "layer linear out_features=4\n");
  model->build(Shape{8, 1, 6, 6}, 2);
  SoftmaxCrossEntropy<float> loss;
  const EvalStats plain = evaluate(*model, data, loss, 8);
  const ClassificationReport report = evaluate_classifier(*model, data, loss, 2, 8);
  EXPECT_NEAR(report.loss, plain.loss, 1e-6);
  EXPECT_DOUBLE_EQ(report.confusion.accuracy(), plain.accuracy);
  EXPECT_EQ(report.confusion.total(), n);
  for (int64_t c = 0; c < 4; ++c)
    EXPECT_EQ(report.confusion.row_sum(c), std::count(labels.begin(), labels.end(), c));
  EXPECT_GE(report.top_k_accuracy, plain.accuracy);
  EXPECT_EQ(report.top_k, 2);
}

}  // namespace
}  // namespace convnet
