// Graph models: a chain is exactly a Sequential; wiring mistakes are errors naming the node;
// Add and Concat on hand-worked values; and the chain rule over a graph with a residual
// connection, a concatenation and a node read by three consumers, against central differences.
#include "convnet/graph.hpp"
#include "convnet/zoo.hpp"
#include "support/testing.hpp"

namespace convnet {
namespace {

TEST(Graph, ChainMatchesSequentialBitForBit) {
  Sequential<float> seq = make_sequential<float>("lenet");
  Graph<float> graph;
  graph.emplace<Conv2d>("conv1", {"input"},
                        Conv2dOptions{.out_channels = 6, .kernel = 5, .pad = 2});
  graph.emplace<ReLU>("relu1", {"conv1"});
  graph.emplace<MaxPool2d>("pool1", {"relu1"}, Pool2dOptions{.kernel = 2});
  graph.emplace<Conv2d>("conv2", {"pool1"}, Conv2dOptions{.out_channels = 16, .kernel = 5});
  graph.emplace<ReLU>("relu2", {"conv2"});
  graph.emplace<MaxPool2d>("pool2", {"relu2"}, Pool2dOptions{.kernel = 2});
  graph.emplace<Flatten>("flatten", {"pool2"});
  graph.emplace<Linear>("fc1", {"flatten"}, LinearOptions{.out_features = 120});
  graph.emplace<ReLU>("relu3", {"fc1"});
  graph.emplace<Linear>("fc2", {"relu3"}, LinearOptions{.out_features = 84});
  graph.emplace<ReLU>("relu4", {"fc2"});
  graph.emplace<Linear>("fc3", {"relu4"}, LinearOptions{.out_features = 10});
  const Shape input{8, 1, 28, 28};
  seq.build(input, 5);
  graph.build(input, 5);
  EXPECT_EQ(graph.param_count(), seq.param_count());
  EXPECT_EQ(graph.forward_flops(), seq.forward_flops());
  EXPECT_EQ(graph.train_flops(), seq.train_flops());
  EXPECT_EQ(graph.params()[0].name, "conv1.weight");
  Rng rng(1);
  const Tensor<float> x = testing::random_normal<float>(input, rng);
  const std::vector<int32_t> labels{0, 1, 2, 3, 4, 5, 6, 7};
  SoftmaxCrossEntropy<float> loss;
  Sgd<float> sgd_a({.lr = 0.05, .momentum = 0.9}), sgd_b({.lr = 0.05, .momentum = 0.9});
  for (int step = 0; step < 3; ++step) {
    const StepResult a = seq.train_step(x, {.labels = labels}, loss, sgd_a);
    const StepResult b = graph.train_step(x, {.labels = labels}, loss, sgd_b);
    EXPECT_EQ(a.loss, b.loss) << "step " << step;
  }
  for (size_t i = 0; i < seq.params().size(); ++i) {
    const Tensor<float>& p = *seq.params()[i].value;
    const Tensor<float>& q = *graph.params()[i].value;
    ASSERT_EQ(p.numel(), q.numel());
    EXPECT_TRUE(std::equal(p.data(), p.data() + p.numel(), q.data())) << seq.params()[i].name;
  }
}

// The default memory plan (convnet/executor.hpp: shared gradient buffers, ReLU in place after
// BatchNorm and Add) gives the same bits as one activation and gradient per node, on a chain and
// on a graph with residual Adds, strided shortcuts and BatchNorm, over full, short and longer
// batches;
// far less memory; and the inner nodes' gradients are then not offered.
TEST(Graph, DefaultMemoryPlanKeepsTheBits) {
  for (const char* name : {"lenet", "resnet-small"}) {
    SCOPED_TRACE(name);
    const Shape input{6, 1, 28, 28};
    std::unique_ptr<Model<float>> shared = make_model<float>(name), kept = make_model<float>(name);
    shared->build(input, 4);
    kept->build(input, 4);
    kept->set_keep_intermediates(true);
    EXPECT_FALSE(shared->keeps_intermediates());
    // lenet: its two largest (first) maps dominate either way; resnet-small: 31 nodes, 4 buffers.
    const int64_t saving = std::string(name) == "lenet" ? 1 : 4;
    EXPECT_LT(saving * shared->memory_use().node_gradients, kept->memory_use().node_gradients);
    // resnet-small's ReLUs after a BatchNorm or an Add run in place; lenet's follow convolutions
    // and fully connected layers, whose outputs stay.
    if (std::string(name) == "lenet")
      EXPECT_EQ(shared->memory_use().activations, kept->memory_use().activations);
    else
      EXPECT_LT(5 * shared->memory_use().activations, 4 * kept->memory_use().activations);
    Rng rng(3);
    const Tensor<float> x = testing::random_normal<float>(input, rng);
    const Tensor<float> short_x = testing::random_normal<float>(Shape{2, 1, 28, 28}, rng);
    // Larger than the built batch: the activations reallocate, and what runs in place follows.
    const Tensor<float> long_x = testing::random_normal<float>(Shape{9, 1, 28, 28}, rng);
    const std::vector<int32_t> labels{0, 1, 2, 3, 4, 5, 6, 7, 8};
    SoftmaxCrossEntropy<float> loss;
    Sgd<float> sgd_a({.lr = 0.05, .momentum = 0.9}), sgd_b({.lr = 0.05, .momentum = 0.9});
    for (int step = 0; step < 5; ++step) {
      const Tensor<float>& batch = step == 2 ? short_x : step == 3 ? long_x : x;
      const std::span<const int32_t> y(labels.data(), static_cast<size_t>(batch.dim(0)));
      EXPECT_EQ(shared->train_step(batch, {.labels = y}, loss, sgd_a).loss,
                kept->train_step(batch, {.labels = y}, loss, sgd_b).loss)
          << "step " << step;
    }
    for (size_t i = 0; i < shared->params().size(); ++i) {
      const Tensor<float>& p = *shared->params()[i].value;
      const Tensor<float>& q = *kept->params()[i].value;
      EXPECT_TRUE(std::equal(p.data(), p.data() + p.numel(), q.data())) << shared->params()[i].name;
    }
    const std::vector<NodeTrace<float>> a = shared->trace(), b = kept->trace();
    EXPECT_EQ(a.front().grad_output, nullptr);
    EXPECT_NE(b.front().grad_output, nullptr);
    EXPECT_NE(a.back().grad_output, nullptr);  // the output's: the loss gradient
  }
}

// Mode::Eval folds each BatchNorm that alone reads a convolution into it (resnet-small has 11):
// the output agrees with the unfolded pass to rounding, at the built batch and at batch 1 (where
// the small maps' convolutions keep their BatchNorm: folding would not pay); backward and trace
// after a folded pass see the unfolded one bit for bit; Train and keep_intermediates never fold.
TEST(Graph, BatchNormFoldsIntoConvolutionsAtEvaluation) {
  const Shape input{6, 1, 28, 28};
  std::unique_ptr<Model<float>> folded = make_model<float>("resnet-small"),
                                plain = make_model<float>("resnet-small");
  folded->build(input, 4);
  plain->build(input, 4);
  plain->set_fold_batchnorm(false);
  EXPECT_TRUE(folded->folds_batchnorm());
  Rng rng(7);
  const Tensor<float> x = testing::random_normal<float>(input, rng);
  const std::vector<int32_t> labels{0, 1, 2, 3, 4, 5};
  SoftmaxCrossEntropy<float> loss;
  Sgd<float> sgd_a({.lr = 0.05, .momentum = 0.9}), sgd_b({.lr = 0.05, .momentum = 0.9});
  for (int step = 0; step < 3; ++step) {  // running statistics, γ and β away from their start
    EXPECT_EQ(folded->train_step(x, {.labels = labels}, loss, sgd_a).loss,
              plain->train_step(x, {.labels = labels}, loss, sgd_b).loss);
    EXPECT_FALSE(folded->last_pass_folded());
  }
  for (const int64_t batch : {int64_t{6}, int64_t{1}}) {
    SCOPED_TRACE("batch " + std::to_string(batch));
    const Tensor<float> xb = testing::random_normal<float>(input.with_batch(batch), rng);
    const Tensor<float> want = plain->forward(xb, Mode::Eval);
    EXPECT_FALSE(plain->last_pass_folded());
    const Tensor<float> got = folded->forward(xb, Mode::Eval);
    EXPECT_TRUE(folded->last_pass_folded());
    ASSERT_EQ(got.shape(), want.shape());
    float largest = 0;
    for (int64_t i = 0; i < want.numel(); ++i) largest = std::max(largest, std::abs(want[i]));
    for (int64_t i = 0; i < want.numel(); ++i)
      EXPECT_NEAR(got[i], want[i], 1e-5f * largest) << "logit " << i;

    // The trace after a folded pass holds every node's unfolded output.
    const std::vector<NodeTrace<float>> a = folded->trace(), b = plain->trace();
    ASSERT_EQ(a.size(), b.size());
    for (size_t k = 0; k < a.size(); ++k) {
      const Tensor<float>& p = *a[k].output;
      const Tensor<float>& q = *b[k].output;
      ASSERT_EQ(p.shape(), q.shape()) << a[k].name;
      EXPECT_TRUE(std::equal(p.data(), p.data() + p.numel(), q.data())) << a[k].name;
    }

    // Backward after a folded Eval pass: the gradient of the unfolded pass.
    folded->forward(xb, Mode::Eval);
    plain->forward(xb, Mode::Eval);
    Tensor<float> dy(want.shape());
    for (int64_t i = 0; i < dy.numel(); ++i) dy[i] = static_cast<float>(rng.normal());
    Tensor<float> dx_folded, dx_plain;
    folded->zero_grad();
    plain->zero_grad();
    folded->backward(dy, &dx_folded);
    plain->backward(dy, &dx_plain);
    ASSERT_EQ(dx_folded.shape(), xb.shape());
    EXPECT_TRUE(std::equal(dx_folded.data(), dx_folded.data() + dx_folded.numel(),
                           dx_plain.data()));
    for (size_t i = 0; i < folded->params().size(); ++i) {
      const Tensor<float>& p = *folded->params()[i].grad;
      const Tensor<float>& q = *plain->params()[i].grad;
      EXPECT_TRUE(std::equal(p.data(), p.data() + p.numel(), q.data()))
          << folded->params()[i].name;
    }
  }
  folded->set_keep_intermediates(true);
  folded->forward(x, Mode::Eval);
  EXPECT_FALSE(folded->last_pass_folded());
}

TEST(Graph, WiringMistakesNameTheNode) {
  {
    Graph<float> g;
    g.emplace<ReLU>("a", {"input"});
    g.emplace<ReLU>("b", {"missing"});
    EXPECT_TRUE(testing::has(testing::error_of([&] {
                               g.build(Shape{1, 2});
                             }),
                             "node 'b' reads 'missing', which is not a node"));
  }
  {
    Graph<float> g;  // a -> b -> c -> a, and the output reads c
    g.emplace<ReLU>("a", {"c"});
    g.emplace<ReLU>("b", {"a"});
    g.emplace<ReLU>("c", {"b"});
    g.emplace<Add>("out", {"c", "input"});
    EXPECT_TRUE(testing::has(testing::error_of([&] {
                               g.build(Shape{1, 2});
                             }),
                             "node 'a' is on a cycle"));
  }
  {
    Graph<float> g;
    g.emplace<ReLU>("used", {"input"});
    g.emplace<Tanh>("dangling", {"input"});
    g.emplace<Sigmoid>("out", {"used"});
    EXPECT_TRUE(testing::has(testing::error_of([&] {
                               g.build(Shape{1, 2});
                             }),
                             "node 'dangling' does not lead to the output 'out'"));
  }
  {
    Graph<float> g;
    g.emplace<ReLU>("a", {"input"});
    EXPECT_TRUE(testing::has(testing::error_of([&] { g.emplace<ReLU>("a", {"input"}); }),
                             "a node named 'a' already exists"));
    EXPECT_TRUE(testing::has(testing::error_of([&] { g.emplace<ReLU>("input", {"a"}); }),
                             "a node named 'input' already exists"));
    g.emplace<ReLU>("two", {"a", "input"});
    EXPECT_TRUE(testing::has(testing::error_of([&] {
                               g.build(Shape{1, 2});
                             }),
                             "node 'two' (relu) takes exactly 1 input, got 2"));
  }
  {
    Graph<float> g;
    g.emplace<Linear>("fc", {"input"}, LinearOptions{.out_features = 3});
    g.emplace<Add>("sum", {"fc", "input"});
    EXPECT_TRUE(testing::has(testing::error_of([&] {
                               g.build(Shape{4, 5});
                             }),
                             "node 'sum': add: input 1 has shape 4x5 but input 0 has 4x3"));
  }
  {
    Graph<float> g;
    g.emplace<ReLU>("a", {"input"});
    g.set_output("nope");
    EXPECT_TRUE(testing::has(testing::error_of([&] {
                               g.build(Shape{1, 2});
                             }),
                             "output 'nope' is not a layer node"));
  }
}

TEST(Graph, AddAndConcatHandWorked) {
  Graph<double> g;
  g.emplace<Sigmoid>("s", {"input"});
  g.emplace<Concat>("cat", {"input", "s", "input"});
  g.build(Shape{2, 1, 1, 2});
  Tensor<double> x(Shape{2, 1, 1, 2});
  for (int i = 0; i < 4; ++i) x[i] = i;  // image 0: 0 1, image 1: 2 3
  const Tensor<double>& y = g.forward(x, Mode::Train);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 1, 2}));
  auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  const double want[] = {0, 1, sig(0), sig(1), 0, 1, 2, 3, sig(2), sig(3), 2, 3};
  for (int i = 0; i < 12; ++i) EXPECT_DOUBLE_EQ(y[i], want[i]) << i;
  // dy = 1 everywhere: dx = 1 (first copy) + σ'(x) + 1 (second copy).
  Tensor<double> dy(y.shape(), 1.0), dx;
  g.backward(dy, &dx);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(dx[i], 2 + sig(i) * (1 - sig(i)), 1e-15) << i;

  Graph<double> r;
  r.emplace<Tanh>("t", {"input"});
  r.emplace<Add>("sum", {"t", "input", "input"});
  r.build(Shape{1, 3});
  Tensor<double> v(Shape{1, 3});
  v[0] = -1, v[1] = 0, v[2] = 2;
  const Tensor<double>& out = r.forward(v, Mode::Train);
  for (int i = 0; i < 3; ++i) EXPECT_DOUBLE_EQ(out[i], std::tanh(v[i]) + 2 * v[i]);
}

// f(x, θ) = Σ graph(x) ⊙ g for a fixed random g, in double; every input element and up to 40
// elements of every parameter against (f(v+ε) - f(v-ε)) / 2ε.
TEST(Graph, GradientsMatchFiniteDifferences) {
  Graph<double> g;
  // "stem" is read by three consumers: a residual branch, the Add, and the Concat.
  g.emplace<Conv2d>("stem", {"input"}, Conv2dOptions{.out_channels = 4, .kernel = 3, .pad = 1});
  g.emplace<Tanh>("act", {"stem"});
  g.emplace<Conv2d>("branch", {"act"}, Conv2dOptions{.out_channels = 4, .kernel = 3, .pad = 1});
  g.emplace<Add>("residual", {"branch", "stem"});
  g.emplace<Conv2d>("side", {"stem"}, Conv2dOptions{.out_channels = 2, .kernel = 1, .stride = 2});
  g.emplace<AvgPool2d>("down", {"residual"}, Pool2dOptions{.kernel = 2});
  g.emplace<Concat>("cat", {"down", "side"});
  g.emplace<Flatten>("flat", {"cat"});
  g.emplace<Linear>("head", {"flat"}, LinearOptions{.out_features = 3});
  const Shape input{2, 2, 6, 6};
  g.build(input, 11);
  Rng rng(4);
  Tensor<double> x = testing::random_normal<double>(input, rng);
  const Tensor<double> weights = testing::random_normal<double>(g.output_shape(), rng);
  auto f = [&] {
    const Tensor<double>& y = g.forward(x, Mode::Train);
    double sum = 0;
    for (int64_t i = 0; i < y.numel(); ++i) sum += y[i] * weights[i];
    return sum;
  };
  f();
  g.zero_grad();
  Tensor<double> dx;
  g.backward(weights, &dx);
  const double eps = 1e-6;
  auto check = [&](Tensor<double>& v, const Tensor<double>& grad, const std::string& what) {
    const int64_t step = std::max<int64_t>(1, v.numel() / 40);
    for (int64_t i = 0; i < v.numel(); i += step) {
      const double saved = v[i];
      v[i] = saved + eps;
      const double up = f();
      v[i] = saved - eps;
      const double down = f();
      v[i] = saved;
      const double numeric = (up - down) / (2 * eps);
      EXPECT_NEAR(grad[i], numeric, 1e-8 + 1e-6 * std::abs(numeric)) << what << "[" << i << "]";
    }
  };
  check(x, dx, "input");
  for (const Param<double>& p : g.params()) check(*p.value, *p.grad, p.name);
  EXPECT_EQ(g.params().size(), 8u);  // stem, branch, side, head: weight and bias each
}

}  // namespace
}  // namespace convnet
