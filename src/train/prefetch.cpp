// The next batch decoded while the current one trains (see prefetch.hpp).
#include "train/prefetch.hpp"

#include <utility>

namespace convnet::detail {

BatchPrefetch::BatchPrefetch(const Dataset& data, int64_t batch)
    : data_(data),
      x_(data.shape().with_batch(batch)),
      labels_(static_cast<size_t>(batch)),
      thread_([this] { loop(); }) {}

BatchPrefetch::~BatchPrefetch() {
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void BatchPrefetch::start(std::span<const int64_t> order, uint64_t draw) {
  {
    std::lock_guard lock(mutex_);
    order_ = order;
    draw_ = draw;
    work_ = true;
    finished_ = false;
    error_ = nullptr;
  }
  pending_ = true;
  wake_.notify_one();
}

void BatchPrefetch::take(Tensor<float>& x, std::vector<int32_t>& labels) {
  std::unique_lock lock(mutex_);
  done_.wait(lock, [this] { return finished_; });
  pending_ = false;
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  std::swap(x, x_);
  labels.swap(labels_);
}

void BatchPrefetch::loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return work_ || quit_; });
    if (quit_) return;
    work_ = false;
    const std::span<const int64_t> order = order_;
    const uint64_t draw = draw_;
    lock.unlock();
    std::exception_ptr error;
    try {
      const auto count = static_cast<int64_t>(order.size());
      x_.resize(data_.shape().with_batch(count));  // within the capacity made at the start
      labels_.resize(order.size());
      data_.gather(order, x_.data(), labels_.data(), nullptr, draw);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    error_ = error;
    finished_ = true;
    done_.notify_one();
  }
}

}  // namespace convnet::detail
