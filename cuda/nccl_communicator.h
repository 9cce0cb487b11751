// The NCCL backend of Communicator: collectives on GPU tensors of one device per rank, built when
// CMake finds NCCL (OMPQ_WITH_NCCL). ompq::init() registers it as core's GPU communicator factory
// (make_gpu_communicator()), so nothing outside cuda/ includes this header.
#pragma once

#include <memory>

#include "core/comm/communicator.h"

namespace ompq::cuda {

#if OMPQ_WITH_NCCL
// Rank 0 draws NCCL's unique id, `bootstrap` (the MPI communicator, which must outlive the
// result) broadcasts it, and every rank joins with ncclCommInitRank on `gpu`. Collectives are
// issued on the device's ompq stream (cuda/runtime.h), ordered after the kernels that produced
// their tensors; wait() polls their completion with the bootstrap's kind of watchdog: past
// `timeout_seconds`, it aborts the NCCL communicator and throws an Error saying so. Any failure
// (an NCCL call, an asynchronous error from a lost peer, the timeout) aborts it before reporting,
// so that no NCCL kernel is left holding the stream; every later collective then fails at once.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, int gpu,
                                                     double timeout_seconds = 600.0);
#endif

}  // namespace ompq::cuda
