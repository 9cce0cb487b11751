// Philox on the GPU draws the same stream as on the CPU: uniform values bit for bit; normal values
// within a few float ulps (Box-Muller's logf/cosf are not correctly rounded on either side, and
// CUDA's and glibc's differ by up to 2 ulps). Needs a GPU.
#include "core/random.h"

#include <gtest/gtest.h>

#include "cuda_test_util.h"

namespace ompq {
namespace {

using testing::expect_close;
using testing::expect_equal;

TEST(CudaRandom, UniformStreamIsIdenticalOnBothDevices) {
  OMPQ_REQUIRE_GPU();
  for (DType dtype : {DType::kF32, DType::kF64, DType::kBF16, DType::kF16}) {
    SCOPED_TRACE(dtype_name(dtype));
    Generator cpu_gen(1234), gpu_gen(1234);
    for (const Shape& shape : {Shape{1}, Shape{3, 1001}, Shape{7, 5, 3}}) {
      Tensor cpu = rand(shape, cpu_gen, dtype);
      Tensor gpu = rand(shape, gpu_gen, dtype, Device::cuda());
      expect_equal(cpu, gpu);
    }
    EXPECT_EQ(cpu_gen.offset(), gpu_gen.offset());
  }
}

// Scales that are not exact in binary (0.4 - 0.1, 2.7 + 0.3) round differently under a fused and
// an unfused multiply-add: both devices must take core/philox.h's random_affine.
TEST(CudaRandom, AffineUniformWithInexactScalesMatchesTheCpu) {
  OMPQ_REQUIRE_GPU();
  const double ranges[][2] = {{0.1, 0.4}, {-0.3, 2.7}, {-1.0 / 3.0, 1.0 / 7.0}};
  for (DType dtype : {DType::kF32, DType::kF64, DType::kBF16, DType::kF16}) {
    for (const auto& range : ranges) {
      SCOPED_TRACE(::testing::Message()
                   << dtype_name(dtype) << ", [" << range[0] << ", " << range[1] << ")");
      Generator cpu_gen(77), gpu_gen(77);
      Tensor cpu = Tensor::empty({4099}, dtype);
      Tensor gpu = Tensor::empty({4099}, dtype, Device::cuda());
      ops::uniform_(cpu, range[0], range[1], cpu_gen);
      ops::uniform_(gpu, range[0], range[1], gpu_gen);
      expect_equal(cpu, gpu);
    }
  }
}

TEST(CudaRandom, NormalStreamMatchesTheCpu) {
  OMPQ_REQUIRE_GPU();
  for (DType dtype : {DType::kF32, DType::kF64}) {
    Generator cpu_gen(99), gpu_gen(99);
    Tensor cpu = randn({4, 1001}, cpu_gen, dtype);
    Tensor gpu = randn({4, 1001}, gpu_gen, dtype, Device::cuda());
    // |z| < 6 here: a few float ulps of the result are below 4e-6.
    expect_close(cpu, gpu, 1e-6, 4e-6, dtype_name(dtype));
  }
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    Generator cpu_gen(5), gpu_gen(5);
    // One float ulp apart can round to neighbouring half values: allow one half ulp.
    expect_close(randn({1001}, cpu_gen, dtype), randn({1001}, gpu_gen, dtype, Device::cuda()),
                 dtype == DType::kBF16 ? 1.0 / 128 : 1.0 / 1024, 1e-6, dtype_name(dtype));
  }
}

TEST(CudaRandom, StridedDestinationTakesLogicalOrder) {
  OMPQ_REQUIRE_GPU();
  Generator cpu_gen(3), gpu_gen(3);
  Tensor cpu = Tensor::zeros({9, 11});
  Tensor gpu = Tensor::zeros({9, 11}, DType::kF32, Device::cuda());
  ops::uniform_(cpu.t().slice(0, 1, 11, 3), 0, 1, cpu_gen);
  ops::uniform_(gpu.t().slice(0, 1, 11, 3), 0, 1, gpu_gen);
  expect_equal(cpu, gpu);
}

}  // namespace
}  // namespace ompq
