// A build without MPI: World never starts it (see World::World).
#include "dist/mpi.hpp"

namespace convnet::dist {

bool mpi_built() { return false; }
std::unique_ptr<Communicator> start_mpi(int&, char**&) { return nullptr; }
void finish_mpi() {}

}  // namespace convnet::dist
