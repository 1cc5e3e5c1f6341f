#include "train/overlap.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace convnet::detail {

OverlappedReduction::OverlappedReduction(Communicator& comm, std::span<float> grads,
                                         int64_t first_bucket, int64_t bucket)
    : comm_(comm), grads_(grads) {
  CONVNET_CHECK(first_bucket >= 1 && bucket >= 1, "overlapped reduction: buckets of ", first_bucket,
                " and ", bucket, " values");
  const auto total = static_cast<int64_t>(grads.size());
  bounds_.push_back(0);
  for (int64_t end = std::min(first_bucket, total); bounds_.back() < total;
       end = std::min(end + bucket, total))
    bounds_.push_back(end);
  thread_ = std::thread([this] { run(); });
}

OverlappedReduction::~OverlappedReduction() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  work_.notify_one();
  thread_.join();
}

void OverlappedReduction::enqueue_ready(int64_t ready_end) {
  size_t ready = queued_;
  while (ready + 1 < bounds_.size() && bounds_[ready + 1] <= ready_end) ++ready;
  if (ready == queued_) return;
  {
    std::lock_guard lock(mutex_);
    queued_ = ready;
  }
  work_.notify_one();
}

void OverlappedReduction::on_gradients_ready(std::span<float> grads, int64_t offset) {
  enqueue_ready(offset + static_cast<int64_t>(grads.size()));
}

void OverlappedReduction::on_backward_end(std::span<float> /*grads*/) {
  enqueue_ready(static_cast<int64_t>(grads_.size()));
  const auto start = std::chrono::steady_clock::now();
  std::unique_lock lock(mutex_);
  done_.wait(lock, [this] { return finished_ == buckets(); });
  waited_seconds_ +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  queued_ = finished_ = 0;  // the next step's buckets
  ++step_;
}

void OverlappedReduction::finish_queued() {
  std::unique_lock lock(mutex_);
  done_.wait(lock, [this] { return finished_ == queued_; });
}

void OverlappedReduction::run() {
  char what[96];
  for (;;) {
    size_t bucket;
    {
      std::unique_lock lock(mutex_);
      work_.wait(lock, [this] { return stop_ || finished_ < queued_; });
      if (stop_) return;
      bucket = finished_;
    }
    const auto begin = static_cast<size_t>(bounds_[bucket]);
    const auto end = static_cast<size_t>(bounds_[bucket + 1]);
    std::snprintf(what, sizeof what, "bucket %zu of %zu (values %zu to %zu) of step %lld",
                  bucket + 1, buckets(), begin, end, static_cast<long long>(step_ + 1));
    const auto start = std::chrono::steady_clock::now();
    comm_.ordered_sum(grads_.subspan(begin, end - begin), contributors_, what);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    {
      std::lock_guard lock(mutex_);
      reduce_seconds_ += seconds;
      ++finished_;
    }
    done_.notify_one();
  }
}

}  // namespace convnet::detail
