// A job that loses a rank: every rank allreduces in a loop and the last rank leaves abruptly
// (std::_Exit, as a crashed or killed process would) at step 3. The survivors must end with a
// clear error naming the lost rank, never hang. Driven by tests/mpi/fault_test.sh.
//   mpi_lost_rank EXIT_CODE TIMEOUT_SECONDS
#include <cstdio>
#include <cstdlib>

#include "core/comm/communicator.h"
#include "runtime/init.h"

int main(int argc, char** argv) {
  ompq::init();
  const int exit_code = argc > 1 ? std::atoi(argv[1]) : 3;
  ompq::CommOptions options;
  options.timeout_seconds = argc > 2 ? std::atof(argv[2]) : 5.0;
  auto comm = ompq::make_communicator(ompq::DistMode::kMpi, options);
  if (!comm.ok()) {
    std::fprintf(stderr, "mpi_lost_rank: %s\n", std::string(comm.status().message()).c_str());
    return 1;
  }
  const int rank = (*comm)->rank(), victim = (*comm)->size() - 1;
  try {
    for (int step = 0; step < 10; ++step) {
      if (rank == victim && step == 3) std::_Exit(exit_code);
      ompq::Tensor t = ompq::Tensor::ones({1024});
      (*comm)->allreduce(t);
    }
  } catch (const ompq::Error& e) {
    std::fprintf(stderr, "mpi_lost_rank: rank %d exits with status 2: %s\n", rank, e.what());
    return 2;
  }
  std::fprintf(stderr, "mpi_lost_rank: rank %d finished every step without noticing rank %d\n",
               rank, victim);
  return 0;
}
