// The NCCL communicator on one GPU as a 1-rank job (several ranks need a launcher: the mpi tests
// cover the collectives' semantics on CPU). Checks that it bootstraps through the factory that
// ompq::init() registers and that each collective runs on GPU tensors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "core/comm/communicator.h"
#include "tests/cuda/cuda_test_util.h"

namespace ompq {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

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

}  // namespace
}  // namespace ompq
