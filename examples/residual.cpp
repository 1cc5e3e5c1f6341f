// A residual network as a Graph: nodes are named, read other nodes by name, and Add merges a
// block's output with its input. Trained for a few steps on random data.
#include <convnet/convnet.hpp>
#include <cstdio>

int main() {
  using namespace convnet;
  Graph<float> net;  // its input node is called "input"
  net.emplace<Conv2d>("stem", {"input"}, Conv2dOptions{.out_channels = 8, .kernel = 3, .pad = 1});
  net.emplace<ReLU>("stem.relu", {"stem"});
  // block(x) = bn(conv(relu(bn(conv(x))))), then relu(block(x) + x)
  net.emplace<Conv2d>("conv1", {"stem.relu"},
                      Conv2dOptions{.out_channels = 8, .kernel = 3, .pad = 1, .bias = false});
  net.emplace<BatchNorm2d>("bn1", {"conv1"});
  net.emplace<ReLU>("relu1", {"bn1"});
  net.emplace<Conv2d>("conv2", {"relu1"},
                      Conv2dOptions{.out_channels = 8, .kernel = 3, .pad = 1, .bias = false});
  net.emplace<BatchNorm2d>("bn2", {"conv2"});
  net.emplace<Add>("residual", {"bn2", "stem.relu"});
  net.emplace<ReLU>("relu2", {"residual"});
  net.emplace<GlobalAvgPool2d>("pool", {"relu2"});
  net.emplace<Flatten>("flatten", {"pool"});
  net.emplace<Linear>("fc", {"flatten"}, LinearOptions{.out_features = 10});
  net.build(Shape{16, 1, 12, 12}, /*seed=*/42);
  std::printf("%s", net.summary().c_str());

  Rng rng(7);
  Tensor<float> x(net.input_shape());
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(rng.normal());
  std::vector<int32_t> labels(16);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int32_t>(i % 10);
  SoftmaxCrossEntropy<float> loss;
  Adam<float> adam({.lr = 0.01});
  for (int step = 1; step <= 5; ++step) {
    StepResult r = net.train_step(x, {.labels = labels}, loss, adam);
    std::printf("step %d: loss %.4f, %lld/16 correct\n", step, r.loss, (long long)r.correct);
  }
}
