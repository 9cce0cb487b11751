// The MPI communicator every test of mpi_tests shares (MPI starts once per process).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "core/comm/communicator.h"

namespace ompq::testing {

inline Communicator& world() {
  static std::unique_ptr<Communicator> comm = [] {
    CommOptions options;
    // A test that fails on one rank before a collective leaves the others waiting: end them
    // with a message instead of at ctest's timeout.
    options.timeout_seconds = 60;
    auto made = make_communicator(DistMode::kMpi, options);
    if (!made.ok()) {
      std::fprintf(stderr, "mpi_tests: %s\n", std::string(made.status().message()).c_str());
      std::exit(1);
    }
    return std::move(*made);
  }();
  return *comm;
}

}  // namespace ompq::testing
