// Trainer: fit() with a run's side effects. It trains exactly as fit() does; a process that is not
// the writer trains and decides alike but prints and writes nothing; early stopping, a requested
// stop, divergence and the files (checkpoints, log) behave as convnet train documents.
#include <fstream>
#include <limits>
#include <sstream>

#include "support/testing.hpp"

namespace convnet {
namespace {

std::unique_ptr<Sequential<float>> small_cnn() {
  auto m = std::make_unique<Sequential<float>>();
  m->emplace<Conv2d>(Conv2dOptions{.out_channels = 4, .kernel = 3, .pad = 1});
  m->emplace<ReLU>();
  m->emplace<MaxPool2d>(Pool2dOptions{.kernel = 2});
  m->emplace<Flatten>();
  m->emplace<Linear>(LinearOptions{.out_features = 4});
  m->build(Shape{8, 1, 8, 8}, 5);
  return m;
}

std::string weight_bytes(const Model<float>& m) {
  std::string bytes;
  for (const auto& p : m.params())
    bytes.append(reinterpret_cast<const char*>(p.value->data()),
                 static_cast<size_t>(p.value->numel()) * sizeof(float));
  return bytes;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct TrainingRun {
  explicit TrainingRun(double lr = 0.05) : sgd({.lr = lr, .momentum = 0.9}) {}
  std::unique_ptr<Sequential<float>> model = small_cnn();
  Sgd<float> sgd;
  SoftmaxCrossEntropy<float> loss;
  std::ostringstream out, err;
  TrainerResult result;

  void train(const Dataset& train, const Dataset* test, TrainerOptions options) {
    options.out = &out;
    options.err = &err;
    Trainer trainer(*model, sgd, loss, train, test, std::move(options));
    result = trainer.run();
  }
};

FitOptions recipe(int epochs) { return {.epochs = epochs, .batch = 8, .seed = 3}; }

TEST(Trainer, TrainsExactlyAsFit) {
  const Dataset train = testing::quadrant_images(40, 1), test = testing::quadrant_images(16, 2);
  auto reference = small_cnn();
  Sgd<float> sgd({.lr = 0.05, .momentum = 0.9});
  SoftmaxCrossEntropy<float> loss;
  const FitResult fitted = fit(*reference, train, &test, loss, sgd, recipe(3));

  TrainingRun run;
  run.train(train, &test, {.fit = recipe(3)});
  EXPECT_EQ(run.result.end, TrainerResult::End::Finished);
  ASSERT_EQ(run.result.fit.epochs.size(), 3u);
  EXPECT_EQ(run.result.fit.epochs[2].test_acc, fitted.epochs[2].test_acc);
  EXPECT_EQ(weight_bytes(*run.model), weight_bytes(*reference));
  // One line per epoch, each naming it.
  EXPECT_NE(run.out.str().find("epoch 1/3  train loss"), std::string::npos) << run.out.str();
  EXPECT_NE(run.out.str().find("epoch 3/3  train loss"), std::string::npos) << run.out.str();
}

TEST(Trainer, FilesLogAndCheckpointsAreWritten) {
  const testing::TempDir dir;
  const Dataset data = testing::quadrant_images(48, 1), test = testing::quadrant_images(16, 2);
  const TrainValidation parts = split_validation(data, 0.25, 1);
  TrainingRun run;
  FitOptions fit = recipe(4);
  fit.validation = &parts.validation;
  run.train(parts.train, &test,
            {.fit = fit,
             .save = dir.path("last.safetensors"),
             .save_every = 2,
             .save_best = dir.path("best.safetensors"),
             .log = dir.path("log.csv"),
             .recipe = {{"model", "small"}}});
  ASSERT_EQ(run.result.end, TrainerResult::End::Finished);
  EXPECT_EQ(run.result.saved, dir.path("last.safetensors"));
  const std::string log = read_text(dir.path("log.csv"));
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 5) << log;  // the header and 4 rows
  EXPECT_EQ(log.rfind("epoch,learning_rate,", 0), 0u) << log;
  const Checkpoint<float> last = load_checkpoint<float>(dir.path("last.safetensors"));
  EXPECT_EQ(last.state.epoch, 4);
  EXPECT_EQ(last.state.extra.at("model"), "small");
  EXPECT_EQ(weight_bytes(*last.model), weight_bytes(*run.model));
  // The best checkpoint records the best validation accuracy of the epochs it has seen.
  const Checkpoint<float> best = load_checkpoint<float>(dir.path("best.safetensors"));
  double best_acc = -1;
  for (const EpochStats& e : run.result.fit.epochs) best_acc = std::max(best_acc, e.val_acc);
  EXPECT_EQ(std::strtod(best.state.extra.at("best_val_acc").c_str(), nullptr), best_acc);
  EXPECT_NE(run.out.str().find("best val acc"), std::string::npos);
}

TEST(Trainer, EarlyStoppingEndsTheRunAfterPatienceEpochs) {
  const Dataset data = testing::quadrant_images(48, 1);
  const TrainValidation parts = split_validation(data, 0.25, 1);
  TrainingRun run;
  FitOptions fit = recipe(10);
  fit.validation = &parts.validation;
  // No change counts as an improvement after the first epoch's.
  run.train(parts.train, nullptr, {.fit = fit, .early_stop = {.patience = 2, .min_delta = 1e9}});
  EXPECT_EQ(run.result.end, TrainerResult::End::EarlyStopped);
  EXPECT_EQ(run.result.fit.completed_epochs, 3);
  EXPECT_NE(run.out.str().find("early stop after epoch 3: val_loss has not improved for 2 epochs"),
            std::string::npos)
      << run.out.str();
}

TEST(Trainer, AStoppedRunSavesItsStateAndResumesExactly) {
  const testing::TempDir dir;
  const Dataset train = testing::quadrant_images(40, 1);  // 5 batches an epoch
  TrainingRun unbroken;
  unbroken.train(train, nullptr, {.fit = recipe(2)});

  TrainingRun stopped;
  int polls = 0;  // after each batch and each epoch: the 8th is after batch 2 of epoch 2
  stopped.train(
      train, nullptr,
      {.fit = recipe(2),
       .save = dir.path("run.safetensors"),
       .stop_requested = [&]() -> const char* { return ++polls == 8 ? "a test" : nullptr; },
       .resume_hint = [](const std::string& path,
                         std::optional<double>) { return "resume " + path; }});
  ASSERT_EQ(stopped.result.end, TrainerResult::End::Stopped);
  EXPECT_STREQ(stopped.result.stop_reason, "a test");
  EXPECT_EQ(stopped.result.fit.completed_epochs, 1);
  EXPECT_EQ(stopped.result.fit.completed_steps, 2);
  EXPECT_NE(stopped.err.str().find("interrupted by a test after epoch 1 and 2 batches of epoch 2: "
                                   "saved " +
                                   dir.path("run.safetensors") + " (continue with: resume " +
                                   dir.path("run.safetensors") + ")"),
            std::string::npos)
      << stopped.err.str();

  Checkpoint<float> checkpoint = load_checkpoint<float>(dir.path("run.safetensors"));
  Sgd<float> sgd({.lr = 0.05, .momentum = 0.9});
  restore_optimizer(checkpoint, sgd);
  SoftmaxCrossEntropy<float> loss;
  checkpoint.model->build(Shape{8, 1, 8, 8});
  FitOptions rest = recipe(2);
  rest.completed_epochs = static_cast<int>(checkpoint.state.epoch);
  rest.completed_steps = checkpoint.state.step;
  std::ostringstream quiet;
  Trainer resumed(*checkpoint.model, sgd, loss, train, nullptr,
                  {.fit = rest, .out = &quiet, .err = &quiet});
  EXPECT_EQ(resumed.run().end, TrainerResult::End::Finished);
  EXPECT_EQ(weight_bytes(*checkpoint.model), weight_bytes(*unbroken.model));
}

TEST(Trainer, ANonWriterTrainsAndDecidesAlikeButPrintsAndWritesNothing) {
  const testing::TempDir dir;
  const Dataset data = testing::quadrant_images(48, 1), test = testing::quadrant_images(16, 2);
  const TrainValidation parts = split_validation(data, 0.25, 1);
  FitOptions fit = recipe(10);
  fit.validation = &parts.validation;
  auto options = [&](bool writer) {
    return TrainerOptions{.fit = fit,
                          .save = dir.path(writer ? "w.safetensors" : "n.safetensors"),
                          .save_best = dir.path(writer ? "wb.safetensors" : "nb.safetensors"),
                          .log = dir.path(writer ? "w.jsonl" : "n.jsonl"),
                          .report = dir.path(writer ? "w-report" : "n-report"),
                          .early_stop = {.patience = 2, .min_delta = 1e9},
                          .writer = writer};
  };
  TrainingRun writer, other;
  writer.train(parts.train, &test, options(true));
  other.train(parts.train, &test, options(false));
  EXPECT_EQ(other.result.end, writer.result.end);
  EXPECT_EQ(other.result.fit.completed_epochs, writer.result.fit.completed_epochs);
  EXPECT_EQ(weight_bytes(*other.model), weight_bytes(*writer.model));
  EXPECT_FALSE(writer.out.str().empty());
  EXPECT_EQ(other.out.str(), "");
  EXPECT_EQ(other.err.str(), "");
  for (const char* file : {"w.safetensors", "wb.safetensors", "w.jsonl", "w-report/index.html"})
    EXPECT_TRUE(std::filesystem::exists(dir.path(file))) << file;
  for (const char* file : {"n.safetensors", "nb.safetensors", "n.jsonl", "n-report"})
    EXPECT_FALSE(std::filesystem::exists(dir.path(file))) << file;
}

TEST(Trainer, QuietPrintsOnlyTheLastEpochsLine) {
  const Dataset train = testing::quadrant_images(24, 1);
  TrainingRun run;
  run.train(train, nullptr, {.fit = recipe(3), .quiet = true});
  const std::string out = run.out.str();
  EXPECT_EQ(out.rfind("epoch 3/3  train loss", 0), 0u) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

// Passes x through, but its `nan_at`-th forward pass in training mode outputs NaN: a loss that
// breaks at a known step while the weights are still good.
class NanAt final : public Layer<float> {
 public:
  explicit NanAt(int nan_at) : nan_at_(nan_at) {}
  std::string kind() const override { return "nan_at"; }
  Shape build(const Shape& input) override { return input; }
  void forward(const Tensor<float>& x, Tensor<float>& y, Mode mode) override {
    y.resize(x.shape());
    std::copy(x.data(), x.data() + x.numel(), y.data());
    if (mode == Mode::Train && ++calls_ == nan_at_) y[0] = std::numeric_limits<float>::quiet_NaN();
  }
  void backward(const Tensor<float>&, const Tensor<float>&, const Tensor<float>& dy,
                Tensor<float>* dx) override {
    if (dx)
      for (int64_t i = 0; i < dy.numel(); ++i) (*dx)[i] += dy[i];
  }

 private:
  int nan_at_, calls_ = 0;
};

// 4 classes of 1x8x8 images written as PNG files (quadrant_images, to bytes), listed.
ImageIndex quadrant_files(const testing::TempDir& dir, int64_t count) {
  const Dataset images = testing::quadrant_images(count, 1);
  ImageIndex index;
  for (int64_t n = 0; n < count; ++n) {
    float values[64];
    int32_t label = 0;
    images.gather(std::span(&n, 1), values, &label);
    Image image{1, 8, 8, std::vector<uint8_t>(64)};
    for (int i = 0; i < 64; ++i)
      image.pixels[static_cast<size_t>(i)] = static_cast<uint8_t>(255 * std::min(1.0f, values[i]));
    index.files.push_back(dir.path(std::to_string(n) + ".png"));
    index.labels.push_back(label);
    write_png(index.files.back(), image);
  }
  index.class_names = {"a", "b", "c", "d"};
  return index;
}

TEST(Trainer, AStreamedSetTrainsAsTheSameImagesInMemory) {
  // fit() decodes a streamed set's next batch while the current one trains, on any number of
  // workers: the same samples as the images held in memory, so the same weights, bit for bit.
  const testing::TempDir dir;
  const ImageIndex index = quadrant_files(dir, 36);
  std::vector<uint8_t> pixels;
  for (const std::string& file : index.files) {
    const Image image = read_image(file, 1);
    pixels.insert(pixels.end(), image.pixels.begin(), image.pixels.end());
  }
  std::vector<std::string> results;
  for (int workers : {0, 1, 3}) {  // 0: in memory
    const Dataset train =
        workers == 0 ? Dataset::from_bytes(Shape{36, 1, 8, 8}, pixels, index.labels, 4)
                     : Dataset::from_image_index(index, Shape{1, 8, 8}, ImageTransform{}, workers);
    auto model = small_cnn();
    Sgd<float> sgd({.lr = 0.05, .momentum = 0.9});
    SoftmaxCrossEntropy<float> loss;
    fit(*model, train, nullptr, loss, sgd, recipe(2));  // 5 batches an epoch, the last short
    results.push_back(weight_bytes(*model));
  }
  EXPECT_EQ(results[1], results[0]);
  EXPECT_EQ(results[2], results[0]);
}

TEST(Trainer, AnUnreadableImageMidRunSavesTheStateBeforeItsBatch) {
  // A streamed set (files decoded per batch) whose 11th file is broken after the set was listed:
  // the run stops at the batch that holds it, names the file and the batch, and keeps the state
  // before that batch as a stop would.
  const testing::TempDir dir;
  const ImageIndex index = quadrant_files(dir, 16);
  const Dataset train = Dataset::from_image_index(index, Shape{1, 8, 8}, ImageTransform{}, 2);
  write_file_atomic(index.files[10], "not an image");
  TrainingRun run;
  run.train(train, nullptr,
            {.fit = recipe(2),
             .stop_save = dir.path("before.safetensors"),
             .error_prefix = "test: error: "});
  ASSERT_EQ(run.result.end, TrainerResult::End::BadData);
  const std::string err = run.err.str();
  EXPECT_EQ(err.rfind("test: error: epoch 1, batch ", 0), 0u) << err;
  EXPECT_NE(err.find("10.png"), std::string::npos) << err;
  EXPECT_EQ(run.result.fit.completed_epochs, 0);
  EXPECT_EQ(run.result.saved, dir.path("before.safetensors"));
  const SafeTensors file = decode_checkpoint(read_file(run.result.saved), run.result.saved);
  EXPECT_EQ(file.metadata.at("epoch"), "0");
  EXPECT_EQ(file.metadata.at("step"), std::to_string(run.result.fit.completed_steps));
  EXPECT_NE(err.find("saved the state before that batch"), std::string::npos) << err;
}

TEST(Trainer, ADivergedRunSavesItsLastGoodStateAndSaysHowToGoOn) {
  const testing::TempDir dir;
  const Dataset train = testing::quadrant_images(40, 1);  // 5 batches an epoch
  TrainingRun run;
  run.model = std::make_unique<Sequential<float>>();
  run.model->emplace<Flatten>();
  run.model->emplace<Linear>(LinearOptions{.out_features = 4});
  run.model->add(std::make_unique<NanAt>(8));  // the 3rd batch of epoch 2
  run.model->build(Shape{8, 1, 8, 8}, 5);
  run.train(train, nullptr,
            {.fit = recipe(3),
             .stop_save = dir.path("last-good.safetensors"),
             .error_prefix = "test: error: ",
             .resume_hint = [](const std::string& path, std::optional<double> lr) {
               return "resume " + path + " at " + std::to_string(lr.value_or(-1));
             }});
  ASSERT_EQ(run.result.end, TrainerResult::End::Diverged);
  EXPECT_EQ(run.result.fit.completed_epochs, 1);
  EXPECT_EQ(run.result.fit.completed_steps, 2);
  EXPECT_EQ(run.result.saved, dir.path("last-good.safetensors"));
  const std::string err = run.err.str();
  EXPECT_EQ(err.rfind("test: error: epoch 2, batch 3/5: ", 0), 0u) << err;
  EXPECT_NE(err.find("saved the last good state, after epoch 1 and 2 batches of epoch 2, to " +
                     run.result.saved + " (continue at a lower rate with: resume " +
                     run.result.saved + " at 0.005"),
            std::string::npos)
      << err;
  // The file (whose spec names a layer only this test knows: read it as a checkpoint file, not
  // a model) holds the weights as they were before the failing batch: the model's own.
  const SafeTensors file = decode_checkpoint(read_file(run.result.saved), run.result.saved);
  EXPECT_EQ(file.metadata.at("epoch"), "1");
  EXPECT_EQ(file.metadata.at("step"), "2");
  std::string saved_weights;
  for (const char* name : {"1.weight", "1.bias"}) {
    ASSERT_NE(file.find(name), nullptr) << name;
    saved_weights += file.find(name)->bytes;
  }
  EXPECT_EQ(saved_weights, weight_bytes(*run.model));
}

TEST(Trainer, OptionsThatCannotWorkAreRefusedBeforeTraining) {
  const testing::TempDir dir;
  const Dataset train = testing::quadrant_images(16, 1);
  auto refused = [&](TrainerOptions options, const std::string& expected) {
    TrainingRun run;
    try {
      run.train(train, nullptr, std::move(options));
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
      EXPECT_EQ(run.out.str(), "");
      return;
    }
    ADD_FAILURE() << "not refused: " << expected;
  };
  refused({.fit = recipe(2), .early_stop = {.patience = 1}},
          "early stopping needs a validation set");
  refused({.fit = recipe(2), .save_best = dir.path("b")}, "save_best needs a validation set");
  refused({.fit = recipe(2), .save_every = 1}, "save_every needs a path");
  refused({.fit = recipe(2), .save = dir.path("")}, "is a folder");
  refused({.fit = recipe(2), .log = dir.path("log.txt")}, "expected a file ending in .csv");
}

}  // namespace
}  // namespace convnet
