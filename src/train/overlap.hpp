// The overlapped gradient reduction of a data-parallel step (FitOptions::reduction =
// Reduction::Overlapped): a GradientSync that cuts the gradient arena into buckets and, as the
// backward pass finishes each one, hands it to a communication thread that sums it across the
// ranks (Communicator::ordered_sum: the same bits as summing the whole arena after the backward
// pass) while the backward pass goes on.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "convnet/distributed.hpp"
#include "convnet/model.hpp"

namespace convnet::detail {

class OverlappedReduction final : public GradientSync<float> {
 public:
  // Buckets over grads (the model's gradient arena): the first of first_bucket values, then
  // of `bucket` values each (PyTorch DDP's 1 MB and 25 MB are 262144 and 6553600 floats).
  OverlappedReduction(Communicator& comm, std::span<float> grads, int64_t first_bucket,
                      int64_t bucket);
  ~OverlappedReduction() override;
  OverlappedReduction(const OverlappedReduction&) = delete;
  OverlappedReduction& operator=(const OverlappedReduction&) = delete;

  // The arena's layout puts the layers the backward pass finishes first at its front, so the
  // finished gradients are always a prefix: every bucket inside it can go.
  void on_gradients_ready(std::span<float> grads, int64_t offset) override;
  // The rest, then waits until every bucket is reduced.
  void on_backward_end(std::span<float> grads) override;

  // The ranks whose gradients count in the next step's sums (see Communicator::ordered_sum).
  void set_contributors(int contributors) { contributors_ = contributors; }
  // Waits until the buckets handed over so far are reduced (a step that failed part-way).
  void finish_queued();
  // Seconds the communication thread spent reducing, and the part of it the step waited for at
  // the end of the backward pass (not hidden behind it); both summed since the last reset.
  double reduce_seconds() const { return reduce_seconds_; }
  double waited_seconds() const { return waited_seconds_; }
  void reset_times() { reduce_seconds_ = waited_seconds_ = 0; }
  size_t buckets() const { return bounds_.size() - 1; }

 private:
  void enqueue_ready(int64_t ready_end);
  void run();

  Communicator& comm_;
  std::span<float> grads_;
  std::vector<int64_t> bounds_;  // bucket b is [bounds_[b], bounds_[b + 1])
  std::mutex mutex_;
  std::condition_variable work_, done_;
  size_t queued_ = 0, finished_ = 0;  // buckets handed over and reduced, this step
  int64_t step_ = 0;
  int contributors_ = 1;
  bool stop_ = false;
  double reduce_seconds_ = 0, waited_seconds_ = 0;
  std::thread thread_;
};

}  // namespace convnet::detail
