// A small CNN trained on random data: the README's API example, built in CI.
#include <convnet/convnet.hpp>
#include <cstdio>

int main() {
  using namespace convnet;
  Sequential<float> net;
  net.emplace<Conv2d>(Conv2dOptions{.out_channels = 8, .kernel = 3, .pad = 1});
  net.emplace<ReLU>();
  net.emplace<MaxPool2d>(Pool2dOptions{.kernel = 2});
  net.emplace<Flatten>();
  net.emplace<Linear>(LinearOptions{.out_features = 10});
  net.build(Shape{16, 1, 12, 12}, /*seed=*/42);  // batch 16 of 1x12x12 images
  std::printf("%s", net.summary().c_str());

  Tensor<float> x(net.input_shape(), 0.5f);
  std::vector<int32_t> labels(16, 3);
  SoftmaxCrossEntropy<float> loss;
  Sgd<float> sgd({.lr = 0.1, .momentum = 0.9});
  for (int step = 1; step <= 5; ++step) {
    StepResult r = net.train_step(x, {.labels = labels}, loss, sgd);
    std::printf("step %d: loss %.4f, %lld/16 correct\n", step, r.loss, (long long)r.correct);
  }
}
