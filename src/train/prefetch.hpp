// The next batch of a streamed image set decoded while the current one trains: one thread of its
// own calls Dataset::gather (which decodes on the set's worker threads) into a second pair of
// buffers, and fit() swaps them in when it gets to that batch. Internal to fit().
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "convnet/data.hpp"
#include "convnet/tensor.hpp"

namespace convnet::detail {

class BatchPrefetch {
 public:
  // Buffers for batches of up to `batch` samples of `data`, made here, once.
  BatchPrefetch(const Dataset& data, int64_t batch);
  ~BatchPrefetch();  // waits for a batch in flight
  BatchPrefetch(const BatchPrefetch&) = delete;
  BatchPrefetch& operator=(const BatchPrefetch&) = delete;

  // Starts gathering samples `order` (which must outlive the call to take()) with `draw`.
  void start(std::span<const int64_t> order, uint64_t draw);
  // Whether a batch was started and not yet taken.
  bool pending() const { return pending_; }
  // Waits for the started batch and swaps it into x and labels (x resized to its count); the
  // gather's error, if it failed, is thrown here.
  void take(Tensor<float>& x, std::vector<int32_t>& labels);

 private:
  void loop();

  const Dataset& data_;
  Tensor<float> x_;
  std::vector<int32_t> labels_;
  std::span<const int64_t> order_;
  uint64_t draw_ = 0;
  bool pending_ = false;  // the caller's view: started, not taken

  std::mutex mutex_;
  std::condition_variable wake_, done_;
  bool work_ = false, finished_ = false, quit_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace convnet::detail
