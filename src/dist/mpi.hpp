// The MPI communicator (src/dist/mpi.cpp), or stubs when the build has no MPI
// (src/dist/no_mpi.cpp): World's only way to MPI.
#pragma once

#include <memory>

#include "convnet/distributed.hpp"

namespace convnet::dist {

bool mpi_built();
// MPI_Init_thread (MPI_THREAD_SERIALIZED: one thread at a time makes MPI calls) and a
// communicator over MPI_COMM_WORLD.
std::unique_ptr<Communicator> start_mpi(int& argc, char**& argv);
// MPI_Finalize.
void finish_mpi();

}  // namespace convnet::dist
