// Predictor: the same outputs as the model's own eval forward, in batches of any size, with the
// training normalisation applied; and the same again, bit for bit, from eight threads calling at
// once, every context reading the template's weights in place (Model::build_shared), which no
// call writes.
#include <cstring>
#include <filesystem>
#include <latch>
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

// The same in a graph: a residual Add after a second BatchNorm, global average pooling.
const char* kGraphNet = R"(model graph input=input
node conv conv2d in=input out_channels=8 kernel=3 pad=1
node bn batchnorm2d in=conv
node relu relu in=bn
node conv2 conv2d in=relu out_channels=8 kernel=3 pad=1 bias=false
node bn2 batchnorm2d in=conv2
node add add in=bn2,relu
node pool global_avgpool2d in=add
node flat flatten in=pool
node fc linear in=flat out_features=4
)";

// A trained-looking model: random weights, BatchNorm statistics from a few training passes.
std::unique_ptr<Model<float>> trained_model(int64_t batch, const char* spec = kNet) {
  std::unique_ptr<Model<float>> m = parse_model_spec<float>(spec);
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

// A context is built for the batch of the call that makes it and grows with later, larger ones
// (up to max_batch), with the same answers as a context built for max_batch at once.
TEST(Predictor, AContextGrowsToTheBatchesItRuns) {
  const Tensor<float> one = pixels(1, 2), x = pixels(11, 1);
  const Predictor<float> grown(trained_model(3), kInfo, 4);
  const Tensor<float> first = grown.logits(one);  // the context: 1 sample
  const Tensor<float> got = grown.logits(x);      // 4 + 4 + 3 on the same context, grown
  EXPECT_EQ(grown.contexts(), 1u);
  const Predictor<float> sized(trained_model(3), kInfo, 4);
  const Tensor<float> expected = sized.logits(x);  // the context: 4 samples
  ASSERT_EQ(got.shape(), expected.shape());
  EXPECT_EQ(std::memcmp(got.data(), expected.data(), sizeof(float) * 44), 0);
  const Tensor<float> again = sized.logits(one);
  EXPECT_EQ(std::memcmp(first.data(), again.data(), sizeof(float) * 4), 0);
}

// Every value of a model's parameters and buffers, in order.
std::vector<float> weights_and_buffers(const Model<float>& m) {
  std::vector<float> all;
  for (const Param<float>& p : m.params())
    all.insert(all.end(), p.value->span().begin(), p.value->span().end());
  for (const Buffer<float>& b : m.buffers())
    all.insert(all.end(), b.value->span().begin(), b.value->span().end());
  return all;
}

bool same_bits(const Tensor<float>& a, const Tensor<float>& b) {
  return a.shape() == b.shape() &&
         std::memcmp(a.data(), b.data(), static_cast<size_t>(a.numel()) * sizeof(float)) == 0;
}

// Eight callers at once (released together), each running every input in turn several times:
// every answer is bit for bit the single caller's, and the template's weights and running
// statistics are bit for bit what they were (no Eval forward writes them).
TEST(Predictor, ServesEightThreadsAtOnceBitIdentically) {
  const testing::ThreadCount use(2);  // so the kernels' pool is in play, and contended
  for (const char* spec : {kNet, kGraphNet}) {
    std::unique_ptr<Model<float>> model = trained_model(8, spec);
    const Model<float>& shared = *model;  // owned by the predictor from here on
    const Predictor<float> predictor(std::move(model), kInfo, 8);
    const std::vector<float> weights = weights_and_buffers(shared);
    // The answers, one caller at a time.
    std::vector<Tensor<float>> inputs, expected;
    for (uint64_t i = 0; i < 6; ++i) {
      inputs.push_back(pixels(1 + static_cast<int64_t>(i), 100 + i));
      expected.push_back(predictor.logits(inputs.back()));
    }
    constexpr int kCallers = 8;
    std::vector<int> mismatches(kCallers, 0);
    std::latch start(kCallers);
    std::vector<std::thread> callers;
    for (int t = 0; t < kCallers; ++t)
      callers.emplace_back([&, t] {
        start.arrive_and_wait();
        for (int round = 0; round < 12; ++round) {
          const size_t i = static_cast<size_t>(t + round) % inputs.size();
          if (!same_bits(predictor.logits(inputs[i]), expected[i]))
            ++mismatches[static_cast<size_t>(t)];
        }
      });
    for (auto& c : callers) c.join();
    for (int t = 0; t < kCallers; ++t)
      EXPECT_EQ(mismatches[static_cast<size_t>(t)], 0) << "thread " << t << "\n" << spec;
    EXPECT_GE(predictor.contexts(), 1u);
    EXPECT_LE(predictor.contexts(), 8u);  // one per concurrent caller at most, then reused
    EXPECT_EQ(weights_and_buffers(shared), weights) << spec;
  }
}

// The contexts hold no copy of the weights: a change to the template's weights and running
// statistics shows in the answers of contexts made before it, from any thread.
TEST(Predictor, ContextsReadTheTemplatesWeights) {
  std::unique_ptr<Model<float>> model = trained_model(8, kGraphNet);
  Model<float>& shared = *model;  // owned by the predictor from here on
  const Predictor<float> predictor(std::move(model), kInfo, 8);
  const Tensor<float> x = pixels(5, 9);
  constexpr int kCallers = 4;
  auto call_at_once = [&] {
    std::vector<Tensor<float>> got(kCallers);
    std::latch start(kCallers);
    std::vector<std::thread> callers;
    for (int t = 0; t < kCallers; ++t)
      callers.emplace_back([&, t] {
        start.arrive_and_wait();
        got[static_cast<size_t>(t)] = predictor.logits(x);
      });
    for (auto& c : callers) c.join();
    return got;
  };
  const std::vector<Tensor<float>> before = call_at_once();
  const size_t contexts = predictor.contexts();

  std::unique_ptr<Model<float>> reference = trained_model(8, kGraphNet);
  for (Model<float>* m : {&shared, reference.get()}) {
    for (float& w : m->arena().values()) w *= 0.5f;
    for (const Buffer<float>& b : m->buffers())
      for (float& v : b.value->span()) v += 0.25f;
  }
  const Tensor<float> expected = reference->predict(normalised(x, kInfo));
  for (const Tensor<float>& got : call_at_once()) {
    EXPECT_FALSE(same_bits(got, before[0]));
    ASSERT_EQ(got.shape(), expected.shape());
    for (int64_t i = 0; i < got.numel(); ++i) EXPECT_FLOAT_EQ(got[i], expected[i]) << i;
  }
  for (const Tensor<float>& got : before) EXPECT_TRUE(same_bits(got, before[0]));
  EXPECT_GE(predictor.contexts(), contexts);
}

// build_shared: the replica's parameters and buffers are the source's own tensors' storage (and
// its arena a view of the source's), it has no gradients, computes the source's Eval outputs bit
// for bit, and refuses what would write the source's weights or needs gradients.
TEST(BuildShared, ViewsTheSourcesWeightsAndBuffersWithoutGradients) {
  for (const char* spec : {kNet, kGraphNet}) {
    SCOPED_TRACE(spec);
    std::unique_ptr<Model<float>> source = trained_model(6, spec);
    const std::vector<float> weights = weights_and_buffers(*source);
    std::unique_ptr<Model<float>> replica = parse_model_spec<float>(source->spec());
    replica->build_shared(Shape{3, 2, 9, 9}, *source);
    EXPECT_EQ(replica->weights_source(), source.get());
    EXPECT_EQ(source->weights_source(), nullptr);

    auto expect_views = [&] {
      ASSERT_EQ(replica->params().size(), source->params().size());
      for (size_t i = 0; i < source->params().size(); ++i) {
        const Param<float>& mine = replica->params()[i];
        const Param<float>& theirs = source->params()[i];
        EXPECT_EQ(mine.name, theirs.name);
        EXPECT_EQ(mine.value->shape(), theirs.value->shape()) << mine.name;
        EXPECT_EQ(mine.value->data(), theirs.value->data()) << mine.name;
        EXPECT_FALSE(mine.value->owns_storage()) << mine.name;
        EXPECT_EQ(mine.grad->numel(), 0) << mine.name;
      }
      ASSERT_EQ(replica->buffers().size(), source->buffers().size());
      for (size_t i = 0; i < source->buffers().size(); ++i)
        EXPECT_EQ(replica->buffers()[i].value->data(), source->buffers()[i].value->data())
            << replica->buffers()[i].name;
      EXPECT_EQ(replica->arena().values().data(), source->arena().values().data());
      EXPECT_EQ(replica->arena().size(), source->arena().size());
      EXPECT_TRUE(replica->arena().grads().empty());
    };
    expect_views();

    Rng rng(5);
    const Tensor<float> x = testing::random_normal<float>(Shape{3, 2, 9, 9}, rng);
    const Tensor<float> y = replica->forward(x, Mode::Eval);
    EXPECT_TRUE(same_bits(y, source->forward(x, Mode::Eval)));
    EXPECT_EQ(weights_and_buffers(*source), weights);

    const auto message = testing::error_of;
    EXPECT_EQ(message([&] { replica->forward(x, Mode::Train); }),
              "forward: Mode::Train on a model that runs on another model's weights "
              "(build_shared), which runs Mode::Eval only");
    EXPECT_EQ(message([&] { replica->backward(y); }),
              "backward: the model runs on another model's weights (build_shared) and has no "
              "gradients; train a model built with build()");
    EXPECT_NE(message([&] { replica->initialise(1); }).find("initialise() would overwrite"),
              std::string::npos);
    EXPECT_EQ(weights_and_buffers(*source), weights);

    // Rebuilt (for a larger batch), it stays on the source's weights.
    replica->build(Shape{7, 2, 9, 9});
    expect_views();
    EXPECT_TRUE(same_bits(replica->forward(x, Mode::Eval), y));
  }
}

TEST(BuildShared, RefusesAnotherSpec) {
  std::unique_ptr<Model<float>> source = trained_model(2);
  std::string narrower = kNet;  // the first convolution with 4 channels instead of 8
  narrower.replace(narrower.find("out_channels=8"), 14, "out_channels=4");
  std::unique_ptr<Model<float>> other = parse_model_spec<float>(narrower);
  EXPECT_EQ(testing::error_of([&] {
              other->build_shared(Shape{2, 2, 9, 9}, *source);
            }),
            "build_shared: parameter 0 is 'layer0.weight' 4x2x3x3, the source's "
            "'layer0.weight' 8x2x3x3");
  std::unique_ptr<Model<float>> unbuilt = parse_model_spec<float>(kNet);
  EXPECT_EQ(testing::error_of([&] {
              unbuilt->build_shared(Shape{2, 2, 9, 9}, *unbuilt);
            }),
            "build_shared: the source must be another model, and built");
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
    m->set_keep_intermediates(true);
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
