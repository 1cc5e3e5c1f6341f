// Contexts (convnet/context.hpp) and the thread pool behind parallel_for. Static partitioning,
// no work stealing: deterministic chunking matters more here than balancing, since the chunks
// are equal-sized. The work is cut into ctx.num_threads() chunks, but the pool never has more
// threads than the hardware runs at once: with more chunks than that, each pool thread runs
// several chunks one after another (chunk t on pool thread t mod size), so the results are those
// of num_threads() threads while no spinning thread takes a core from one doing the work.
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "convnet/context.hpp"
#include "convnet/error.hpp"
#include "convnet/runtime.hpp"

namespace convnet {
namespace {

// Workers spin briefly before sleeping, and so does the caller waiting for them: a training
// step issues dozens of parallel_for calls of well under a millisecond each, and a condition-
// variable wake-up per call (tens of microseconds) would cost more than small layers do.
class Workers {
 public:
  explicit Workers(int threads) {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { work(i); });
  }
  ~Workers() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // A task is a function pointer and its context: nothing to allocate per call.
  struct Task {
    void (*call)(const void* context, int index);
    const void* context;
    void operator()(int index) const { call(context, index); }
  };

  // Runs task(t) for t in [0, chunks), chunks >= size(): pool thread i (the caller is 0) runs
  // chunks i, i + size(), i + 2·size(), ... in that order.
  void run(const Task& task, int chunks) {
    task_ = &task;
    chunks_ = chunks;
    pending_.store(size() - 1, std::memory_order_relaxed);
    {
      std::lock_guard lock(mutex_);  // orders the publication against a worker going to sleep
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (int t = 0; t < chunks; t += size()) task(t);
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
      if (spin < kSpins) {
        pause();
        continue;
      }
      std::unique_lock lock(mutex_);
      done_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
      break;
    }
  }

 private:
  static constexpr int kSpins = 20000;  // about 50-100 microseconds of pause instructions

  static void pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }

  void work(int index) {
    uint64_t seen = 0;
    for (;;) {
      uint64_t now = generation_.load(std::memory_order_acquire);
      for (int spin = 0; now == seen && spin < kSpins; ++spin) {
        pause();
        now = generation_.load(std::memory_order_acquire);
      }
      if (now == seen) {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        now = generation_.load(std::memory_order_acquire);
      }
      seen = now;
      if (stopping_) return;
      for (int t = index; t < chunks_; t += size()) (*task_)(t);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard lock(mutex_);  // the caller may be about to sleep on done_
        done_.notify_one();
      }
    }
  }

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const Task* task_ = nullptr;
  int chunks_ = 0;  // published with task_ by the generation's release
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stopping_{false};
};

// What the hardware runs at once for this process: the CPUs of its affinity mask (taskset,
// cgroups' cpusets), else the machine's.
int hardware_threads_now() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n >= 1) return n;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

int default_threads() {
  if (const std::optional<int> n = threads_from_environment()) return *n;
  return hardware_threads();
}

}  // namespace

// The pool runs one parallel_for at a time. Whoever sets `busy` owns the pool until the call
// returns; a call that finds it set (another application thread's context sharing this pool, or
// a kernel nested inside a chunk) runs its chunks one after another on its own thread instead.
// The chunks, and so the results, are the same either way. The owner (re)starts the workers
// when the size it needs differs, so contexts with different thread counts can share a pool.
class ThreadPool {
 public:
  std::atomic<bool> busy{false};
  std::unique_ptr<Workers> workers;  // started by the first region that needs them
};

// --- Context -------------------------------------------------------------------------------------

Context::Context(const ContextOptions& options)
    : threads_(0),
      backend_(options.backend),
      winograd_tile_(options.winograd_tile),
      pool_(std::make_shared<ThreadPool>()) {
  if (options.threads != 0) set_num_threads(options.threads);
  set_precision(options.precision);
}

Context::Context(const Context& other)
    : threads_(other.threads_.load(std::memory_order_relaxed)),
      backend_(other.backend_),
      winograd_tile_(other.winograd_tile_),
      precision_(other.precision_),
      pool_(other.pool_) {}

Context& Context::operator=(const Context& other) {
  if (this != &other) {
    threads_.store(other.threads_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    backend_ = other.backend_;
    winograd_tile_ = other.winograd_tile_;
    precision_ = other.precision_;
    pool_ = other.pool_;
  }
  return *this;
}

Context::~Context() = default;

int Context::num_threads() const {
  int n = threads_.load(std::memory_order_relaxed);
  if (n == 0) {  // several threads may decide at once (the process default's): they agree
    int expected = 0;
    threads_.compare_exchange_strong(expected, default_threads());
    n = threads_.load(std::memory_order_relaxed);
  }
  return n;
}

void Context::set_num_threads(int n) {
  CONVNET_CHECK(n >= 1 && n <= kMaxThreads, "threads: expected from 1 to ", kMaxThreads, ", got ",
                n);
  threads_.store(n);  // the pool is resized by the next parallel_for that owns it
}

bool cpu_has_bf16() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512bf16");
  }();
  return yes;
#else
  return false;
#endif
}

const char* precision_name(Precision p) { return p == Precision::Bf16 ? "bf16" : "fp32"; }

Precision precision_from_name(const std::string& name) {
  if (name == "fp32") return Precision::Fp32;
  if (name == "bf16") return Precision::Bf16;
  throw Error("precision: expected fp32 or bf16, got '" + name + "'");
}

void Context::set_precision(Precision p) {
  CONVNET_CHECK(p == Precision::Fp32 || cpu_has_bf16(),
                "precision bf16: this CPU has no bf16 dot-product instructions (AVX512_BF16); "
                "use fp32");
  precision_ = p;
}

float* Context::scratch(int64_t floats) {
  if (scratch_.numel() < floats) scratch_.resize(Shape{floats});
  return scratch_.data();
}

// --- the process default -------------------------------------------------------------------------

Context& default_context() {
  static Context context;
  return context;
}

int num_threads() { return default_context().num_threads(); }
void set_num_threads(int n) { default_context().set_num_threads(n); }
Backend backend() { return default_context().backend(); }
void set_backend(Backend b) { default_context().set_backend(b); }
WinogradTile winograd_tile() { return default_context().winograd_tile(); }
void set_winograd_tile(WinogradTile t) { default_context().set_winograd_tile(t); }
Precision precision() { return default_context().precision(); }
void set_precision(Precision p) { default_context().set_precision(p); }

int hardware_threads() {
  static const int n = hardware_threads_now();
  return n;
}

std::optional<int> threads_from_environment() {
  const char* env = std::getenv("CONVNET_THREADS");
  if (env == nullptr || *env == '\0') return std::nullopt;
  const std::string text = env;
  int64_t n = 0;  // saturates above kMaxThreads: only "too many" matters then
  bool is_number = true;
  for (const char c : text) {
    if (c < '0' || c > '9') {
      is_number = false;
      break;
    }
    n = std::min<int64_t>(n * 10 + (c - '0'), int64_t{kMaxThreads} + 1);
  }
  const std::string shown = text.size() > 40 ? text.substr(0, 40) + "..." : text;
  CONVNET_CHECK(is_number, "CONVNET_THREADS: expected a thread count from 1 to ", kMaxThreads,
                ", got '", shown, "'");
  CONVNET_CHECK(n >= 1 && n <= kMaxThreads, "CONVNET_THREADS: expected a thread count from 1 to ",
                kMaxThreads, ", got ", shown);
  return static_cast<int>(n);
}

namespace detail {

void parallel_for_impl(const Context& ctx, int64_t begin, int64_t end, ChunkFn call,
                       void* closure) {
  const int64_t count = end - begin;
  if (count <= 0) return;
  const int pool_threads = ctx.num_threads();
  const int threads = static_cast<int>(std::min<int64_t>(pool_threads, count));
  if (threads == 1) {
    call(closure, begin, end, 0);
    return;
  }
  // Chunk t covers [begin + t*count/threads, begin + (t+1)*count/threads). An exception thrown
  // by a chunk (on any thread) is kept, the first one only, and rethrown here once every chunk
  // has finished: it must neither escape a worker (which would terminate the process) nor leave
  // workers running on this frame's data.
  struct Split {
    int64_t begin, count;
    int threads;
    ChunkFn call;
    void* closure;
    std::atomic<bool> failed{false};
    std::exception_ptr error;
  } split{begin, count, threads, call, closure, {false}, nullptr};
  const auto run_chunk = [](const void* p, int t) {
    auto& s = *static_cast<Split*>(const_cast<void*>(p));
    if (t >= s.threads) return;
    const int64_t lo = s.begin + s.count * t / s.threads;
    const int64_t hi = s.begin + s.count * (t + 1) / s.threads;
    if (lo >= hi) return;
    try {
      s.call(s.closure, lo, hi, t);
    } catch (...) {
      if (!s.failed.exchange(true)) s.error = std::current_exception();
    }
  };
  ThreadPool& pool = ctx.pool();
  if (pool.busy.exchange(true, std::memory_order_acquire)) {
    for (int t = 0; t < threads; ++t) run_chunk(&split, t);
    if (split.error) std::rethrow_exception(split.error);
    return;
  }
  // Released however the call ends.
  struct Release {
    ThreadPool& pool;
    ~Release() { pool.busy.store(false, std::memory_order_release); }
  } release{pool};
  const int workers = std::min(pool_threads, hardware_threads());
  if (workers == 1) {  // more chunks than one CPU runs at once: one after another, here
    for (int t = 0; t < threads; ++t) run_chunk(&split, t);
    if (split.error) std::rethrow_exception(split.error);
    return;
  }
  if (!pool.workers || pool.workers->size() != workers) {
    pool.workers.reset();
    pool.workers = std::make_unique<Workers>(workers);
  }
  pool.workers->run({run_chunk, &split}, std::max(threads, workers));
  if (split.error) std::rethrow_exception(split.error);
}

}  // namespace detail

}  // namespace convnet
