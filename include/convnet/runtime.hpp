// Run-time settings for convnet's kernels: the thread count and which kernel family runs.
// Work is split statically (the same chunks for the same thread count), so a fixed seed and
// thread count reproduce a run bit for bit.
#pragma once

#include <cstdint>
#include <functional>

namespace convnet {

// Number of threads kernels use; default: $CONVNET_NUM_THREADS, else the hardware concurrency.
int num_threads();
// Sets the thread count (>= 1). Not to be called while a kernel is running.
void set_num_threads(int n);

// Calls fn(lo, hi, thread) on disjoint chunks [lo, hi) covering [begin, end), one chunk per
// thread (thread in [0, num_threads())), and returns when all are done. Chunk boundaries depend
// only on (begin, end, num_threads()). Runs inline when there is one thread or one chunk.
// Which kernels float layers run. Fast: the optimised CPU kernels (default). Reference: the
// plain scalar specification in ops/ref, which double-precision layers always use.
enum class Backend { Fast, Reference };
Backend backend();
void set_backend(Backend b);

void parallel_for(int64_t begin, int64_t end,
                  const std::function<void(int64_t lo, int64_t hi, int thread)>& fn);

}  // namespace convnet
