// Image loading throughput: a folder of class sub-folders (or a '<path> <label>' list) streamed
// through Dataset::from_image_index, every sample decoded and transformed once, in batches, on
// `workers` threads; prints images/s and images/s per worker. What bench/compare_loading.py sets
// beside torchvision's DataLoader. Not a test: it asserts nothing.
//   build/bench_loading DIR|LIST.txt CxHxW TRANSFORM [WORKERS=1] [BATCH=64] [LIMIT=0: all]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>
#include <vector>

#include "convnet/data.hpp"
#include "convnet/image_set.hpp"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr,
                 "usage: bench_loading DIR|LIST.txt CxHxW TRANSFORM [WORKERS=1] [BATCH=64] "
                 "[LIMIT=0]\n");
    return 2;
  }
  try {
    const std::string source = argv[1];
    int64_t c = 0, h = 0, w = 0;
    if (std::sscanf(argv[2], "%ldx%ldx%ld", &c, &h, &w) != 3) throw convnet::Error("bad CxHxW");
    const convnet::ImageTransform transform = convnet::ImageTransform::parse(argv[3], "TRANSFORM");
    const int workers = argc > 4 ? std::atoi(argv[4]) : 1;
    const int64_t batch = argc > 5 ? std::atoll(argv[5]) : 64;
    const int64_t limit = argc > 6 ? std::atoll(argv[6]) : 0;
    const bool list = source.size() > 4 && source.compare(source.size() - 4, 4, ".txt") == 0;
    const convnet::Dataset data = convnet::Dataset::from_image_index(
        list ? convnet::read_image_list(source) : convnet::index_image_folder(source),
        convnet::Shape{c, h, w}, transform, workers);
    const int64_t n = limit > 0 ? std::min(limit, data.size()) : data.size();
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::vector<float> x(static_cast<size_t>(batch * c * h * w));
    std::vector<int32_t> labels(static_cast<size_t>(batch));
    const auto start = std::chrono::steady_clock::now();
    for (int64_t first = 0; first < n; first += batch) {
      const int64_t count = std::min(batch, n - first);
      data.gather(std::span(order).subspan(static_cast<size_t>(first), static_cast<size_t>(count)),
                  x.data(), labels.data(), nullptr, 1);
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("{\"images\": %ld, \"seconds\": %.3f, \"images_per_s\": %.1f, \"workers\": %d, "
                "\"per_worker\": %.1f}\n",
                static_cast<long>(n), seconds, static_cast<double>(n) / seconds, workers,
                static_cast<double>(n) / seconds / workers);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_loading: %s\n", e.what());
    return 1;
  }
  return 0;
}
