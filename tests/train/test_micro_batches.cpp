// A batch computed in parts (FitOptions::micro_batches, and each rank's part of a data-parallel
// batch): the loss of a part is its share of the whole batch's mean, so the parts' gradients add
// up to the whole batch's; Dropout draws for each sample what the whole batch would, whichever
// way the batch is split; the micro-batch step trains as the whole-batch step does (up to the
// rounding of a sum in another order); and a world of one process is the identity.
#include <cmath>

#include "convnet/distributed.hpp"
#include "support/testing.hpp"

namespace convnet {
namespace {

TEST(MicroBatches, PartLossesAreSharesOfTheWholeMean) {
  Rng rng(11);
  const int64_t N = 7, K = 5;
  const Tensor<float> z = testing::random_normal<float>(Shape{N, K}, rng);
  const std::vector<int32_t> labels = {0, 4, 2, 2, 1, 3, 0};
  SoftmaxCrossEntropy<float> loss;
  Tensor<float> whole_grad, part_grad;
  const float whole = loss.compute(z, {.labels = labels}, &whole_grad);
  // Parts of 3 and 4 samples, each over the whole batch's 7.
  double sum = 0;
  for (const auto& [first, count] : {std::pair<int64_t, int64_t>{0, 3}, {3, 4}}) {
    Tensor<float> part(Shape{count, K});
    std::copy_n(z.data() + first * K, count * K, part.data());
    sum += loss.compute(part, {.labels = std::span(labels).subspan(first, count), .mean_over = N},
                        &part_grad);
    // ∂L/∂z of a sample depends on that sample and the batch's size only: the same bits.
    for (int64_t i = 0; i < count * K; ++i)
      ASSERT_EQ(part_grad[i], whole_grad[first * K + i]) << "sample " << first + i / K;
  }
  EXPECT_NEAR(sum, whole, 1e-6);

  MeanSquaredError<float> mse;
  const Tensor<float> target = testing::random_normal<float>(Shape{N, K}, rng);
  const float whole_mse = mse.compute(z, {.values = &target}, &whole_grad);
  Tensor<float> part(Shape{2, K}), part_target(Shape{2, K});
  std::copy_n(z.data() + 5 * K, 2 * K, part.data());
  std::copy_n(target.data() + 5 * K, 2 * K, part_target.data());
  const float part_mse = mse.compute(part, {.values = &part_target, .mean_over = N}, &part_grad);
  for (int64_t i = 0; i < 2 * K; ++i) ASSERT_EQ(part_grad[i], whole_grad[5 * K + i]);
  EXPECT_GT(part_mse, 0);
  EXPECT_LT(part_mse, whole_mse);
  // A part cannot be larger than the batch it is part of.
  EXPECT_THROW(loss.compute(z, {.labels = labels, .mean_over = 3}, nullptr), Error);
}

TEST(MicroBatches, DropoutDrawsByPlaceInTheWholeBatch) {
  Rng rng(5);
  const Tensor<float> x = testing::random_normal<float>(Shape{6, 2, 3, 3}, rng);
  const int64_t sample = 2 * 3 * 3;
  auto make = [] {
    auto d = std::make_unique<Dropout<float>>(DropoutOptions{.p = 0.5, .seed = 99});
    d->build(Shape{6, 2, 3, 3});
    return d;
  };
  auto whole = make();
  Tensor<float> y_whole, y_next;
  whole->forward(x, y_whole, Mode::Train);
  whole->forward(x, y_next, Mode::Train);  // the batch after
  // Rank-style parts: each skips the draws of the samples before and after it.
  for (const auto& [first, count] : {std::pair<int64_t, int64_t>{0, 2}, {2, 3}, {5, 1}}) {
    auto part_layer = make();
    Tensor<float> part(Shape{count, 2, 3, 3}), y;
    std::copy_n(x.data() + first * sample, count * sample, part.data());
    part_layer->set_batch_shard({.before = first, .after = 6 - first - count});
    part_layer->forward(part, y, Mode::Train);
    for (int64_t i = 0; i < count * sample; ++i)
      ASSERT_EQ(y[i], y_whole[first * sample + i]) << "part at " << first << ", element " << i;
    // ... and its stream is where the whole batch's is: the next batch draws alike.
    part_layer->set_batch_shard({});
    part_layer->forward(x, y, Mode::Train);
    for (int64_t i = 0; i < x.numel(); ++i) ASSERT_EQ(y[i], y_next[i]);
  }
  // A rank with no samples moves its stream on by the batch.
  auto empty = make();
  empty->skip_batch(6);
  Tensor<float> y;
  empty->forward(x, y, Mode::Train);
  for (int64_t i = 0; i < x.numel(); ++i) ASSERT_EQ(y[i], y_next[i]);
  // Micro-batches in one process draw in turn: parts in order, no skips.
  auto micro = make();
  for (const auto& [first, count] : {std::pair<int64_t, int64_t>{0, 4}, {4, 2}}) {
    Tensor<float> part(Shape{count, 2, 3, 3});
    std::copy_n(x.data() + first * sample, count * sample, part.data());
    micro->forward(part, y, Mode::Train);
    for (int64_t i = 0; i < count * sample; ++i) ASSERT_EQ(y[i], y_whole[first * sample + i]);
  }
}

std::unique_ptr<Sequential<float>> small_cnn(int64_t batch) {
  auto m = std::make_unique<Sequential<float>>();
  m->emplace<Conv2d>(Conv2dOptions{.out_channels = 4, .kernel = 3, .pad = 1});
  m->emplace<ReLU>();
  m->emplace<MaxPool2d>(Pool2dOptions{.kernel = 2});
  m->emplace<Flatten>();
  m->emplace<Linear>(LinearOptions{.out_features = 4});
  m->build(Shape{batch, 1, 8, 8}, 5);
  return m;
}

TEST(MicroBatches, TrainLikeWholeBatches) {
  const Dataset train = testing::quadrant_images(45, 1), test = testing::quadrant_images(16, 2);
  SoftmaxCrossEntropy<float> loss;
  auto whole = small_cnn(10);
  Sgd<float> sgd_whole({.lr = 0.05, .momentum = 0.9});
  const FitResult a = fit(*whole, train, &test, loss, sgd_whole, {.epochs = 2, .batch = 10});
  for (const int parts : {1, 3, 4, 10}) {
    // Built for the largest part only: the memory of a part.
    auto model = small_cnn((10 + parts - 1) / parts);
    Sgd<float> sgd({.lr = 0.05, .momentum = 0.9});
    const FitResult b =
        fit(*model, train, &test, loss, sgd, {.epochs = 2, .batch = 10, .micro_batches = parts});
    // One part is the plain step, bit for bit; more add the same terms in another order.
    const double tolerance = parts == 1 ? 0 : 2e-5;
    for (size_t i = 0; i < whole->params().size(); ++i) {
      const Tensor<float>& w = *whole->params()[i].value;
      const Tensor<float>& v = *model->params()[i].value;
      for (int64_t j = 0; j < w.numel(); ++j)
        ASSERT_NEAR(v[j], w[j], tolerance * (1 + std::fabs(w[j])))
            << parts << " parts, " << whole->params()[i].name << "[" << j << "]";
    }
    EXPECT_NEAR(b.epochs.back().train_loss, a.epochs.back().train_loss, 1e-5);
    EXPECT_EQ(b.epochs.back().test_acc, a.epochs.back().test_acc);
  }
  // Parts larger than the model was built for are refused, naming the sizes.
  auto tiny = small_cnn(2);
  Sgd<float> sgd({.lr = 0.05});
  EXPECT_THROW(fit(*tiny, train, nullptr, loss, sgd, {.batch = 10, .micro_batches = 4}), Error);
}

TEST(MicroBatches, AWorldOfOneIsTheIdentity) {
  SingleProcess one;
  EXPECT_EQ(one.rank(), 0);
  EXPECT_EQ(one.size(), 1);
  std::vector<float> g = {1.5f, -2.0f};
  one.ordered_sum(g, 1, "test");
  EXPECT_EQ(g, (std::vector<float>{1.5f, -2.0f}));
  const double mine[2] = {3, 4};
  double all[2] = {};
  one.allgather_values(std::span<const double>(mine), std::span<double>(all), "test");
  EXPECT_EQ(all[1], 4);
  const Agreement items[] = {{"model", 7}};
  EXPECT_NO_THROW(require_agreement(one, items));
  // A fit() given it trains as one without.
  const Dataset train = testing::quadrant_images(20, 1);
  SoftmaxCrossEntropy<float> loss;
  auto a = small_cnn(8), b = small_cnn(8);
  Sgd<float> sa({.lr = 0.05}), sb({.lr = 0.05});
  fit(*a, train, nullptr, loss, sa, {.batch = 8});
  fit(*b, train, nullptr, loss, sb, {.batch = 8, .communicator = &one});
  for (size_t i = 0; i < a->params().size(); ++i)
    for (int64_t j = 0; j < a->params()[i].value->numel(); ++j)
      ASSERT_EQ((*a->params()[i].value)[j], (*b->params()[i].value)[j]);
  // Fingerprints tell bytes apart.
  const std::string x = "abc", y = "abd";
  EXPECT_NE(fingerprint_of(x), fingerprint_of(y));
  EXPECT_EQ(fingerprint_of(x), fingerprint_of(std::string("abc")));
}

}  // namespace
}  // namespace convnet
