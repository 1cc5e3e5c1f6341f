// AdamW through the public API: PyTorch's defaults (torch.optim.AdamW: lr 1e-3, betas (0.9,
// 0.999), eps 1e-8, weight_decay 1e-2) without knowing any helper, one step against the formula,
// and checkpoints that interchange with the decoupled Adam the CLI has always written.
#include <cmath>
#include <filesystem>

#include "support/testing.hpp"

namespace convnet {
namespace {

TEST(AdamWDefaults, ArePyTorchs) {
  const AdamW<float> adamw{};
  EXPECT_EQ(adamw.name(), "adamw");
  const AdamOptions& o = adamw.options();
  EXPECT_EQ(o.lr, 1e-3);
  EXPECT_EQ(o.beta1, 0.9);
  EXPECT_EQ(o.beta2, 0.999);
  EXPECT_EQ(o.eps, 1e-8);
  EXPECT_EQ(o.weight_decay, 1e-2);
  EXPECT_TRUE(o.decoupled);
  EXPECT_EQ(adamw.state_names(), (std::vector<std::string>{"exp_avg", "exp_avg_sq"}));
  // Setting one option keeps the other defaults, weight decay included.
  const AdamW<float> fast({.lr = 0.1});
  EXPECT_EQ(fast.options().lr, 0.1);
  EXPECT_EQ(fast.options().weight_decay, 1e-2);
  EXPECT_EQ(AdamWOptions{}.weight_decay, 1e-2);
  // Adam's own default is no weight decay, as torch.optim.Adam's.
  EXPECT_EQ(Adam<float>{}.options().weight_decay, 0.0);
}

TEST(AdamWDefaults, OneStepMatchesTheFormula) {
  // t = 1: m = (1 − β1)·g, v = (1 − β2)·g², m̂ = g, v̂ = g², so
  // p1 = p0·(1 − lr·wd) − lr·g / (|g| + eps).
  const double lr = 1e-2, wd = 1e-2, eps = 1e-8;
  Tensor<double> value(Shape{3}), grad(Shape{3});
  const double p0[] = {0.5, -2.0, 3.0}, g[] = {0.25, 1.5, -4.0};
  for (int i = 0; i < 3; ++i) value[i] = p0[i], grad[i] = g[i];
  AdamW<double> adamw({.lr = lr});
  const std::vector<Param<double>> params{{"weight", &value, &grad}};
  adamw.step(params);
  for (int i = 0; i < 3; ++i) {
    const double want = p0[i] * (1 - lr * wd) - lr * g[i] / (std::abs(g[i]) + eps);
    EXPECT_NEAR(value[i], want, 1e-15) << "element " << i;
  }
  EXPECT_EQ(adamw.state(0, 0)[1], (1 - 0.9) * g[1]);  // exp_avg
}

TEST(AdamWDefaults, RefusesWhatPyTorchRefuses) {
  EXPECT_TRUE(testing::has(testing::error_of([] { AdamW<float> a({.weight_decay = -1}); }),
                           "adamw: weight decay must be >= 0, got -1"));
  EXPECT_TRUE(testing::has(testing::error_of([] { AdamW<float> a({.beta2 = 1}); }),
                           "adamw: betas must be in [0, 1)"));
}

// A checkpoint of the decoupled Adam (what `--optimizer adamw` has written) resumes in AdamW with
// the same moments and steps, and the two then take identical steps.
TEST(AdamWDefaults, CheckpointsInterchangeWithDecoupledAdam) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      ("convnet_adamw_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "adamw.safetensors").string();
  Rng rng(3);
  const Tensor<float> x = testing::random_normal<float>(Shape{4, 1, 4, 4}, rng);
  const std::vector<int32_t> labels{0, 1, 2, 1};
  SoftmaxCrossEntropy<float> loss;
  auto make_net = [] {
    auto net = std::make_unique<Sequential<float>>();
    net->emplace<Conv2d>(Conv2dOptions{.out_channels = 2, .kernel = 3});
    net->emplace<Flatten>();
    net->emplace<Linear>(LinearOptions{.out_features = 3});
    net->build(Shape{4, 1, 4, 4}, 7);
    return net;
  };
  auto net = make_net();
  Adam<float> decoupled_adam({.weight_decay = 1e-2, .decoupled = true});
  for (int s = 0; s < 2; ++s) net->train_step(x, {.labels = labels}, loss, decoupled_adam);
  save_checkpoint(path, *net, &decoupled_adam, {});
  const Checkpoint<float> c = load_checkpoint<float>(path);
  EXPECT_EQ(c.optimizer, "adamw");
  AdamW<float> adamw;
  restore_optimizer(c, adamw);
  EXPECT_EQ(adamw.steps(), 2);
  net->train_step(x, {.labels = labels}, loss, decoupled_adam);
  c.model->train_step(x, {.labels = labels}, loss, adamw);
  for (size_t i = 0; i < net->params().size(); ++i)
    EXPECT_TRUE(testing::all_close(net->params()[i].value->data(),
                                   c.model->params()[i].value->data(),
                                   net->params()[i].value->numel(), 0, 0))
        << net->params()[i].name;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace convnet
