// The execution context kernels run in: which kernel family runs, the largest Winograd tile,
// how many threads work is split into and the pool that runs them, and the scratch memory the
// fast kernels share. A model owns one (Model::context(); Model::set_context gives it another),
// its layers pass it to every kernel they call, and nothing a kernel reads is a process global,
// so models with different settings can run side by side.
//
// A context serves one thread at a time (its scratch is one buffer). Copies share the thread
// pool, which runs one parallel region at a time: a region that finds it busy (another thread's
// model, or a kernel nested inside a chunk) runs its chunks one after another on its own thread.
// The chunks, and so the results, are the same either way.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include "convnet/tensor.hpp"

namespace convnet {

// The most threads convnet accepts (from --threads, $CONVNET_THREADS or set_num_threads).
inline constexpr int kMaxThreads = 1024;

// The CPUs this process may run on (its affinity mask), read once.
int hardware_threads();
// $CONVNET_THREADS parsed: nullopt when unset or empty; convnet::Error naming the variable when
// it is not a whole number from 1 to kMaxThreads.
std::optional<int> threads_from_environment();

// Which kernels float layers run. Fast: the optimised CPU kernels (default). Reference: the
// plain scalar specification in ops/ref, which double-precision layers always use.
enum class Backend { Fast, Reference };

// The largest Winograd tile the fast 3x3 convolutions may use (AVX-512 CPUs). F4x4
// (default): F(4x4, 3x3) on maps at least 5 wide, 4x fewer multiplications than direct
// convolution, with rounding errors about 15x those of F(2x2, 3x3) (still ~1e-5 of the output's
// scale). F2x2: F(2x2, 3x3) only, 2.25x fewer, for runs that must track another framework's
// float results closely.
enum class WinogradTile { F2x2, F4x4 };

// What the fast convolution and fully connected kernels multiply in. Fp32 (default): float
// throughout. Bf16: mixed precision, as PyTorch's CPU autocast: the products' inputs are rounded
// to bfloat16 (8 significant bits) and multiplied by the CPU's bf16 dot-product instructions
// (AVX512_BF16), which accumulate in float; weights, optimizer state, losses, BatchNorm
// statistics and every other op stay float, and so do checkpoints. Needs a CPU with
// AVX512_BF16 (cpu_has_bf16()); kernels without a bf16 form (the direct and grouped
// convolutions, F(2x2, 3x3) forward) run in float either way.
enum class Precision { Fp32, Bf16 };
// Whether this CPU has the bf16 dot-product instructions (AVX512_BF16) that Precision::Bf16 needs.
bool cpu_has_bf16();
// "fp32" or "bf16"; precision_from_name throws convnet::Error naming the accepted names.
const char* precision_name(Precision p);
Precision precision_from_name(const std::string& name);

struct ContextOptions {
  // Threads the kernels split their work into, 1 to kMaxThreads; 0: $CONVNET_THREADS, else
  // hardware_threads(), decided when first asked. Work is split statically (the same chunks for
  // the same count), so a fixed seed and thread count reproduce a run bit for bit. More threads
  // than hardware_threads() split the work the same way (so the results are those of n
  // threads) but run on hardware_threads() threads, several chunks each.
  int threads = 0;
  Backend backend = Backend::Fast;
  WinogradTile winograd_tile = WinogradTile::F4x4;
  Precision precision = Precision::Fp32;  // Bf16 needs cpu_has_bf16(), else convnet::Error
};

class ThreadPool;  // src/core/parallel.cpp: started at the first region that needs its threads

class Context {
 public:
  // A context with these settings and a thread pool of its own.
  explicit Context(const ContextOptions& options = {});
  // The same settings and the same thread pool, with a scratch of its own (empty): a context
  // for another thread. A model starts with such a copy of default_context(), and a Predictor
  // gives each concurrent caller one of its model's.
  Context(const Context& other);
  Context& operator=(const Context& other);
  ~Context();

  // The settings. Not to be changed while a kernel runs in this context.
  int num_threads() const;      // throws convnet::Error on a bad $CONVNET_THREADS (threads = 0)
  void set_num_threads(int n);  // 1 to kMaxThreads, else convnet::Error
  Backend backend() const { return backend_; }
  void set_backend(Backend b) { backend_ = b; }
  WinogradTile winograd_tile() const { return winograd_tile_; }
  void set_winograd_tile(WinogradTile t) { winograd_tile_ = t; }
  Precision precision() const { return precision_; }
  // Bf16 on a CPU without AVX512_BF16 throws convnet::Error (nothing changes).
  void set_precision(Precision p);

  // Scratch memory for the fast kernels, shared by every layer that runs in this context:
  // layers run one at a time and keep nothing in it between calls, so one buffer sized for the
  // largest need serves a whole model (a per-layer buffer would hold one copy per convolution).
  // 64-byte aligned. Grows (allocates) only when a larger size is asked for; layers ask in
  // build(), so training steps do not.
  float* scratch(int64_t floats);
  int64_t scratch_size() const { return scratch_.numel(); }

  // The pool parallel_for runs on (shared by copies).
  ThreadPool& pool() const { return *pool_; }

 private:
  mutable std::atomic<int> threads_;  // 0 until decided (see ContextOptions::threads)
  Backend backend_;
  WinogradTile winograd_tile_;
  Precision precision_ = Precision::Fp32;
  std::shared_ptr<ThreadPool> pool_;
  Tensor<float> scratch_;
};

// Calls fn(lo, hi, thread) on disjoint chunks [lo, hi) covering [begin, end), one chunk per
// thread (thread in [0, ctx.num_threads())), on ctx's pool, and returns when all are done. Chunk
// boundaries depend only on (begin, end, ctx.num_threads()). Runs inline when there is one
// thread or one chunk, and when the pool is busy (see above). fn is taken by reference and
// never copied, so a call allocates nothing. An exception thrown by a chunk reaches the caller
// once every chunk has finished.
template <class Fn>
void parallel_for(const Context& ctx, int64_t begin, int64_t end, Fn&& fn);

namespace detail {
using ChunkFn = void (*)(void* closure, int64_t lo, int64_t hi, int thread);
void parallel_for_impl(const Context& ctx, int64_t begin, int64_t end, ChunkFn call, void* closure);
}  // namespace detail

template <class Fn>
void parallel_for(const Context& ctx, int64_t begin, int64_t end, Fn&& fn) {
  using F = std::remove_reference_t<Fn>;
  detail::parallel_for_impl(
      ctx, begin, end,
      [](void* closure, int64_t lo, int64_t hi, int thread) {
        (*static_cast<F*>(closure))(lo, hi, thread);
      },
      const_cast<void*>(static_cast<const void*>(&fn)));
}

}  // namespace convnet
