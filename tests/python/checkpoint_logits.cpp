// For the PyTorch check (tests/python/test_checkpoint_torch.py): builds a model (built-in name or
// spec file) for 1x28x28 inputs, takes three Adam steps on random data so that the weights,
// BatchNorm statistics and optimizer state are not their initial values, saves a checkpoint,
// then writes a fixed random input and the model's evaluation-mode logits to a second file.
// Usage: checkpoint_logits MODEL CHECKPOINT OUTPUT
#include <cstdio>

#include "convnet/convnet.hpp"

int main(int argc, char** argv) {
  using namespace convnet;
  if (argc != 4) {
    std::fprintf(stderr, "usage: checkpoint_logits MODEL CHECKPOINT OUTPUT\n");
    return 2;
  }
  try {
    std::unique_ptr<Model<float>> model = load_model<float>(argv[1]);
    model->build(Shape{4, 1, 28, 28}, 5);
    Rng rng(9);
    Tensor<float> x(model->input_shape());
    std::vector<int32_t> labels(4);
    SoftmaxCrossEntropy<float> loss;
    Adam<float> adam({.lr = 0.01});
    for (int step = 0; step < 3; ++step) {
      for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(rng.normal());
      for (auto& l : labels) l = static_cast<int32_t>(rng.below(10));
      model->train_step(x, {.labels = labels}, loss, adam);
    }
    save_checkpoint(argv[2], *model, &adam, {.epoch = 1, .step = 0, .seed = 5, .extra = {}, .input = {}});

    // A fresh load, so the logits come from what the file holds.
    Checkpoint<float> c = load_checkpoint<float>(argv[2]);
    for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(rng.normal());
    const Tensor<float>& logits = c.model->predict(x);
    auto entry = [](const char* name, const Tensor<float>& t) {
      SafeTensor s{name, "F32", {}, {}};
      for (int d = 0; d < t.shape().rank(); ++d) s.shape.push_back(t.dim(d));
      s.bytes.assign(reinterpret_cast<const char*>(t.data()),
                     sizeof(float) * static_cast<size_t>(t.numel()));
      return s;
    };
    SafeTensors out;
    out.tensors = {entry("input", x), entry("logits", logits)};
    write_safetensors(argv[3], out);
  } catch (const Error& e) {
    std::fprintf(stderr, "checkpoint_logits: %s\n", e.what());
    return 1;
  }
  return 0;
}
