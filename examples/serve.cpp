// Serving a trained model from several threads: one Predictor, loaded from a checkpoint written by
// `convnet train --save`, answers every thread's images at once (each concurrent call gets its
// own execution context, which shares the predictor's weights; see convnet/predictor.hpp).
//   usage: serve [--threads N] CHECKPOINT IMAGE...
// N threads (default: one per image) take the images in turn, image i going to thread i mod N,
// and start together, so up to N calls run at once.
#include <convnet/convnet.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <latch>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  using namespace convnet;
  int first = 1;
  long threads = 0;  // 0: one per image
  if (argc > 2 && std::string(argv[1]) == "--threads") {
    threads = std::strtol(argv[2], nullptr, 10);
    first = 3;
  }
  if (argc - first < 2 || (first == 3 && (threads < 1 || threads > 1024))) {
    std::fprintf(stderr, "usage: %s [--threads N] CHECKPOINT IMAGE...\n", argv[0]);
    return 2;
  }
  try {
    const Predictor<float> predictor(argv[first]);
    const int64_t channels = predictor.sample_shape()[0];
    std::vector<std::string> files(argv + first + 1, argv + argc);
    std::vector<std::string> answers(files.size());
    const size_t n = threads > 0 ? static_cast<size_t>(threads) : files.size();
    // The threads share the predictor; errors are kept, not thrown across threads.
    std::latch start(static_cast<std::ptrdiff_t>(n));
    std::vector<std::thread> workers;
    for (size_t t = 0; t < n; ++t)
      workers.emplace_back([&, t] {
        start.arrive_and_wait();
        for (size_t i = t; i < files.size(); i += n) {
          try {
            const Tensor<float> x = predictor.to_input({read_image(files[i], channels)});
            const Prediction best = predictor.top(predictor.probabilities(x), 1).front();
            answers[i] = best.top[0].name + " (" +
                         std::to_string(static_cast<int>(100 * best.top[0].probability)) + "%)";
          } catch (const std::exception& e) {
            answers[i] = std::string("error: ") + e.what();
          }
        }
      });
    for (auto& w : workers) w.join();
    for (size_t i = 0; i < files.size(); ++i)
      std::printf("%s: %s\n", files[i].c_str(), answers[i].c_str());
    std::printf("%zu threads served by %zu execution contexts\n", n, predictor.contexts());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
