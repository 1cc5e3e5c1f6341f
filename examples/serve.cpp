// Serving a trained model from several threads: one Predictor, loaded from a checkpoint written by
// `convnet train --save`, answers every thread's images at once (each concurrent call gets its
// own execution context; see convnet/predictor.hpp).
//   usage: serve CHECKPOINT IMAGE...
#include <convnet/convnet.hpp>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  using namespace convnet;
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s CHECKPOINT IMAGE...\n", argv[0]);
    return 2;
  }
  try {
    const Predictor<float> predictor(argv[1]);
    const int64_t channels = predictor.sample_shape()[0];
    std::vector<std::string> files(argv + 2, argv + argc);
    std::vector<std::string> answers(files.size());
    // One thread per image, all sharing the predictor; errors are kept, not thrown across threads.
    std::vector<std::thread> workers;
    for (size_t i = 0; i < files.size(); ++i)
      workers.emplace_back([&, i] {
        try {
          const Tensor<float> x = predictor.to_input({read_image(files[i], channels)});
          const Prediction best = predictor.top(predictor.probabilities(x), 1).front();
          answers[i] = best.top[0].name + " (" +
                       std::to_string(static_cast<int>(100 * best.top[0].probability)) + "%)";
        } catch (const std::exception& e) {
          answers[i] = std::string("error: ") + e.what();
        }
      });
    for (auto& w : workers) w.join();
    for (size_t i = 0; i < files.size(); ++i)
      std::printf("%s: %s\n", files[i].c_str(), answers[i].c_str());
    std::printf("%zu threads served by %zu execution contexts\n", files.size(),
                predictor.contexts());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
