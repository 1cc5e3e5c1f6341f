// Data-parallel training across processes, on MPI. A Communicator is what fit() needs from the
// processes of a job: its rank and size, an ORDERED sum of the gradients (so that N processes
// give the same bits as one process adding N micro-batches' gradients in order), broadcasts and
// gathers of small figures, and a way to end the whole job. World starts MPI when the program
// was launched by an MPI launcher (mpirun, mpiexec) and is otherwise a world of one process, in
// which every operation is the identity and MPI is never touched.
//
//   int main(int argc, char** argv) {
//     convnet::World world(argc, argv);        // MPI_Init_thread under mpirun, else nothing
//     convnet::Communicator& comm = world.communicator();
//     FitOptions fit{.batch = 256, .communicator = &comm};   // each rank computes its shard
//     ...
//   }
//
// Every collective here is called by every rank in the same order. Each one waits at most the
// communicator's timeout for its peers and then ends the job with a message naming the rank
// that gave up waiting and the operation, and from rank 0 the ranks that have not reached it (a
// peer that hangs or died must never hang the job).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "convnet/error.hpp"

namespace convnet {

// An error that every rank of a job throws alike, having agreed on it (a step that failed on one
// rank, a start-up mismatch): each rank can end normally, and one (rank 0) report it.
class JobError : public Error {
 public:
  using Error::Error;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // On every rank, data becomes the sum of the first `contributors` ranks' data (1 <= contributors
  // <= size()), added element by element in rank order: ((d_0 + d_1) + d_2) + ...; the data of
  // the other ranks is ignored. Every rank passes a span of the same size. The order is what
  // makes the result the same bits as one process adding the ranks' parts in turn, which
  // MPI_Allreduce does not promise (the standard lets it add in any order). `what` names the
  // operation in a timeout message ("gradients of step 12").
  virtual void ordered_sum(std::span<float> data, int contributors, const char* what) = 0;
  // On every rank, data becomes the sum of every rank's data, added in whatever order MPI
  // chooses (MPI_Allreduce's own algorithm): the same on every rank, but not necessarily the bits
  // of ordered_sum. For the overlapped reduction.
  virtual void sum(std::span<float> data, const char* what) = 0;
  // On every rank, data becomes root's.
  virtual void broadcast(std::span<std::byte> data, int root, const char* what) = 0;
  // all[r * mine.size() ... (r + 1) * mine.size()) = rank r's `mine`, on every rank.
  virtual void allgather(std::span<const std::byte> mine, std::span<std::byte> all,
                         const char* what) = 0;
  // Ends every process of the job at once with exit status `code`, after printing `message`
  // (with this rank) on stderr. For a failure on one rank that the others cannot learn of.
  [[noreturn]] virtual void abort(const std::string& message, int code) = 0;
  // How long a collective waits for its peers before abort() (seconds; 0: for ever).
  void set_timeout(double seconds) { timeout_ = seconds; }
  double timeout() const { return timeout_; }

  // Typed helpers over the byte operations.
  template <class T>
  void broadcast_values(std::span<T> data, int root, const char* what) {
    broadcast(std::as_writable_bytes(data), root, what);
  }
  template <class T>
  void allgather_values(std::span<const T> mine, std::span<T> all, const char* what) {
    allgather(std::as_bytes(mine), std::as_writable_bytes(all), what);
  }
  // The text of root on every rank.
  void broadcast_text(std::string& text, int root, const char* what);

 private:
  double timeout_ = 300;
};

// The world of one process: rank 0 of 1; every collective leaves its data as it is.
class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void ordered_sum(std::span<float>, int, const char*) override {}
  void sum(std::span<float>, const char*) override {}
  void broadcast(std::span<std::byte>, int, const char*) override {}
  void allgather(std::span<const std::byte> mine, std::span<std::byte> all, const char*) override;
  [[noreturn]] void abort(const std::string& message, int code) override;
};

// A 64-bit fingerprint of bytes (not cryptographic: for telling ranks' copies apart).
uint64_t fingerprint(std::span<const std::byte> bytes, uint64_t seed = 0);
template <class T>
uint64_t fingerprint_of(std::span<const T> values, uint64_t seed = 0) {
  return fingerprint(std::as_bytes(values), seed);
}
inline uint64_t fingerprint_of(const std::string& text, uint64_t seed = 0) {
  return fingerprint(std::as_bytes(std::span(text.data(), text.size())), seed);
}

// Something every rank must have alike before training (the model, the data, the recipe): a
// name for messages and a fingerprint.
struct Agreement {
  std::string name;
  uint64_t fingerprint = 0;
};
// Compares the items across ranks (every rank passes the same names in the same order) and
// throws convnet::Error, on every rank alike, naming the first item they disagree on and the
// ranks that differ from rank 0. A world of one agrees with itself.
void require_agreement(Communicator& comm, std::span<const Agreement> items);

// The processes this program runs as. Constructed once, first thing in main() (it may change
// argc and argv, as MPI_Init does), and destroyed last.
class World {
 public:
  World(int& argc, char**& argv);
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;
  Communicator& communicator() { return *communicator_; }
  // Whether this build has MPI (found by CMake when it was configured).
  static bool mpi_built();
  // Whether an MPI launcher started this process ($OMPI_COMM_WORLD_SIZE, $PMI_SIZE or
  // $PMIX_RANK in its environment): only then does World start MPI.
  static bool launched_by_mpi();

 private:
  std::unique_ptr<Communicator> communicator_;
  bool mpi_started_ = false;
};

}  // namespace convnet
