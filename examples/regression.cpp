// Regression from C++: the rotation task (tools/make_rotation_set.py: Fashion-MNIST turned by a
// random angle, the target the angle) learned by LeNet with one output, MSE on normalised
// targets, then the test set's MAE in degrees and the worst predictions.
//   usage: regression [ROTATION_DIR]   (tools/make_rotation_set.py --out ROTATION_DIR first)
#include <convnet/convnet.hpp>
#include <cstdio>

int main(int argc, char** argv) {
  using namespace convnet;
  const std::string dir = argc > 1 ? argv[1] : "/tmp/rotation";
  try {
    Dataset train = load_mnist_split(dir, "train"), test = load_mnist_split(dir, "t10k");
    // Targets standardised by the training set's statistics; the figures come back in degrees.
    const MeanStddev stats = train.target_stats();
    train.set_target_normalization(stats.mean, stats.stddev);
    test.set_target_normalization(stats.mean, stats.stddev);
    std::unique_ptr<Model<float>> model = make_model<float>("lenet", train.target_size());
    model->build(train.shape().with_batch(64), /*seed=*/1);
    Adam<float> adam({.lr = 0.001});
    MeanSquaredError<float> mse;  // or L1Loss, HuberLoss(delta)
    FitOptions recipe{.epochs = 5, .batch = 64, .seed = 1};
    recipe.schedule.kind = LrSchedule::Kind::Cosine;
    FitCallbacks callbacks;
    callbacks.on_epoch_end = [](const EpochStats& e) {
      std::printf("epoch %d  test MAE %.3f degrees  R2 %.4f\n", e.epoch,
                  e.test_regression.mean_mae, e.test_regression.mean_r2);
      return true;
    };
    const FitResult result = fit(*model, train, &test, mse, adam, recipe, callbacks);
    const RegressionReport report =
        evaluate_regression(*model, test, mse, /*reconstruct=*/false, /*worst=*/3);
    for (const RegressionReport::Example& e : report.worst)
      std::printf("test image %lld: predicted %.1f, true %.1f degrees\n",
                  static_cast<long long>(e.index), e.predicted[0], e.target[0]);
    return result.epochs.empty() ? 1 : 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "regression: error: %s\n", e.what());
    return 1;
  }
}
