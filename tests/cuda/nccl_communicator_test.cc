// The NCCL communicator on one GPU as a 1-rank job (several ranks need a launcher: the mpi tests
// cover the collectives' semantics on CPU). Checks that it bootstraps through the factory that
// ompq::init() registers, that each collective runs on GPU tensors, that polling a collective
// leaves no error behind for the next kernel launch check, and that a collective past its timeout
// aborts the communicator without leaving the stream stuck.
#include "cuda/nccl_communicator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "core/comm/communicator.h"
#include "core/functional/elementwise.h"
#include "cuda/runtime.h"
#include "tests/cuda/cuda_test_util.h"

namespace ompq {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

// Milliseconds of kernels queued on cuda:0's stream, so that a collective queued next is still
// pending when the host first looks at it: 64 passes over 256 MiB.
Tensor queue_long_gpu_work() {
  Tensor x = Tensor::full({1 << 26}, 1.0, DType::kF32, Device::cuda(0));
  for (int pass = 0; pass < 64; ++pass) x = x + x;
  return x;
}

TEST(NcclCommunicator, RunsEveryCollectiveOnGpuTensorsAsOneRank) {
  OMPQ_REQUIRE_GPU();
  auto bootstrap = make_single_process_communicator();
  auto made = make_gpu_communicator(*bootstrap, 0);
  if (!made.ok() && absl::StrContains(made.status().message(), "built with NCCL")) {
    GTEST_SKIP() << made.status();
  }
  ASSERT_TRUE(made.ok()) << made.status();
  Communicator& comm = **made;
  EXPECT_STREQ(comm.backend(), "nccl");
  EXPECT_EQ(comm.size(), 1);
  EXPECT_EQ(comm.device(), Device::cuda(0));
  for (DType dtype : {DType::kF32, DType::kF64, DType::kI32, DType::kI64}) {
    Tensor t = Tensor::arange(5, dtype, Device::cuda(0));
    comm.allreduce(t, ReduceOp::kSum);
    comm.broadcast(t, 0);
    EXPECT_EQ(t.to_vector<double>(), (std::vector<double>{0, 1, 2, 3, 4})) << dtype_name(dtype);
  }
  Tensor f = Tensor::arange(3, DType::kF32, Device::cuda(0));
  comm.allreduce_async(f, ReduceOp::kAvg)->wait();
  EXPECT_EQ(f.to_vector<float>(), (std::vector<float>{0, 1, 2}));
  Tensor gathered = comm.allgather(Tensor::arange(4, DType::kI64, Device::cuda(0)));
  EXPECT_EQ(gathered.shape(), (Shape{1, 4}));
  EXPECT_EQ(gathered.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3}));
  comm.barrier();
  EXPECT_THAT([&] { comm.allreduce(Tensor::zeros({2})); },
              ThrowsMessage<Error>(HasSubstr("nccl allreduce: tensor on cpu but this "
                                             "communicator carries cuda:0")));
}

#if OMPQ_WITH_NCCL
TEST(NcclCommunicator, PollingLeavesNoErrorForTheNextLaunchCheck) {
  OMPQ_REQUIRE_GPU();
  auto bootstrap = make_single_process_communicator();
  auto comm = cuda::make_nccl_communicator(*bootstrap, 0);
  const Tensor pending = queue_long_gpu_work();
  Tensor t = Tensor::arange(5, DType::kF32, Device::cuda(0));
  std::unique_ptr<CommWork> work = comm->allreduce_async(t, ReduceOp::kSum);
  int not_ready = 0;
  while (!work->test()) {
    ++not_ready;
    ASSERT_EQ(cudaPeekAtLastError(), cudaSuccess) << "after " << not_ready << " polls";
  }
  EXPECT_GT(not_ready, 0) << "the allreduce was done before the first poll: queue more work";
  EXPECT_NO_THROW(OMPQ_CUDA_CHECK_LAUNCH());
  queue_long_gpu_work();
  comm->allreduce_async(t, ReduceOp::kSum)->wait();
  EXPECT_NO_THROW(OMPQ_CUDA_CHECK_LAUNCH());
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4}));
}

// A timeout of 0 s stands in for a peer that never answers.
TEST(NcclCommunicator, TimeoutAbortsTheCommunicatorAndTheStreamStillDrains) {
  OMPQ_REQUIRE_GPU();
  auto bootstrap = make_single_process_communicator();
  auto comm = cuda::make_nccl_communicator(*bootstrap, 0, /*timeout_seconds=*/0.0);
  const Tensor pending = queue_long_gpu_work();
  Tensor t = Tensor::arange(5, DType::kF32, Device::cuda(0));
  std::unique_ptr<CommWork> work = comm->allreduce_async(t, ReduceOp::kSum);
  EXPECT_THAT([&] { work->wait(); },
              ThrowsMessage<Error>(HasSubstr("did not complete within 0 s")));
  EXPECT_NO_THROW(cuda::synchronize(0)) << "an aborted collective must not hold the stream";
  EXPECT_THAT([&] { comm->allreduce(t, ReduceOp::kSum); },
              ThrowsMessage<Error>(HasSubstr("aborted after an earlier failure")));
  EXPECT_EQ(pending.view({-1}).slice(0, 0, 1).to(Device::cpu()).to_vector<float>(),
            std::vector<float>{18446744073709551616.0f})
      << "work queued before the collective still ran (2^64 after 64 doublings)";
}
#endif  // OMPQ_WITH_NCCL

}  // namespace
}  // namespace ompq
