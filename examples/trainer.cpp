// The run `convnet train` makes, from C++: LeNet on Fashion-MNIST with a validation split,
// early stopping, the best and the last checkpoint, and a CSV log (the README's Trainer example,
// built in CI).   usage: trainer [FASHION_MNIST_DIR]
#include <convnet/convnet.hpp>
#include <cstdio>

int main(int argc, char** argv) {
  using namespace convnet;
  const std::string dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
  try {
    const Dataset data = load_mnist_split(dir, "train"), test = load_mnist_split(dir, "t10k");
    const TrainValidation parts = split_validation(data, /*fraction=*/0.1, /*seed=*/1);
    std::unique_ptr<Model<float>> model = make_model<float>("lenet", data.classes());
    model->build(data.shape().with_batch(64), /*seed=*/1);
    Sgd<float> sgd({.lr = 0.05, .momentum = 0.9});
    SoftmaxCrossEntropy<float> loss;
    FitOptions recipe{.epochs = 5, .batch = 64, .seed = 1, .validation = &parts.validation};
    recipe.schedule.kind = LrSchedule::Kind::Cosine;  // annealed over the 5 epochs
    Trainer trainer(*model, sgd, loss, parts.train, &test,
                    {.fit = recipe,
                     .save = "lenet.safetensors",
                     .save_best = "lenet-best.safetensors",
                     .log = "lenet.csv",
                     .early_stop = {.patience = 2}});
    const TrainerResult result = trainer.run();  // one line per epoch, as convnet train prints
    return result.end == TrainerResult::End::Diverged ? 1 : 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "trainer: error: %s\n", e.what());
    return 1;
  }
}
