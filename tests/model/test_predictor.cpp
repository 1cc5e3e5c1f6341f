// Predictor: the same outputs as the model's own eval forward, in batches of any size, with the
// training normalisation applied; and the same again from several threads calling at once.
#include <filesystem>
#include <thread>

#include "support/testing.hpp"

namespace convnet {
namespace {

// Convolution (Winograd-sized, so the fast kernels and the pool run), BatchNorm with non-trivial
// running statistics, Dropout (identity in eval), pooling and a linear head.
const char* kNet = R"(model sequential
layer conv2d out_channels=8 kernel=3 pad=1
layer batchnorm2d
layer relu
layer conv2d out_channels=8 kernel=3 pad=1
layer relu
layer dropout p=0.5
layer maxpool2d kernel=2
layer flatten
layer linear out_features=4
)";

// A trained-looking model: random weights, BatchNorm statistics from a few training passes.
std::unique_ptr<Model<float>> trained_model(int64_t batch) {
  std::unique_ptr<Model<float>> m = parse_model_spec<float>(kNet);
  m->build(Shape{batch, 2, 9, 9}, 7);
  Rng rng(3);
  for (int i = 0; i < 3; ++i)
    m->forward(testing::random_normal<float>(Shape{batch, 2, 9, 9}, rng, 2.0), Mode::Train);
  return m;
}

// Pixels in [0, 1], as loaders give them.
Tensor<float> pixels(int64_t n, uint64_t seed) {
  Rng rng(seed);
  Tensor<float> x(Shape{n, 2, 9, 9});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(rng.uniform(0, 1));
  return x;
}

// What training feeds the model: (v − mean)·(1/stddev) per channel.
Tensor<float> normalised(Tensor<float> x, const InputInfo& info) {
  const int64_t plane = x.dim(2) * x.dim(3);
  for (int64_t n = 0; n < x.dim(0); ++n)
    for (int64_t c = 0; c < x.dim(1); ++c) {
      float* p = x.data() + (n * x.dim(1) + c) * plane;
      const float inv = 1.0f / info.stddev[static_cast<size_t>(c)];
      for (int64_t i = 0; i < plane; ++i) p[i] = (p[i] - info.mean[static_cast<size_t>(c)]) * inv;
    }
  return x;
}

const InputInfo kInfo{{"cat", "dog", "bird", "fish"}, {0.4f, 0.6f}, {0.2f, 0.3f}};

TEST(Predictor, MatchesTheModelsEvalForwardInAnyBatchSize) {
  std::unique_ptr<Model<float>> reference = trained_model(11);
  const Tensor<float> x = pixels(11, 1);
  const Tensor<float> expected = reference->predict(normalised(x, kInfo));

  // max_batch 4: 11 samples run as 4 + 4 + 3 through a replica of the model.
  const Predictor<float> predictor(trained_model(11), kInfo, 4);
  EXPECT_EQ(predictor.sample_shape(), (Shape{2, 9, 9}));
  EXPECT_EQ(predictor.classes(), 4);
  const Tensor<float> got = predictor.logits(x);
  ASSERT_EQ(got.shape(), (Shape{11, 4}));
  for (int64_t i = 0; i < got.numel(); ++i) EXPECT_FLOAT_EQ(got[i], expected[i]) << i;

  const Tensor<float> p = predictor.probabilities(x);
  for (int64_t r = 0; r < 11; ++r) {
    double sum = 0;
    for (int64_t k = 0; k < 4; ++k) sum += p[r * 4 + k];
    EXPECT_NEAR(sum, 1.0, 1e-6);
  }
  const std::vector<Prediction> top = predictor.top(p, 2);
  ASSERT_EQ(top.size(), 11u);
  for (int64_t r = 0; r < 11; ++r) {
    const auto& t = top[static_cast<size_t>(r)].top;
    ASSERT_EQ(t.size(), 2u);
    int64_t arg_max = 0;
    for (int64_t k = 1; k < 4; ++k)
      if (got[r * 4 + k] > got[r * 4 + arg_max]) arg_max = k;
    EXPECT_EQ(t[0].label, arg_max);
    EXPECT_EQ(t[0].name, kInfo.class_names[static_cast<size_t>(t[0].label)]);
    EXPECT_GE(t[0].probability, t[1].probability);
    EXPECT_FLOAT_EQ(static_cast<float>(t[1].probability), p[r * 4 + t[1].label]);
  }
}

TEST(Predictor, ServesSeveralThreadsAtOnce) {
  const testing::ThreadCount use(2);  // so the kernels' pool is in play, and contended
  const Predictor<float> predictor(trained_model(8), kInfo, 8);
  // The answers, one caller at a time.
  std::vector<Tensor<float>> inputs, expected;
  for (uint64_t i = 0; i < 6; ++i) {
    inputs.push_back(pixels(1 + static_cast<int64_t>(i), 100 + i));
    expected.push_back(predictor.logits(inputs.back()));
  }
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&, t] {
      for (int round = 0; round < 30; ++round) {
        const size_t i = static_cast<size_t>(t + round) % inputs.size();
        const Tensor<float> got = predictor.logits(inputs[i]);
        for (int64_t j = 0; j < got.numel(); ++j)
          if (got[j] != expected[i][j]) ++mismatches[static_cast<size_t>(t)];
      }
    });
  for (auto& c : callers) c.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(mismatches[static_cast<size_t>(t)], 0) << "thread " << t;
  EXPECT_GE(predictor.contexts(), 1u);
  EXPECT_LE(predictor.contexts(), 4u);  // one per concurrent caller at most, then reused
}

TEST(Predictor, ConvertsImagesAndRejectsWhatDoesNotFit) {
  std::unique_ptr<Model<float>> grey = parse_model_spec<float>(
      "model sequential\nlayer conv2d out_channels=2 kernel=3\nlayer flatten\n"
      "layer linear out_features=4\n");
  grey->build(Shape{2, 1, 9, 9}, 1);
  const Predictor<float> predictor(std::move(grey), {}, 2);
  Image small{1, 3, 3, std::vector<uint8_t>(9, 255)};
  const Tensor<float> x = predictor.to_input({small});
  ASSERT_EQ(x.shape(), (Shape{1, 1, 9, 9}));
  for (int64_t i = 0; i < x.numel(); ++i) EXPECT_FLOAT_EQ(x[i], 1.0f);  // resized, scaled
  const Prediction p = predictor.top(predictor.probabilities(x), 10).front();
  EXPECT_EQ(p.top.size(), 4u);                               // k capped at the classes
  EXPECT_EQ(p.top[0].name, std::to_string(p.top[0].label));  // no names recorded

  const auto message = testing::error_of;
  EXPECT_EQ(message([&] {
              predictor.to_input({Image{3, 9, 9, std::vector<uint8_t>(243)}});
            }),
            "predict: image 0 has 3 channels, the model takes 1");
  EXPECT_EQ(message([&] {
              predictor.logits(Tensor<float>(Shape{1, 1, 8, 9}));
            }),
            "predict: input 1x1x8x9 does not match the model's 1x1x9x9");
  EXPECT_EQ(message([&] {
              Predictor<float>(trained_model(2), {{"a", "b"}, {}, {}});
            }),
            "predictor: 2 class names for 4 classes");
}

// A checkpoint whose class names do not match its model's outputs is named, with both counts
// (convnet predict shows this message as it is).
TEST(Predictor, ClassNameMismatchNamesTheCheckpoint) {
  const std::string path =
      (std::filesystem::temp_directory_path() /
       ("convnet_predictor_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
        ".safetensors"))
          .string();
  TrainingState state;
  state.input.class_names = {"cat", "dog"};  // for a model of 4 outputs
  save_checkpoint<float>(path, *trained_model(2), nullptr, state);
  const std::string expected =
      path +
      ": the checkpoint records 2 class names (input.class_names) but its model has 4 outputs: "
      "one name per output is needed";
  EXPECT_EQ(testing::error_of([&] { Predictor<float>{path}; }), expected);
  // The same from a checkpoint loaded first (what convnet predict does, to print its notes).
  EXPECT_EQ(testing::error_of([&] { Predictor<float>{load_checkpoint<float>(path)}; }), expected);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace convnet

namespace convnet {
namespace {

// trace(): every node's output and output gradient, as forward and backward left them.
TEST(ModelTrace, ShowsEachNodesOutputAndGradient) {
  for (const char* spec : {kNet,
                           "model graph input=input\n"
                           "node a conv2d in=input out_channels=2 kernel=3 pad=1\n"
                           "node b relu in=a\n"
                           "node sum add in=a,b\n"
                           "node flat flatten in=sum\n"
                           "node fc linear in=flat out_features=3\n"}) {
    std::unique_ptr<Model<float>> m = parse_model_spec<float>(spec);
    m->build(Shape{3, 2, 9, 9}, 1);
    Rng rng(2);
    const Tensor<float> x = testing::random_normal<float>(Shape{3, 2, 9, 9}, rng);
    const Tensor<float>& y = m->forward(x, Mode::Train);
    EXPECT_EQ(m->trace().back().grad_output, nullptr);  // no backward yet
    const Tensor<float> dy = testing::random_normal<float>(y.shape(), rng);
    m->backward(dy);
    const std::vector<NodeTrace<float>> nodes = m->trace();
    ASSERT_FALSE(nodes.empty());
    EXPECT_EQ(nodes.back().output, &y);        // the output node's y is what forward returned
    EXPECT_EQ(nodes.back().grad_output, &dy);  // and its gradient the dy given to backward
    for (const NodeTrace<float>& n : nodes) {
      ASSERT_NE(n.grad_output, nullptr) << n.name;
      EXPECT_EQ(n.grad_output->shape(), n.output->shape()) << n.name;
      EXPECT_FALSE(n.description.empty());
    }
    // The Add node has no layer; the others have theirs.
    const bool graph = std::string(spec).find("graph") != std::string::npos;
    if (graph) {
      EXPECT_EQ(nodes[2].name, "sum");
      EXPECT_EQ(nodes[2].layer, nullptr);
      EXPECT_EQ(nodes[2].description, "add");
      // a feeds b and sum: its gradient is the sum of both consumers' (relu passes where a > 0).
      const Tensor<float>& a = *nodes[0].output;
      const Tensor<float>& da = *nodes[0].grad_output;
      const Tensor<float>& dsum = *nodes[2].grad_output;
      for (int64_t i = 0; i < a.numel(); ++i)
        EXPECT_FLOAT_EQ(da[i], dsum[i] * (a[i] > 0 ? 2.0f : 1.0f)) << i;
    } else {
      EXPECT_EQ(nodes[0].name, "layer0");
      EXPECT_EQ(nodes[0].layer, &dynamic_cast<Sequential<float>&>(*m).layer(0));
    }
  }
}

}  // namespace
}  // namespace convnet
