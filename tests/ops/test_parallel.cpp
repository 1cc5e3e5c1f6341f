// parallel_for: chunks that cover the range exactly once and depend only on the context's thread
// count; an exception in any chunk reaches the caller after every chunk has finished; nested
// calls and calls from several application threads at once (on one context, or on copies that
// share its pool) run inline with the same chunks; contexts keep their own settings.
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "support/testing.hpp"

namespace convnet {
namespace {

TEST(ParallelFor, CoversTheRangeOnceInFixedChunks) {
  for (int threads : {1, 2, 3, 8}) {
    const Context ctx({.threads = threads});
    std::vector<int> hits(1000, 0);
    std::vector<std::pair<int64_t, int64_t>> chunks(static_cast<size_t>(threads), {-1, -1});
    parallel_for(ctx, 5, 1005, [&](int64_t lo, int64_t hi, int t) {
      chunks[static_cast<size_t>(t)] = {lo, hi};
      for (int64_t i = lo; i < hi; ++i) ++hits[static_cast<size_t>(i - 5)];
    });
    for (int h : hits) ASSERT_EQ(h, 1) << threads << " threads";
    for (int t = 0; t < threads; ++t)  // chunk t = [begin + t·n/T, begin + (t+1)·n/T)
      EXPECT_EQ(
          chunks[static_cast<size_t>(t)],
          (std::pair<int64_t, int64_t>{5 + 1000 * t / threads, 5 + 1000 * (t + 1) / threads}));
  }
}

TEST(ParallelFor, AnExceptionInAnyChunkReachesTheCaller) {
  const Context ctx({.threads = 2});
  for (int thrower : {0, 1}) {  // the caller's own chunk, and a worker's
    std::atomic<int> finished{0};
    try {
      parallel_for(ctx, 0, 2, [&](int64_t, int64_t, int t) {
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
  parallel_for(ctx, 0, 10, [&](int64_t lo, int64_t hi, int) { sum += static_cast<int>(hi - lo); });
  EXPECT_EQ(sum.load(), 10);
}

TEST(ParallelFor, NestedAndConcurrentCallsRunInline) {
  const Context ctx({.threads = 2});
  std::atomic<int> inner{0};
  parallel_for(ctx, 0, 2, [&](int64_t, int64_t, int) {
    parallel_for(ctx, 0, 100,
                 [&](int64_t lo, int64_t hi, int) { inner += static_cast<int>(hi - lo); });
  });
  EXPECT_EQ(inner.load(), 200);

  // Four threads on one pool: two on ctx itself, two on copies (what a Predictor's callers
  // run on), which share its pool.
  const Context copy_a(ctx), copy_b(ctx);
  const Context* on[] = {&ctx, &ctx, &copy_a, &copy_b};
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (const Context* c : on)
    callers.emplace_back([&, c] {
      for (int round = 0; round < 200; ++round)
        parallel_for(*c, 0, 64, [&](int64_t lo, int64_t hi, int) { total += hi - lo; });
    });
  for (auto& c : callers) c.join();
  EXPECT_EQ(total.load(), 4 * 200 * 64);
}

// A context's settings are its own: a copy takes them when it is made, and neither the process
// default nor the copy sees the other's later changes; a model starts with a copy of the default.
TEST(Context, SettingsBelongToTheContext) {
  const testing::ThreadCount default_threads(3);
  const testing::BackendScope default_backend(Backend::Reference);
  Context copy(default_context());
  EXPECT_EQ(copy.num_threads(), 3);
  EXPECT_EQ(copy.backend(), Backend::Reference);
  copy.set_num_threads(1);
  copy.set_winograd_tile(WinogradTile::F2x2);
  EXPECT_EQ(num_threads(), 3);
  EXPECT_EQ(winograd_tile(), WinogradTile::F4x4);
  set_num_threads(5);
  EXPECT_EQ(copy.num_threads(), 1);

  Sequential<float> model;
  EXPECT_EQ(model.context().num_threads(), 5);
  EXPECT_EQ(model.context().backend(), Backend::Reference);
  EXPECT_NE(&model.context(), &default_context());

  const Context fresh({.threads = 2, .winograd_tile = WinogradTile::F2x2});
  EXPECT_EQ(fresh.num_threads(), 2);
  EXPECT_EQ(fresh.backend(), Backend::Fast);
  EXPECT_EQ(fresh.winograd_tile(), WinogradTile::F2x2);
  EXPECT_EQ(testing::error_of([] { const Context bad({.threads = 2000}); }),
            "threads: expected from 1 to 1024, got 2000");
}

// Precision is a context setting like the others; bf16 is refused, naming the CPU feature, where
// the CPU lacks it, and the name parser names what it accepts.
TEST(Context, PrecisionIsSetPerContextWhereTheCpuHasIt) {
  EXPECT_EQ(Context().precision(), Precision::Fp32);
  EXPECT_EQ(precision_from_name("bf16"), Precision::Bf16);
  EXPECT_STREQ(precision_name(Precision::Bf16), "bf16");
  EXPECT_EQ(testing::error_of([] { precision_from_name("fp16"); }),
            "precision: expected fp32 or bf16, got 'fp16'");
  if (!cpu_has_bf16()) {
    EXPECT_EQ(testing::error_of([] { const Context c({.precision = Precision::Bf16}); }),
              "precision bf16: this CPU has no bf16 dot-product instructions (AVX512_BF16); use "
              "fp32");
    return;
  }
  Context a({.precision = Precision::Bf16});
  const Context copy(a);
  EXPECT_EQ(copy.precision(), Precision::Bf16);
  a.set_precision(Precision::Fp32);
  EXPECT_EQ(copy.precision(), Precision::Bf16);
  EXPECT_EQ(precision(), Precision::Fp32);  // the process default untouched
}

// Scratch is per context: a copy starts with none, and growing one leaves the other alone.
TEST(Context, ScratchIsPerContextAndOnlyGrows) {
  Context a({.threads = 1});
  float* p = a.scratch(100);
  EXPECT_EQ(a.scratch_size(), 100);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kTensorAlignment, 0u);
  EXPECT_EQ(a.scratch(50), p);  // smaller: the same buffer
  Context b(a);
  EXPECT_EQ(b.scratch_size(), 0);
  EXPECT_NE(b.scratch(10), p);
  EXPECT_EQ(a.scratch_size(), 100);
}

// More threads than CPUs: the work is cut into as many chunks as threads (the same chunks, so
// the same results), but never more run at once than the CPUs this process may use, and on no
// more system threads than that: a pool of spinning threads beyond the CPUs starves itself.
TEST(ParallelFor, MoreThreadsThanCpusKeepTheChunksButRunOnTheCpus) {
  const int cpus = hardware_threads();
  const int threads = 4 * cpus;
  const Context ctx({.threads = threads});
  std::vector<std::pair<int64_t, int64_t>> chunks(static_cast<size_t>(threads), {-1, -1});
  std::mutex mutex;
  std::set<std::thread::id> system_threads;
  std::atomic<int> running{0}, most_running{0};
  for (int round = 0; round < 20; ++round)
    parallel_for(ctx, 0, 1000, [&](int64_t lo, int64_t hi, int t) {
      const int now = ++running;
      for (int seen = most_running.load();
           now > seen && !most_running.compare_exchange_weak(seen, now);) {
      }
      {
        std::lock_guard lock(mutex);
        chunks[static_cast<size_t>(t)] = {lo, hi};
        system_threads.insert(std::this_thread::get_id());
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      --running;
    });
  for (int t = 0; t < threads; ++t)
    EXPECT_EQ(chunks[static_cast<size_t>(t)],
              (std::pair<int64_t, int64_t>{1000 * t / threads, 1000 * (t + 1) / threads}));
  EXPECT_LE(static_cast<int>(system_threads.size()), cpus);
  EXPECT_LE(most_running.load(), cpus);
}

// $CONVNET_THREADS is parsed like --threads: a whole number from 1 to kMaxThreads, else an
// error naming the variable (it used to be ignored when not a number, and unbounded).
TEST(ParallelFor, ThreadsFromTheEnvironmentAreCheckedAndBounded) {
  const char* saved = std::getenv("CONVNET_THREADS");
  const std::string restore = saved ? saved : "";
  auto with = [](const char* value) {
    ::setenv("CONVNET_THREADS", value, 1);
    return testing::error_of([] { threads_from_environment(); });
  };
  EXPECT_EQ(with("abc"), "CONVNET_THREADS: expected a thread count from 1 to 1024, got 'abc'");
  EXPECT_EQ(with("100000"), "CONVNET_THREADS: expected a thread count from 1 to 1024, got 100000");
  EXPECT_EQ(with("0"), "CONVNET_THREADS: expected a thread count from 1 to 1024, got 0");
  EXPECT_EQ(with("4x"), "CONVNET_THREADS: expected a thread count from 1 to 1024, got '4x'");
  EXPECT_EQ(with("-2"), "CONVNET_THREADS: expected a thread count from 1 to 1024, got '-2'");
  ::setenv("CONVNET_THREADS", "3", 1);
  EXPECT_EQ(threads_from_environment(), 3);
  ::unsetenv("CONVNET_THREADS");
  EXPECT_EQ(threads_from_environment(), std::nullopt);
  if (saved) ::setenv("CONVNET_THREADS", restore.c_str(), 1);
  EXPECT_EQ(testing::error_of([] { set_num_threads(100000); }),
            "threads: expected from 1 to 1024, got 100000");
}

}  // namespace
}  // namespace convnet
