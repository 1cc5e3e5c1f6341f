// parallel_for: chunks that cover the range exactly once and depend only on the thread count;
// an exception in any chunk reaches the caller after every chunk has finished; nested calls and
// calls from several application threads at once run inline with the same chunks.
#include <atomic>
#include <stdexcept>
#include <thread>

#include "support/testing.hpp"

namespace convnet {
namespace {

TEST(ParallelFor, CoversTheRangeOnceInFixedChunks) {
  for (int threads : {1, 2, 3, 8}) {
    testing::ThreadCount use(threads);
    std::vector<int> hits(1000, 0);
    std::vector<std::pair<int64_t, int64_t>> chunks(static_cast<size_t>(threads), {-1, -1});
    parallel_for(5, 1005, [&](int64_t lo, int64_t hi, int t) {
      chunks[static_cast<size_t>(t)] = {lo, hi};
      for (int64_t i = lo; i < hi; ++i) ++hits[static_cast<size_t>(i - 5)];
    });
    for (int h : hits) ASSERT_EQ(h, 1) << threads << " threads";
    for (int t = 0; t < threads; ++t)  // chunk t = [begin + t·n/T, begin + (t+1)·n/T)
      EXPECT_EQ(chunks[static_cast<size_t>(t)],
                (std::pair<int64_t, int64_t>{5 + 1000 * t / threads, 5 + 1000 * (t + 1) / threads}));
  }
}

TEST(ParallelFor, AnExceptionInAnyChunkReachesTheCaller) {
  testing::ThreadCount use(2);
  for (int thrower : {0, 1}) {  // the caller's own chunk, and a worker's
    std::atomic<int> finished{0};
    try {
      parallel_for(0, 2, [&](int64_t, int64_t, int t) {
        if (t == thrower) throw Error("chunk " + std::to_string(t) + " failed");
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        ++finished;
      });
      ADD_FAILURE() << "no exception";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), "chunk " + std::to_string(thrower) + " failed");
    }
    EXPECT_EQ(finished.load(), 1);  // the other chunk ran to its end before the rethrow
  }
  // The pool still works afterwards.
  std::atomic<int> sum{0};
  parallel_for(0, 10, [&](int64_t lo, int64_t hi, int) { sum += static_cast<int>(hi - lo); });
  EXPECT_EQ(sum.load(), 10);
}

TEST(ParallelFor, NestedAndConcurrentCallsRunInline) {
  testing::ThreadCount use(2);
  std::atomic<int> inner{0};
  parallel_for(0, 2, [&](int64_t, int64_t, int) {
    parallel_for(0, 100, [&](int64_t lo, int64_t hi, int) { inner += static_cast<int>(hi - lo); });
  });
  EXPECT_EQ(inner.load(), 200);

  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int round = 0; round < 200; ++round)
        parallel_for(0, 64, [&](int64_t lo, int64_t hi, int) { total += hi - lo; });
    });
  for (auto& c : callers) c.join();
  EXPECT_EQ(total.load(), 4 * 200 * 64);
}

}  // namespace
}  // namespace convnet
