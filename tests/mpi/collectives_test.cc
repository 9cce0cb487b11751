// The MPI communicator's collectives under mpirun (any number of ranks; CI runs 2): every dtype
// it carries, sizes from empty to past the first gradient bucket, several in flight at once.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "tests/mpi/world.h"

namespace ompq {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;
using testing::world;

// 0, 1, odd, and 1.2 MB of f32 (past DataParallel's 1 MiB first bucket).
const int64_t kSizes[] = {0, 1, 7, 300001};
const DType kDTypes[] = {DType::kF32, DType::kF64, DType::kI32, DType::kI64};

// rank r holds (r + 1) * (i % 13): small integers, exact in every dtype.
Tensor rank_pattern(int64_t n, DType dtype, int rank) {
  std::vector<double> values(n);
  for (int64_t i = 0; i < n; ++i) values[i] = (rank + 1) * static_cast<double>(i % 13);
  return Tensor::from_vector<double>(values, {n}).to(dtype);
}

TEST(MpiCommunicator, KnowsTheJobShape) {
  Communicator& comm = world();
  EXPECT_STREQ(comm.backend(), "mpi");
  const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
  if (size != nullptr) EXPECT_EQ(comm.size(), std::atoi(size));
  EXPECT_GE(comm.rank(), 0);
  EXPECT_LT(comm.rank(), comm.size());
  EXPECT_GE(comm.local_rank(), 0);
  EXPECT_LT(comm.local_rank(), comm.local_size());
  EXPECT_LE(comm.local_size(), comm.size());
}

TEST(MpiCommunicator, AllreduceSumsEverySizeAndDtype) {
  Communicator& comm = world();
  const double ranks_sum = comm.size() * (comm.size() + 1) / 2.0;
  for (DType dtype : kDTypes) {
    for (int64_t n : kSizes) {
      SCOPED_TRACE(absl::StrCat(dtype_name(dtype), " x ", n));
      Tensor t = rank_pattern(n, dtype, comm.rank());
      comm.allreduce(t, ReduceOp::kSum);
      std::vector<double> got = t.to_vector<double>();
      ASSERT_EQ(got.size(), static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(got[i], ranks_sum * (i % 13)) << "element " << i;
      }
    }
  }
}

TEST(MpiCommunicator, AllreduceAveragesFloats) {
  Communicator& comm = world();
  for (DType dtype : {DType::kF32, DType::kF64}) {
    Tensor t = Tensor::full({9}, comm.rank(), dtype);
    comm.allreduce(t, ReduceOp::kAvg);
    EXPECT_EQ(t.to_vector<double>(), std::vector<double>(9, (comm.size() - 1) / 2.0));
  }
  EXPECT_THAT([&] { comm.allreduce(Tensor::zeros({2}, DType::kI32), ReduceOp::kAvg); },
              ThrowsMessage<Error>(HasSubstr("mpi allreduce: average of a i32 tensor")));
  EXPECT_THAT([&] { comm.allreduce(Tensor::zeros({2}, DType::kF16)); },
              ThrowsMessage<Error>(HasSubstr("mpi allreduce: unsupported dtype f16")));
}

TEST(MpiCommunicator, SeveralAllreducesInFlightCompleteInAnyWaitOrder) {
  Communicator& comm = world();
  std::vector<Tensor> tensors;
  std::vector<std::unique_ptr<CommWork>> works;
  for (int64_t n : kSizes) {
    tensors.push_back(rank_pattern(n, DType::kF32, comm.rank()));
    works.push_back(comm.allreduce_async(tensors.back(), ReduceOp::kSum));
  }
  for (size_t k = works.size(); k-- > 0;) works[k]->wait();
  const double ranks_sum = comm.size() * (comm.size() + 1) / 2.0;
  for (size_t k = 0; k < tensors.size(); ++k) {
    std::vector<float> got = tensors[k].to_vector<float>();
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], ranks_sum * (i % 13));
  }
}

TEST(MpiCommunicator, BroadcastsFromEveryRoot) {
  Communicator& comm = world();
  for (int root = 0; root < comm.size(); ++root) {
    for (DType dtype : {DType::kF32, DType::kI64, DType::kU8}) {
      for (int64_t n : kSizes) {
        Tensor t = rank_pattern(n, DType::kF64, comm.rank()).to(dtype);
        comm.broadcast(t, root);
        EXPECT_EQ(t.to_vector<double>(),
                  rank_pattern(n, DType::kF64, root).to(dtype).to_vector<double>())
            << "root " << root << " " << dtype_name(dtype) << " x " << n;
      }
    }
  }
  EXPECT_THAT([&] { comm.broadcast(Tensor::zeros({1}), comm.size()); },
              ThrowsMessage<Error>(HasSubstr("is not a rank of")));
}

TEST(MpiCommunicator, AllgathersInRankOrder) {
  Communicator& comm = world();
  for (int64_t n : kSizes) {
    Tensor gathered = comm.allgather(rank_pattern(n, DType::kI32, comm.rank()));
    ASSERT_EQ(gathered.shape(), (Shape{comm.size(), n}));
    for (int r = 0; r < comm.size(); ++r) {
      EXPECT_EQ(gathered.select(0, r).to_vector<int32_t>(),
                rank_pattern(n, DType::kI32, r).to_vector<int32_t>());
    }
  }
}

TEST(MpiCommunicator, RejectsTensorsElsewhereThanTheCpu) {
  Communicator& comm = world();
  EXPECT_THAT(
      [&] {
        comm.allreduce(Tensor::zeros({4, 2}).t());
      },
      ThrowsMessage<Error>(HasSubstr("mpi allreduce: tensor of shape [2, 4] is not contiguous")));
  comm.barrier();
}

TEST(MpiCommunicator, SeparateCommunicatorsDoNotMixTheirMessages) {
  Communicator& comm = world();
  auto second = make_communicator(DistMode::kMpi);
  ASSERT_TRUE(second.ok()) << second.status();
  Tensor a = Tensor::full({3}, 1.0);
  Tensor b = Tensor::full({3}, 10.0);
  auto work_a = comm.allreduce_async(a, ReduceOp::kSum);
  (*second)->allreduce(b, ReduceOp::kSum);
  work_a->wait();
  EXPECT_EQ(a.to_vector<float>(), std::vector<float>(3, comm.size()));
  EXPECT_EQ(b.to_vector<float>(), std::vector<float>(3, 10.0f * comm.size()));
}

}  // namespace
}  // namespace ompq
