// cuda::Event and first_device_in_use(): they need a GPU.
#include <gtest/gtest.h>

#include "core/functional/elementwise.h"
#include "core/tensor.h"
#include "cuda/runtime.h"
#include "cuda_test_util.h"

namespace ompq::cuda {
namespace {

TEST(CudaEvent, IsReachedOnceTheStreamRanPastIt) {
  OMPQ_REQUIRE_GPU();
  const Tensor big = Tensor::full({1 << 26}, 1.0, DType::kF32, Device::cuda());  // 256 MiB
  EXPECT_EQ(first_device_in_use(), 0) << "the fill ran on cuda:0's default stream";
  Event event(0);
  const Tensor doubled = big + big;  // queued behind the fill, before the event
  event.record(default_stream(0).get());
  event.synchronize();
  EXPECT_TRUE(event.query());
  EXPECT_EQ(doubled.view({-1}).slice(0, 0, 1).to(Device::cpu()).data<float>()[0], 2.0f);
}

TEST(CudaEvent, RejectsADeviceThatDoesNotExist) {
  OMPQ_REQUIRE_GPU();
  EXPECT_THROW(Event(device_count()), Error);
}

}  // namespace
}  // namespace ompq::cuda
