// The single-process communicator, launcher detection and the choices make_communicator makes
// from them, and the GPU choice from the local rank. The MPI backend runs under mpirun in
// tests/mpi/.
#include "core/comm/communicator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

namespace ompq {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

// An environment made of `vars` only.
EnvLookup fake_env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

TEST(SingleProcessCommunicator, IsRankZeroOfOneAndLeavesTensorsAlone) {
  auto comm = make_single_process_communicator();
  EXPECT_EQ(comm->rank(), 0);
  EXPECT_EQ(comm->size(), 1);
  EXPECT_EQ(comm->local_rank(), 0);
  EXPECT_EQ(comm->local_size(), 1);
  EXPECT_STREQ(comm->backend(), "single");
  for (DType dtype : {DType::kF32, DType::kF64, DType::kI32, DType::kI64}) {
    Tensor t = Tensor::arange(5, dtype);
    comm->allreduce(t, ReduceOp::kSum);
    comm->broadcast(t, 0);
    EXPECT_EQ(t.to_vector<double>(), (std::vector<double>{0, 1, 2, 3, 4})) << dtype_name(dtype);
  }
  Tensor f = Tensor::arange(3, DType::kF64);
  comm->allreduce(f, ReduceOp::kAvg);
  EXPECT_EQ(f.to_vector<double>(), (std::vector<double>{0, 1, 2}));
  auto work = comm->allreduce_async(Tensor::zeros({0}), ReduceOp::kSum);
  EXPECT_TRUE(work->test());
  comm->barrier();
}

TEST(SingleProcessCommunicator, AllgatherStacksACopy) {
  auto comm = make_single_process_communicator();
  Tensor t = Tensor::from_vector<int32_t>({1, 2, 3, 4}, {2, 2});
  Tensor gathered = comm->allgather(t);
  EXPECT_EQ(gathered.shape(), (Shape{1, 2, 2}));
  t.fill_(0);  // the result does not alias the input
  EXPECT_EQ(gathered.to_vector<int32_t>(), (std::vector<int32_t>{1, 2, 3, 4}));
}

TEST(SingleProcessCommunicator, RejectsTensorsNoBackendCarries) {
  auto comm = make_single_process_communicator();
  EXPECT_THAT([&] { comm->allreduce(Tensor::zeros({2}, DType::kI64), ReduceOp::kAvg); },
              ThrowsMessage<Error>(HasSubstr("single allreduce: average of a i64 tensor")));
  EXPECT_THAT(
      [&] { comm->allreduce(Tensor::zeros({2}, DType::kBF16)); },
      ThrowsMessage<Error>(HasSubstr("unsupported dtype bf16 (expected f32, f64, i32 or i64)")));
  EXPECT_THAT(
      [&] {
        comm->allreduce(Tensor::zeros({3, 2}).t());
      },
      ThrowsMessage<Error>(HasSubstr("tensor of shape [2, 3] is not contiguous")));
  EXPECT_THAT([&] { comm->broadcast(Tensor(), 0); },
              ThrowsMessage<Error>(HasSubstr("single broadcast: undefined tensor")));
  EXPECT_THAT([&] { comm->broadcast(Tensor::zeros({1}), 1); },
              ThrowsMessage<Error>(HasSubstr("root 1 is not a rank of a 1-rank job")));
  auto gpu_comm = make_single_process_communicator(Device::cuda(0));
  EXPECT_THAT(
      [&] { gpu_comm->allreduce(Tensor::zeros({1})); },
      ThrowsMessage<Error>(HasSubstr("tensor on cpu but this communicator carries cuda:0")));
}

TEST(Launch, DetectsEachLauncherFromItsEnvironment) {
  EXPECT_FALSE(detect_launch(fake_env({})).launched());
  LaunchInfo mpirun =
      detect_launch(fake_env({{"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_SIZE", "8"}}));
  EXPECT_EQ(mpirun.launcher, "mpirun");
  EXPECT_EQ(mpirun.rank, 3);
  EXPECT_EQ(mpirun.size, 8);
  LaunchInfo srun = detect_launch(
      fake_env({{"SLURM_PROCID", "1"}, {"SLURM_STEP_NUM_TASKS", "16"}, {"SLURM_NTASKS", "16"}}));
  EXPECT_EQ(srun.launcher, "srun");
  EXPECT_EQ(srun.rank, 1);
  EXPECT_EQ(srun.size, 16);
  EXPECT_EQ(detect_launch(fake_env({{"PMI_RANK", "0"}, {"PMI_SIZE", "2"}})).launcher, "pmi");
  LaunchInfo pmix = detect_launch(fake_env({{"PMIX_RANK", "5"}}));
  EXPECT_EQ(pmix.launcher, "pmix");
  EXPECT_EQ(pmix.size, 0);  // PMIx does not say; MPI will
}

TEST(Launch, ABatchScriptIsNotALaunch) {
  // sbatch exports the allocation's task count and PROCID 0 to the script itself: a process the
  // script starts directly is alone, not rank 0 of 16.
  EXPECT_FALSE(detect_launch(fake_env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "16"}})).launched());
  EXPECT_FALSE(
      detect_launch(fake_env({{"OMPI_COMM_WORLD_RANK", "x"}, {"OMPI_COMM_WORLD_SIZE", "2"}}))
          .launched());
}

TEST(MakeCommunicator, WithoutALauncherIsSingleProcessAndNeedsNoMpi) {
  auto comm = make_communicator(DistMode::kAuto, {}, fake_env({}));
  ASSERT_TRUE(comm.ok()) << comm.status();
  EXPECT_STREQ((*comm)->backend(), "single");
  auto none = make_communicator(DistMode::kNone, {}, fake_env({}));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ((*none)->size(), 1);
}

TEST(MakeCommunicator, NoneUnderAMultiRankLaunchIsRefused) {
  auto comm =
      make_communicator(DistMode::kNone, {},
                        fake_env({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}}));
  EXPECT_THAT(comm.status().message(),
              HasSubstr("started by mpirun as rank 1 of 2: every rank would train alone"));
}

TEST(DistMode, Parses) {
  EXPECT_EQ(*parse_dist_mode("auto"), DistMode::kAuto);
  EXPECT_EQ(*parse_dist_mode("none"), DistMode::kNone);
  EXPECT_EQ(*parse_dist_mode("mpi"), DistMode::kMpi);
  EXPECT_THAT(parse_dist_mode("nccl").status().message(),
              HasSubstr("unknown distributed mode \"nccl\" (expected auto, none or mpi)"));
}

TEST(GpuForLocalRank, IsTheLocalRankWhenEveryRankHasAGpu) {
  EXPECT_EQ(*gpu_for_local_rank(0, 8, 8), 0);
  EXPECT_EQ(*gpu_for_local_rank(7, 8, 8), 7);
  EXPECT_EQ(*gpu_for_local_rank(1, 2, 8), 1);
  EXPECT_THAT(gpu_for_local_rank(2, 4, 2).status().message(),
              HasSubstr("4 ranks run on this node but it has 2 visible GPU(s)"));
  EXPECT_THAT(gpu_for_local_rank(0, 1, 0).status().message(), HasSubstr("0 visible GPU(s)"));
  EXPECT_THAT(gpu_for_local_rank(3, 2, 8).status().message(),
              HasSubstr("local rank 3 is not in [0, 2)"));
}

TEST(GpuCommunicator, UsesTheRegisteredFactory) {
  auto bootstrap = make_single_process_communicator();
  int asked_gpu = -1;
  set_gpu_communicator_factory([&](Communicator& boot, int gpu) {
    asked_gpu = gpu;
    EXPECT_EQ(&boot, bootstrap.get());
    return make_single_process_communicator(Device::cuda(gpu));
  });
  auto comm = make_gpu_communicator(*bootstrap, 3);
  ASSERT_TRUE(comm.ok()) << comm.status();
  EXPECT_EQ(asked_gpu, 3);
  EXPECT_EQ((*comm)->device(), Device::cuda(3));

  set_gpu_communicator_factory([](Communicator&, int) -> std::unique_ptr<Communicator> {
    throw Error("ncclCommInitRank failed: unhandled system error");
  });
  EXPECT_THAT(make_gpu_communicator(*bootstrap, 0).status().message(),
              HasSubstr("rank 0 of 1: ncclCommInitRank failed"));
  set_gpu_communicator_factory(nullptr);
  EXPECT_THAT(make_gpu_communicator(*bootstrap, 0).status().message(),
              HasSubstr("need the CUDA backend built with NCCL"));
}

}  // namespace
}  // namespace ompq
