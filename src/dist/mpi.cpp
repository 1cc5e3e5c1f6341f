// The communicator over MPI_COMM_WORLD. Every collective is MPI's non-blocking form, waited on
// by polling against the communicator's timeout, so that a peer that stopped answering ends the
// job with a message instead of hanging it. The ordered sum is built from MPI_Alltoallv and
// MPI_Allgatherv (a reduce-scatter and an allgather, as a ring allreduce moves the same
// 2·(N-1)/N of the data): each rank adds its chunk of every rank's data in rank order.
#include "dist/mpi.hpp"

#include <mpi.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "convnet/error.hpp"

namespace convnet::dist {
namespace {

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    const auto n = static_cast<size_t>(size_);
    counts_.resize(n);
    displs_.resize(n);
    recv_counts_.resize(n);
    recv_displs_.resize(n);
    if (rank_ == 0 && size_ > 1) {
      arrived_.assign(n, 0);
      heard_.assign(n, std::chrono::steady_clock::now());
      arrival_in_.assign(n, 0);
      arrival_recv_.assign(n, MPI_REQUEST_NULL);
      for (int r = 1; r < size_; ++r) post_arrival(r);
    }
  }
  ~MpiCommunicator() override {
    for (MPI_Request& request : arrival_recv_)
      if (request != MPI_REQUEST_NULL) {
        MPI_Cancel(&request);
        MPI_Wait(&request, MPI_STATUS_IGNORE);
      }
    MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void ordered_sum(std::span<float> data, int contributors, const char* what) override {
    CONVNET_CHECK(contributors >= 1 && contributors <= size_, "ordered_sum: ", contributors,
                  " contributors among ", size_, " ranks");
    if (size_ == 1) return;
    const auto total = static_cast<int64_t>(data.size());
    CONVNET_CHECK(total <= INT_MAX, "ordered_sum: ", total,
                  " values are more than one MPI call "
                  "takes");
    // Rank j owns chunk j = [total·j/N, total·(j+1)/N).
    for (int j = 0; j < size_; ++j) {
      const int64_t begin = total * j / size_, end = total * (j + 1) / size_;
      displs_[static_cast<size_t>(j)] = static_cast<int>(begin);
      counts_[static_cast<size_t>(j)] = static_cast<int>(end - begin);
    }
    const int mine = counts_[static_cast<size_t>(rank_)];
    for (int i = 0; i < size_; ++i) {
      recv_counts_[static_cast<size_t>(i)] = mine;
      recv_displs_[static_cast<size_t>(i)] = i * mine;
    }
    // Grows at the first call only (and when the model grows).
    if (recv_.size() < static_cast<size_t>(size_) * static_cast<size_t>(mine))
      recv_.resize(static_cast<size_t>(size_) * static_cast<size_t>(mine));
    MPI_Request request;
    arrive();
    MPI_Ialltoallv(data.data(), counts_.data(), displs_.data(), MPI_FLOAT, recv_.data(),
                   recv_counts_.data(), recv_displs_.data(), MPI_FLOAT, comm_, &request);
    wait(request, what, "the reduce-scatter");
    // out = ((d_0 + d_1) + d_2) + ... over the contributors, element by element.
    float* out = data.data() + displs_[static_cast<size_t>(rank_)];
    std::copy_n(recv_.data(), mine, out);
    for (int i = 1; i < contributors; ++i) {
      const float* d = recv_.data() + static_cast<size_t>(i) * static_cast<size_t>(mine);
      for (int k = 0; k < mine; ++k) out[k] += d[k];
    }
    arrive();
    MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data.data(), counts_.data(), displs_.data(),
                    MPI_FLOAT, comm_, &request);
    wait(request, what, "the allgather");
  }

  void sum(std::span<float> data, const char* what) override {
    if (size_ == 1) return;
    CONVNET_CHECK(data.size() <= INT_MAX, "sum: ", data.size(), " values are too many");
    MPI_Request request;
    arrive();
    MPI_Iallreduce(MPI_IN_PLACE, data.data(), static_cast<int>(data.size()), MPI_FLOAT, MPI_SUM,
                   comm_, &request);
    wait(request, what, "the all-reduce");
  }

  void broadcast(std::span<std::byte> data, int root, const char* what) override {
    if (size_ == 1) return;
    CONVNET_CHECK(data.size() <= INT_MAX, "broadcast: ", data.size(), " bytes are too many");
    MPI_Request request;
    arrive();
    MPI_Ibcast(data.data(), static_cast<int>(data.size()), MPI_BYTE, root, comm_, &request);
    wait(request, what, "the broadcast");
  }

  void allgather(std::span<const std::byte> mine, std::span<std::byte> all,
                 const char* what) override {
    CONVNET_CHECK(all.size() == mine.size() * static_cast<size_t>(size_), "allgather: ", all.size(),
                  " bytes for ", size_, " ranks of ", mine.size());
    CONVNET_CHECK(mine.size() <= INT_MAX, "allgather: ", mine.size(), " bytes are too many");
    MPI_Request request;
    arrive();
    MPI_Iallgather(mine.data(), static_cast<int>(mine.size()), MPI_BYTE, all.data(),
                   static_cast<int>(mine.size()), MPI_BYTE, comm_, &request);
    wait(request, what, "the gather");
  }

  [[noreturn]] void abort(const std::string& message, int code) override {
    std::fprintf(stderr, "%s\n", message.c_str());
    std::fflush(stderr);
    MPI_Abort(comm_, code);
    std::_Exit(code);  // MPI_Abort does not return; this is for the compiler
  }

 private:
  // Waits for `request`, polling: a spin first (a collective on one host completes in
  // microseconds), then with short sleeps, so that ranks that share cores leave them to the
  // rank still computing. Past the timeout, ends the job naming this rank and the operation.
  // Arrivals, so that a rank that stops answering can be named: before each collective every
  // rank but 0 sends rank 0 the number of collectives it has entered (a small message of its
  // own tag, never waited for), and rank 0 keeps each rank's latest. A rank that has not
  // reached the collective rank 0 waits in is one that stopped or died.
  static constexpr int kArrivalTag = 7001;

  void post_arrival(int r) {
    MPI_Irecv(&arrival_in_[static_cast<size_t>(r)], 1, MPI_INT64_T, r, kArrivalTag, comm_,
              &arrival_recv_[static_cast<size_t>(r)]);
  }

  // Rank 0: every arrival that has come in.
  void drain_arrivals() {
    for (int r = 1; r < size_; ++r)
      for (;;) {
        int done = 0;
        MPI_Test(&arrival_recv_[static_cast<size_t>(r)], &done, MPI_STATUS_IGNORE);
        if (!done) break;
        arrived_[static_cast<size_t>(r)] = arrival_in_[static_cast<size_t>(r)];
        heard_[static_cast<size_t>(r)] = std::chrono::steady_clock::now();
        post_arrival(r);
      }
  }

  void arrive() {
    ++entered_;
    if (size_ == 1) return;
    if (rank_ == 0) return drain_arrivals();
    tell_rank_0();
  }

  // Rank r > 0: the number of collectives entered, to rank 0; also sent while waiting, as a
  // heartbeat. The buffers are reused in turn; a send long done when its slot comes round again.
  void tell_rank_0() {
    int64_t& count = arrival_out_[static_cast<size_t>(sends_++) % arrival_out_.size()];
    count = entered_;
    MPI_Request request;
    MPI_Isend(&count, 1, MPI_INT64_T, 0, kArrivalTag, comm_, &request);
    MPI_Request_free(&request);
    last_told_ = std::chrono::steady_clock::now();
  }

  // Who has not reached the collective this rank waits in, as far as this rank can tell.
  std::string missing() {
    if (rank_ != 0)
      return "rank 0 names the ranks that have not reached it; if it does not, rank 0 is the one";
    drain_arrivals();
    // Ranks waiting as rank 0 is send a heartbeat every 0.2 s: one silent for a second has
    // stopped, whether before the collective or inside it.
    const auto now = std::chrono::steady_clock::now();
    std::string silent, behind;
    int silent_count = 0, behind_count = 0;
    for (int r = 1; r < size_; ++r) {
      const auto i = static_cast<size_t>(r);
      if (std::chrono::duration<double>(now - heard_[i]).count() > 1.0) {
        silent += (silent.empty() ? "" : ", ") + std::to_string(r);
        ++silent_count;
      } else if (arrived_[i] < entered_) {
        behind += (behind.empty() ? "" : ", ") + std::to_string(r);
        ++behind_count;
      }
    }
    if (silent_count > 0)
      return (silent_count == 1 ? "rank " : "ranks ") + silent +
             (silent_count == 1 ? " has" : " have") + " stopped answering (stopped or died)";
    if (behind_count > 0)
      return (behind_count == 1 ? "rank " : "ranks ") + behind +
             (behind_count == 1 ? " has" : " have") + " not reached it (still computing?)";
    return "every rank has reached it and answers";
  }

  void wait(MPI_Request& request, const char* what, const char* step) {
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    for (int polls = 0;; ++polls) {
      int done = 0;
      MPI_Test(&request, &done, MPI_STATUS_IGNORE);
      if (done) return;
      if (polls < 2000) continue;
      std::this_thread::sleep_for(std::chrono::microseconds(20));
      if (rank_ != 0 && (polls & 255) == 0 &&
          std::chrono::steady_clock::now() - last_told_ > std::chrono::milliseconds(200))
        tell_rank_0();  // a heartbeat
      if (rank_ == 0 && (polls & 255) == 0) drain_arrivals();
      if (timeout() > 0 && (polls & 255) == 0 &&
          std::chrono::duration<double>(Clock::now() - start).count() > timeout()) {
        char message[512];
        std::snprintf(message, sizeof message,
                      "convnet: rank %d of %d waited %.0f s (--comm-timeout) for its peers in "
                      "%s of %s (collective %lld): %s; ending the job",
                      rank_, size_, timeout(), step, what, static_cast<long long>(entered_),
                      missing().c_str());
        abort(message, 1);
      }
    }
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::vector<int> counts_, displs_, recv_counts_, recv_displs_;
  std::vector<float> recv_;
  int64_t entered_ = 0;              // collectives this rank has entered
  std::vector<int64_t> arrived_;     // rank 0: each rank's latest count
  std::vector<int64_t> arrival_in_;  // rank 0: a receive buffer per rank
  std::vector<MPI_Request> arrival_recv_;
  std::vector<std::chrono::steady_clock::time_point> heard_;  // rank 0: when each last spoke
  std::chrono::steady_clock::time_point last_told_{};         // the other ranks
  uint64_t sends_ = 0;                       // rank 0: the receive posted for each rank
  std::array<int64_t, 1024> arrival_out_{};  // the other ranks: send buffers, in turn
};

}  // namespace

bool mpi_built() { return true; }

std::unique_ptr<Communicator> start_mpi(int& argc, char**& argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
  return std::make_unique<MpiCommunicator>();
}

void finish_mpi() { MPI_Finalize(); }

}  // namespace convnet::dist
