// For the ONNX export test (tests/onnx/test_onnx.py): the input tensor that an exported graph
// takes for some image files, as one JSON object on stdout:
//   {"shape": [N, C, H, W], "files": [...], "input": [N·C·H·W floats]}
// It is what `convnet predict` feeds its model before normalising: each image read in the
// checkpoint's channels, resized to its height and width and scaled to [0, 1], by the same
// calls (read_image, Predictor::to_input).
// Usage: onnx_inputs CHECKPOINT IMAGE...
#include <cstdio>
#include <string>
#include <vector>

#include "convnet/convnet.hpp"
#include "convnet/predictor.hpp"

int main(int argc, char** argv) {
  using namespace convnet;
  if (argc < 3) {
    std::fprintf(stderr, "usage: onnx_inputs CHECKPOINT IMAGE...\n");
    return 2;
  }
  try {
    const Predictor<float> predictor(argv[1]);
    const Shape sample = predictor.sample_shape();
    CONVNET_CHECK(sample.rank() == 3, "onnx_inputs: the model does not take images");
    std::vector<Image> images;
    for (int i = 2; i < argc; ++i) images.push_back(read_image(argv[i], sample[0]));
    const Tensor<float> input = predictor.to_input(images);
    std::printf("{\"shape\": [%zu, %lld, %lld, %lld], \"files\": [", images.size(),
                static_cast<long long>(sample[0]), static_cast<long long>(sample[1]),
                static_cast<long long>(sample[2]));
    for (int i = 2; i < argc; ++i) std::printf(i > 2 ? ", \"%s\"" : "\"%s\"", argv[i]);
    std::printf("], \"input\": [");
    for (int64_t i = 0; i < input.numel(); ++i)
      std::printf(i ? ", %.9g" : "%.9g", static_cast<double>(input[i]));
    std::printf("]}\n");
  } catch (const Error& e) {
    std::fprintf(stderr, "onnx_inputs: %s\n", e.what());
    return 1;
  }
  return 0;
}
