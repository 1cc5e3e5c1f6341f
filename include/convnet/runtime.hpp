// Run-time settings for convnet's kernels: the thread count and which kernel family runs.
// Work is split statically (the same chunks for the same thread count), so a fixed seed and
// thread count reproduce a run bit for bit.
#pragma once

#include <cstdint>
#include <optional>
#include <type_traits>

namespace convnet {

// The most threads convnet accepts (from --threads, $CONVNET_THREADS or set_num_threads).
inline constexpr int kMaxThreads = 1024;

// Number of threads kernels split their work for; default: $CONVNET_THREADS, else
// hardware_threads(). Throws convnet::Error naming the variable when $CONVNET_THREADS is set
// but is not a count from 1 to kMaxThreads.
int num_threads();
// Sets the thread count (1 to kMaxThreads). Not to be called while a kernel is running.
// More threads than hardware_threads() split the work the same way (so the results are those
// of n threads) but run on hardware_threads() threads, several chunks each.
void set_num_threads(int n);
// The CPUs this process may run on (its affinity mask), read once.
int hardware_threads();
// $CONVNET_THREADS parsed: nullopt when unset or empty; convnet::Error naming the variable when
// it is not a whole number from 1 to kMaxThreads.
std::optional<int> threads_from_environment();

// Which kernels float layers run. Fast: the optimised CPU kernels (default). Reference: the
// plain scalar specification in ops/ref, which double-precision layers always use.
enum class Backend { Fast, Reference };
Backend backend();
void set_backend(Backend b);

// The largest Winograd tile the fast 3x3 convolutions may use (AVX-512 CPUs). F4x4
// (default): F(4x4, 3x3) on maps at least 5 wide, 4x fewer multiplications than direct
// convolution, with rounding errors about 15x those of F(2x2, 3x3) (still ~1e-5 of the output's
// scale). F2x2: F(2x2, 3x3) only, 2.25x fewer, for runs that must track another framework's
// float results closely. Not to be changed while a kernel is running.
enum class WinogradTile { F2x2, F4x4 };
WinogradTile winograd_tile();
void set_winograd_tile(WinogradTile t);

// Calls fn(lo, hi, thread) on disjoint chunks [lo, hi) covering [begin, end), one chunk per
// thread (thread in [0, num_threads())), and returns when all are done. Chunk boundaries depend
// only on (begin, end, num_threads()). Runs inline when there is one thread or one chunk.
// fn is taken by reference and never copied, so a call allocates nothing.
template <class Fn>
void parallel_for(int64_t begin, int64_t end, Fn&& fn);

namespace detail {
using ChunkFn = void (*)(void* context, int64_t lo, int64_t hi, int thread);
void parallel_for_impl(int64_t begin, int64_t end, ChunkFn call, void* context);
}  // namespace detail

template <class Fn>
void parallel_for(int64_t begin, int64_t end, Fn&& fn) {
  using F = std::remove_reference_t<Fn>;
  detail::parallel_for_impl(
      begin, end,
      [](void* context, int64_t lo, int64_t hi, int thread) {
        (*static_cast<F*>(context))(lo, hi, thread);
      },
      const_cast<void*>(static_cast<const void*>(&fn)));
}

}  // namespace convnet
