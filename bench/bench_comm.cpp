// bench_comm: the gradient reductions against the link they run on. Under mpirun with 2 ranks,
// for a buffer of each size: a plain send/receive loop (rank 0 MPI_Send, rank 1 MPI_Recv: the
// link's bandwidth one way), a plain MPI_Sendrecv exchange (both ranks send the buffer to each
// other at once: both directions, which a reduction uses), then Communicator::ordered_sum (the
// deterministic reduction, and the overlapped mode's) and Communicator::sum (MPI_Allreduce, in
// MPI's own order). A reduction's bus bandwidth is size · 2(N-1)/N / time, the data each rank must
// send (nccl-tests' busbw), so it compares directly with the exchange's.
//
//   mpirun -np 2 build/bench_comm [MiB ...]      (default: 1.7 and 25 MiB; medians of 15 runs)
// Two hosts on this machine with the link shaped: tests/dist/two_hosts.sh up 1gbit, then
//   tests/dist/two_hosts.sh run mpiexec -np 2 build/bench_comm
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "convnet/distributed.hpp"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <class F>
double seconds_of(F&& run, int reps) {
  std::vector<double> times;
  run();  // warm-up: connections, registrations
  for (int i = 0; i < reps; ++i) {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto start = std::chrono::steady_clock::now();
    run();
    times.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  // Every rank's median; the slowest rank's is the operation's.
  double mine = median(times), slowest = 0;
  MPI_Allreduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return slowest;
}

}  // namespace

int main(int argc, char** argv) {
  convnet::World world(argc, argv);
  convnet::Communicator& comm = world.communicator();
  const int rank = comm.rank(), ranks = comm.size();
  if (ranks != 2) {
    if (rank == 0) std::fprintf(stderr, "bench_comm: run it under mpirun -np 2\n");
    return 2;
  }
  std::vector<double> sizes_mib;
  for (int i = 1; i < argc; ++i) sizes_mib.push_back(std::atof(argv[i]));
  if (sizes_mib.empty()) sizes_mib = {1.7, 25};
  const int reps = 15;
  if (rank == 0)
    std::printf("%8s %12s %14s %16s %14s %11s %11s\n", "MiB", "send MB/s", "exchange MB/s",
                "ordered_sum MB/s", "allreduce MB/s", "ordered/send", "allred/send");
  for (const double mib : sizes_mib) {
    const auto n = static_cast<size_t>(mib * 1048576 / 4);
    std::vector<float> send(n, 1.0f), recv(n), data(n);
    const int peer = 1 - rank;
    const double one_way = seconds_of(
        [&] {
          if (rank == 0)
            MPI_Send(send.data(), static_cast<int>(n), MPI_FLOAT, 1, 1, MPI_COMM_WORLD);
          else
            MPI_Recv(recv.data(), static_cast<int>(n), MPI_FLOAT, 0, 1, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
        },
        reps);
    const double exchange = seconds_of(
        [&] {
          MPI_Sendrecv(send.data(), static_cast<int>(n), MPI_FLOAT, peer, 0, recv.data(),
                       static_cast<int>(n), MPI_FLOAT, peer, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        },
        reps);
    const double ordered = seconds_of(
        [&] {
          std::fill(data.begin(), data.end(), 1.0f);
          comm.ordered_sum(data, ranks, "bench");
        },
        reps);
    const double allreduce = seconds_of(
        [&] {
          std::fill(data.begin(), data.end(), 1.0f);
          comm.sum(data, "bench");
        },
        reps);
    const double bytes = static_cast<double>(n) * 4, bus = bytes * 2 * (ranks - 1) / ranks;
    if (rank == 0)
      std::printf("%8.2f %12.0f %14.0f %16.0f %14.0f %11.2f %11.2f\n", mib, bytes / one_way / 1e6,
                  bytes / exchange / 1e6, bus / ordered / 1e6, bus / allreduce / 1e6,
                  one_way / ordered * bus / bytes, one_way / allreduce * bus / bytes);
  }
  return 0;
}
