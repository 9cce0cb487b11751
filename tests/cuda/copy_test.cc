// CUDA copy_ and fill_: host<->device round trips, dtype conversion, strides and broadcasting on
// the device, against the CPU kernels on the same inputs. Conversions share core/convert.h with
// the CPU, so results must be bit-exact. Needs a GPU.
#include "core/ops/copy.h"

#include <gtest/gtest.h>

#include "cuda/runtime.h"
#include "cuda_test_util.h"

namespace ompq {
namespace {

using testing::expect_equal;
using testing::random_tensor;

const DType kAllDTypes[] = {DType::kF32, DType::kF64, DType::kBF16, DType::kF16,
                            DType::kI8,  DType::kU8,  DType::kI32,  DType::kI64};

TEST(CudaCopy, HostDeviceRoundTripKeepsEveryDtypeExactly) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 1;
  for (DType dtype : kAllDTypes) {
    for (const Shape& shape : {Shape{}, Shape{1}, Shape{1000003}, Shape{3, 5, 7}}) {
      Tensor host = random_tensor(shape, dtype, seed++);
      Tensor device = host.to(Device::cuda());
      EXPECT_TRUE(device.device().is_cuda());
      EXPECT_EQ(device.dtype(), dtype);
      Tensor back = device.to(Device::cpu());
      ASSERT_EQ(back.nbytes(), host.nbytes());
      EXPECT_EQ(std::memcmp(back.data_ptr(), host.data_ptr(), host.nbytes()), 0)
          << dtype_name(dtype) << " " << shape_str(shape);
    }
  }
}

TEST(CudaCopy, DtypeConversionOnTheDeviceMatchesTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 100;
  for (DType from : kAllDTypes) {
    // Non-negative: converting a negative value to u8 is undefined.
    Tensor host = testing::random_tensor_in({2, 513}, from, seed++, 0.0, 100.0);
    Tensor device = host.to(Device::cuda());
    for (DType to : kAllDTypes) {
      SCOPED_TRACE(std::string(dtype_name(from)) + " -> " + dtype_name(to));
      expect_equal(host.to(to), device.to(to));
    }
  }
}

// The same copy_(dst_view, src_view) on the CPU and on the GPU, for views made by `view` from
// fresh tensors of `dst_shape` / `src_shape`.
template <typename DstView, typename SrcView>
void expect_strided_copy_matches(const Shape& dst_shape, DType dst_dtype, const DstView& dst_view,
                                 const Shape& src_shape, DType src_dtype, const SrcView& src_view,
                                 uint64_t seed) {
  const Tensor src_host = random_tensor(src_shape, src_dtype, seed);
  const Tensor dst_init = random_tensor(dst_shape, dst_dtype, seed + 1);
  Tensor dst_cpu = dst_init.clone();
  ops::copy_(dst_view(dst_cpu), src_view(src_host));
  // host -> device into a strided destination
  Tensor dst_h2d = dst_init.to(Device::cuda());
  ops::copy_(dst_view(dst_h2d), src_view(src_host));
  expect_equal(dst_cpu, dst_h2d, "host to device");
  // device -> device
  Tensor dst_d2d = dst_init.to(Device::cuda());
  ops::copy_(dst_view(dst_d2d), src_view(src_host.to(Device::cuda())));
  expect_equal(dst_cpu, dst_d2d, "device to device");
  // device -> host into a strided destination
  Tensor dst_d2h = dst_init.clone();
  ops::copy_(dst_view(dst_d2h), src_view(src_host.to(Device::cuda())));
  expect_equal(dst_cpu, dst_d2h, "device to host");
}

TEST(CudaCopy, StridedAndBroadcastCopiesMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  const auto same = [](const Tensor& t) { return t; };
  const auto transposed = [](const Tensor& t) { return t.transpose(0, 2); };
  const auto stepped = [](const Tensor& t) { return t.slice(1, 1, 6, 2).slice(2, 0, 7, 3); };
  const auto channels_last = [](const Tensor& t) { return t.permute({0, 2, 3, 1}); };
  uint64_t seed = 500;
  for (DType dst_dtype : {DType::kF32, DType::kF64}) {
    for (DType src_dtype : {DType::kF32, DType::kF64, DType::kF16, DType::kI32}) {
      SCOPED_TRACE(std::string(dtype_name(src_dtype)) + " -> " + dtype_name(dst_dtype));
      // transposed source into a contiguous destination and back
      expect_strided_copy_matches({7, 5, 3}, dst_dtype, same, {3, 5, 7}, src_dtype, transposed,
                                  seed += 2);
      expect_strided_copy_matches({3, 5, 7}, dst_dtype, transposed, {7, 5, 3}, src_dtype, same,
                                  seed += 2);
      // sliced with steps on both sides: [3, 3, 3] views
      expect_strided_copy_matches({3, 7, 8}, dst_dtype, stepped, {3, 6, 9}, src_dtype, stepped,
                                  seed += 2);
      // NCHW source into a channels-last view, odd sizes
      expect_strided_copy_matches({2, 7, 9, 5}, dst_dtype, same, {2, 5, 7, 9}, src_dtype,
                                  channels_last, seed += 2);
      // broadcast: a row, a column and a scalar expanded into [17, 33]
      const auto as_matrix = [](const Tensor& t) { return t.expand({17, 33}); };
      expect_strided_copy_matches({17, 33}, dst_dtype, same, {1, 33}, src_dtype, as_matrix,
                                  seed += 2);
      expect_strided_copy_matches({17, 33}, dst_dtype, same, {17, 1}, src_dtype, as_matrix,
                                  seed += 2);
      expect_strided_copy_matches(
          {17, 33}, dst_dtype, [](const Tensor& t) { return t.t(); }, {}, src_dtype,
          [](const Tensor& t) {
            return t.expand({33, 17});
          },
          seed += 2);
    }
  }
}

TEST(CudaCopy, MoreThan2To31ElementsUseSixtyFourBitIndices) {
  OMPQ_REQUIRE_GPU();
  const int64_t n = (int64_t{1} << 31) + 17;  // 2 GiB of u8
  Tensor big = Tensor::zeros({n}, DType::kU8, Device::cuda());
  // Elements 2^30 apart: offsets beyond 2^31 with only 3 elements.
  big.slice(0, 0, n, int64_t{1} << 30).fill_(7);
  big.slice(0, n - 5, n).fill_(9);
  EXPECT_EQ(big.slice(0, 0, n, int64_t{1} << 30).to_vector<uint8_t>(),
            (std::vector<uint8_t>{7, 7, 7}));
  EXPECT_EQ(big.slice(0, n - 6, n).to_vector<uint8_t>(), (std::vector<uint8_t>{0, 9, 9, 9, 9, 9}));
  EXPECT_EQ(big.slice(0, (int64_t{1} << 30) + 1, (int64_t{1} << 30) + 3).to_vector<uint8_t>(),
            (std::vector<uint8_t>{0, 0}));
}

TEST(CudaFill, FillsStridedViewsLikeTheCpu) {
  OMPQ_REQUIRE_GPU();
  for (DType dtype : kAllDTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    Tensor cpu = Tensor::zeros({5, 7, 3}, dtype);
    Tensor gpu = Tensor::zeros({5, 7, 3}, dtype, Device::cuda());
    for (Tensor* t : {&cpu, &gpu}) {
      t->slice(1, 1, 7, 2).fill_(3.75);
      t->select(2, 1).fill_(-1.5);
      t->transpose(0, 1).slice(0, 0, 1).fill_(100.25);
    }
    expect_equal(cpu, gpu);
  }
}

TEST(CudaFill, FactoriesCreateFilledDeviceTensors) {
  OMPQ_REQUIRE_GPU();
  EXPECT_EQ(Tensor::full({3}, 2.5, DType::kF64, Device::cuda()).to_vector<double>(),
            (std::vector<double>{2.5, 2.5, 2.5}));
  EXPECT_EQ(Tensor::arange(5, DType::kI64, Device::cuda()).to_vector<int64_t>(),
            (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(Tensor::scalar(-4, DType::kBF16, Device::cuda()).item<float>(), -4.0f);
}

TEST(CudaCopy, BetweenTwoGpus) {
  OMPQ_REQUIRE_GPU();
  if (cuda::device_count() < 2) GTEST_SKIP() << "needs two GPUs";
  Tensor host = random_tensor({31, 17}, DType::kF32, 9);
  Tensor on1 = host.to(Device::cuda(0)).to(Device::cuda(1));
  EXPECT_EQ(on1.device(), Device::cuda(1));
  expect_equal(host, on1);
  Tensor strided = Tensor::zeros({17, 31}, DType::kF64, Device::cuda(1));
  ops::copy_(strided.t(), host.to(Device::cuda(0)));
  expect_equal(host.to(DType::kF64), strided.t());
}

}  // namespace
}  // namespace ompq
