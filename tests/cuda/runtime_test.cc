// The CUDA runtime layer: error checking, device guard, streams, and what ompq::init() reports.
// Tests named *WithoutGpu run only where CUDA is built but unusable; the rest need a GPU.
#include "cuda/runtime.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "core/allocator.h"
#include "core/tensor.h"
#include "cuda_test_util.h"
#include "runtime/init.h"

namespace ompq::cuda {
namespace {

using ::testing::HasSubstr;

cudaError_t failing_call() { return cudaErrorInvalidValue; }

TEST(CudaCheck, ErrorNamesTheCallAndCudaText) {
  try {
    OMPQ_CUDA_CHECK(failing_call());
    FAIL() << "OMPQ_CUDA_CHECK did not throw";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("failing_call()"));
    EXPECT_THAT(e.what(), HasSubstr("cudaErrorInvalidValue"));
    EXPECT_THAT(e.what(), HasSubstr("invalid argument"));
    EXPECT_THAT(e.what(), HasSubstr("runtime_test.cc"));
  }
}

TEST(CudaCheck, SuccessDoesNotThrow) { EXPECT_NO_THROW(OMPQ_CUDA_CHECK(cudaSuccess)); }

TEST(FormatBytes, UsesBinaryUnits) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1024), "1.00 KiB");
  EXPECT_EQ(format_bytes(size_t{3} << 19), "1.50 MiB");
  EXPECT_EQ(format_bytes(size_t{80} << 30), "80.00 GiB");
  EXPECT_EQ(format_bytes(size_t{3} << 40), "3.00 TiB");
}

TEST(RuntimeInfo, ReportsCudaBuiltAndAConsistentDeviceCount) {
  const RuntimeInfo& info = runtime_info();
  EXPECT_TRUE(info.cuda_built);
  EXPECT_EQ(info.cuda_device_count, device_count());
  EXPECT_EQ(cuda_available(), info.cuda_device_count > 0);
  // A status is given exactly when CUDA is unusable.
  EXPECT_EQ(info.cuda_status.empty(), info.cuda_device_count > 0) << info.cuda_status;
}

TEST(RuntimeInfo, InitIsIdempotent) {
  const RuntimeInfo& first = init();
  const RuntimeInfo& second = init();
  EXPECT_EQ(&first, &second);
}

TEST(Runtime, CudaTensorWithoutGpuThrowsWithTheReason) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is usable here";
  try {
    Tensor::ones({2, 3}).to(Device::cuda());
    FAIL() << "moving a tensor to cuda:0 did not throw";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("cuda:0"));
    EXPECT_THAT(e.what(), HasSubstr("no usable GPU"));
    EXPECT_THAT(e.what(), HasSubstr(runtime_info().cuda_status));
  }
  EXPECT_THROW(Tensor::zeros({4}, DType::kF32, Device::cuda(1)), Error);
  // The CPU is unaffected.
  EXPECT_EQ(Tensor::ones({2}).to_vector<float>(), (std::vector<float>{1, 1}));
}

TEST(Runtime, DeviceIndexCheckWithoutGpuSaysWhy) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is usable here";
  EXPECT_EQ(device_count(), 0);
  EXPECT_FALSE(unavailable_reason().empty());
  try {
    check_device_index(0, "test");
    FAIL() << "check_device_index(0) did not throw";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("test: cuda:0 does not exist (no usable GPU: "));
  }
}

TEST(Runtime, DeviceIndexOutOfRangeThrows) {
  OMPQ_REQUIRE_GPU();
  EXPECT_NO_THROW(check_device_index(0, "test"));
  try {
    check_device_index(device_count(), "test");
    FAIL() << "check_device_index(device_count()) did not throw";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("does not exist"));
    EXPECT_THAT(e.what(), HasSubstr("CUDA device"));
  }
  EXPECT_THROW(check_device_index(-1, "test"), Error);
  EXPECT_THROW(Tensor::zeros({4}, DType::kF32, Device::cuda(device_count())), Error);
}

TEST(Runtime, DeviceGuardRestoresThePreviousDevice) {
  OMPQ_REQUIRE_GPU();
  set_device(0);
  {
    DeviceGuard guard(device_count() - 1);
    EXPECT_EQ(current_device(), device_count() - 1);
  }
  EXPECT_EQ(current_device(), 0);
}

TEST(DeviceGuard, GoesBackOnlyToADeviceThatHasAContext) {
  EXPECT_TRUE(guard_restores(/*previous=*/0, /*entered=*/3, /*previous_has_context=*/true));
  EXPECT_FALSE(guard_restores(0, 3, false)) << "going back would create GPU 0's context";
  EXPECT_FALSE(guard_restores(2, 2, true)) << "never left";
}

TEST(Runtime, DeviceThatComputesHasAContext) {
  OMPQ_REQUIRE_GPU();
  default_stream(0);
  EXPECT_TRUE(has_context(0));
}

// A fresh thread has no current context: a guard it enters leaves its device current instead of
// making device 0 current (and creating a context there) on the way out, unless device 0 has one.
TEST(Runtime, GuardInAFreshThreadGoesBackOnlyToAnExistingContext) {
  OMPQ_REQUIRE_GPU();
  const int last = device_count() - 1;
  int after = -1;
  bool gpu0_had_context = false;
  std::thread([&] {
    gpu0_had_context = has_context(0);
    { DeviceGuard guard(last); }
    after = current_device();
  }).join();
  EXPECT_EQ(after, gpu0_had_context ? 0 : last);
}

TEST(Runtime, UseDeviceMakesTheGpuCurrentForTheCallingThread) {
  OMPQ_REQUIRE_GPU();
  const int last = device_count() - 1;
  int current = -1;
  absl::Status status;
  std::thread([&] {
    status = use_device(Device::cuda(last));
    current = current_device();
  }).join();
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(current, last);
  EXPECT_THAT(std::string(use_device(Device::cuda(device_count())).message()),
              HasSubstr("names GPU"));
}

TEST(Runtime, DefaultStreamIsOnePerDeviceAndNotTheNullStream) {
  OMPQ_REQUIRE_GPU();
  Stream& a = default_stream(0);
  Stream& b = default_stream(0);
  EXPECT_EQ(&a, &b);
  EXPECT_NE(a.get(), nullptr);
  EXPECT_EQ(a.device(), 0);
  unsigned flags = 0;
  ASSERT_EQ(cudaStreamGetFlags(a.get(), &flags), cudaSuccess);
  EXPECT_EQ(flags, static_cast<unsigned>(cudaStreamNonBlocking));
  EXPECT_NO_THROW(synchronize(0));
}

TEST(Runtime, OwnedStreamRunsWork) {
  OMPQ_REQUIRE_GPU();
  Stream stream(0);
  void* p = nullptr;
  ASSERT_EQ(cudaMalloc(&p, 64), cudaSuccess);
  EXPECT_NO_THROW(OMPQ_CUDA_CHECK(cudaMemsetAsync(p, 0, 64, stream.get())));
  EXPECT_NO_THROW(stream.synchronize());
  cudaFree(p);
}

TEST(Runtime, DevicePropertiesDescribeTheGpu) {
  OMPQ_REQUIRE_GPU();
  const cudaDeviceProp& p = device_properties(0);
  EXPECT_GT(p.multiProcessorCount, 0);
  EXPECT_GT(p.totalGlobalMem, size_t{0});
  EXPECT_GE(p.major, 9);  // the build targets sm_90; init() refuses older GPUs
  EXPECT_THAT(device_summary(0), HasSubstr("sm_"));
  EXPECT_THAT(device_summary(0), HasSubstr("SMs"));
}

}  // namespace
}  // namespace ompq::cuda
