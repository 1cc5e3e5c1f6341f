// For the ONNX export test (tests/onnx/test_onnx.py): the input tensor that the exported graph
// takes for some image files, and convnet's own logits for them, as one JSON object on stdout:
//   {"shape": [N, C, H, W], "files": [...], "input": [N·C·H·W floats], "logits": [N·K floats]}
// The input is what `convnet predict` starts from: each image converted to the checkpoint's
// channels, resized to its height and width, and scaled to [0, 1]; the logits are the
// checkpoint's model in evaluation mode on that input after its normalisation, if any.
// Usage: onnx_inputs CHECKPOINT IMAGE...
#include <cstdio>
#include <string>

#include "convnet/convnet.hpp"

namespace {

void print_floats(const char* key, const float* values, int64_t count) {
  std::printf("\"%s\": [", key);
  for (int64_t i = 0; i < count; ++i)
    std::printf(i ? ", %.9g" : "%.9g", static_cast<double>(values[i]));
  std::printf("]");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace convnet;
  if (argc < 3) {
    std::fprintf(stderr, "usage: onnx_inputs CHECKPOINT IMAGE...\n");
    return 2;
  }
  try {
    const int64_t count = argc - 2;
    Checkpoint<float> checkpoint = load_checkpoint<float>(argv[1], count);
    const Shape shape = checkpoint.model->input_shape();
    CONVNET_CHECK(shape.rank() == 4, "onnx_inputs: the model does not take images");
    const int64_t C = shape[1], H = shape[2], W = shape[3], plane = H * W;
    Tensor<float> pixels(shape), normalized(shape);
    const InputInfo info;  // until checkpoints record it (TrainingState::input)
    for (int64_t n = 0; n < count; ++n) {
      const Image image = resize_image(read_image(argv[n + 2], C), H, W);
      for (int64_t c = 0; c < C; ++c)
        for (int64_t k = 0; k < plane; ++k) {
          const int64_t at = (n * C + c) * plane + k;
          pixels[at] =
              static_cast<float>(image.pixels[static_cast<size_t>(c * plane + k)]) / 255.0f;
          normalized[at] = info.mean.empty() ? pixels[at]
                                             : (pixels[at] - info.mean[static_cast<size_t>(c)]) /
                                                   info.stddev[static_cast<size_t>(c)];
        }
    }
    const Tensor<float>& logits = checkpoint.model->predict(normalized);
    std::printf("{\"shape\": [%lld, %lld, %lld, %lld], \"files\": [", static_cast<long long>(count),
                static_cast<long long>(C), static_cast<long long>(H), static_cast<long long>(W));
    for (int64_t n = 0; n < count; ++n) std::printf(n ? ", \"%s\"" : "\"%s\"", argv[n + 2]);
    std::printf("], ");
    print_floats("input", pixels.data(), pixels.numel());
    std::printf(", ");
    print_floats("logits", logits.data(), logits.numel());
    std::printf("}\n");
  } catch (const Error& e) {
    std::fprintf(stderr, "onnx_inputs: %s\n", e.what());
    return 1;
  }
  return 0;
}
