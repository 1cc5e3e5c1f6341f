// The world of one process, and World's choice between it and MPI.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <vector>

#include "convnet/distributed.hpp"
#include "convnet/error.hpp"
#include "dist/mpi.hpp"

namespace convnet {

void Communicator::broadcast_text(std::string& text, int root, const char* what) {
  uint64_t size = text.size();
  broadcast_values(std::span(&size, 1), root, what);
  text.resize(size);
  broadcast(std::as_writable_bytes(std::span(text.data(), text.size())), root, what);
}

void SingleProcess::allgather(std::span<const std::byte> mine, std::span<std::byte> all,
                              const char*) {
  CONVNET_CHECK(all.size() == mine.size(), "allgather: ", all.size(), " bytes for ", mine.size(),
                " from one process");
  std::copy(mine.begin(), mine.end(), all.begin());
}

void SingleProcess::abort(const std::string& message, int code) {
  std::cerr << message << "\n" << std::flush;
  std::_Exit(code);
}

uint64_t fingerprint(std::span<const std::byte> bytes, uint64_t seed) {
  // Eight bytes at a time: multiply-xorshift mixing (as in MurmurHash's finaliser), then the tail.
  uint64_t h = seed ^ (0x9E3779B97F4A7C15ULL * (bytes.size() + 1));
  auto mix = [&h](uint64_t word) {
    word *= 0xBF58476D1CE4E5B9ULL;
    word ^= word >> 31;
    h = (h ^ word) * 0x94D049BB133111EBULL;
    h ^= h >> 29;
  };
  size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes.data() + i, 8);
    mix(word);
  }
  uint64_t tail = 0;
  std::memcpy(&tail, bytes.data() + i, bytes.size() - i);
  mix(tail);
  return h;
}

void require_agreement(Communicator& comm, std::span<const Agreement> items) {
  const auto ranks = static_cast<size_t>(comm.size());
  if (ranks == 1 || items.empty()) return;
  std::vector<uint64_t> mine, all(items.size() * ranks);
  for (const Agreement& item : items) mine.push_back(item.fingerprint);
  comm.allgather_values(std::span<const uint64_t>(mine), std::span(all), "the start-up check");
  for (size_t i = 0; i < items.size(); ++i) {
    std::string differing;
    for (size_t r = 1; r < ranks; ++r)
      if (all[r * items.size() + i] != all[i])
        differing += (differing.empty() ? "" : ", ") + std::to_string(r);
    if (!differing.empty())
      throw JobError(detail::concat("the ranks of this job disagree on ", items[i].name, ": rank",
                                    differing.find(',') != std::string::npos ? "s " : " ",
                                    differing, " differ",
                                    differing.find(',') != std::string::npos ? "" : "s",
                                    " from rank 0; every rank must start from the same ",
                                    items[i].name, " (nothing was trained)"));
  }
}

namespace {

// The job's size as the launcher set it in the environment, or 0 when no launcher did.
int launcher_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"})
    if (const char* value = std::getenv(name); value && *value) return std::atoi(value);
  return std::getenv("PMIX_RANK") ? 1 : 0;
}

}  // namespace

bool World::launched_by_mpi() { return launcher_size() > 0; }

bool World::mpi_built() { return dist::mpi_built(); }

World::World(int& argc, char**& argv) {
  if (launched_by_mpi()) {
    if (!dist::mpi_built()) {
      if (const int size = launcher_size(); size > 1)
        throw Error(detail::concat(
            "started by an MPI launcher as one of ", size,
            " processes, but this convnet was built without MPI (install libopenmpi-dev and "
            "rebuild): the processes would each train alone and write the same files"));
    } else {
      communicator_ = dist::start_mpi(argc, argv);
      mpi_started_ = true;
      return;
    }
  }
  communicator_ = std::make_unique<SingleProcess>();
}

World::~World() {
  communicator_.reset();
  if (mpi_started_) dist::finish_mpi();
}

}  // namespace convnet
