// The MPI backend of Communicator (CPU tensors), built when CMake finds MPI (OMPQ_WITH_MPI).
#pragma once

#include <memory>

#include "core/comm/communicator.h"

namespace ompq {

#if OMPQ_WITH_MPI
// Initializes MPI on first use (MPI_Init_thread, MPI_THREAD_FUNNELED: only the thread that made
// the communicator calls MPI) and finalizes it at exit; each communicator works on its own
// duplicate of MPI_COMM_WORLD. Throws Error with MPI's message when MPI cannot start.
std::unique_ptr<Communicator> make_mpi_communicator(const CommOptions& options);
#endif

}  // namespace ompq
