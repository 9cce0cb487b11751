// CUDA softmax, log-softmax and cross-entropy against the CPU kernels on fresh random inputs:
// forward and backward along every dim of odd shapes (rows and strided columns), long rows, a
// transposed input, extreme and -inf logits; cross-entropy loss, log-sum-exp and gradient with and
// without label smoothing, a bad target, an empty batch. Both devices evaluate the same exp
// polynomial per element and sum in different orders (f32 within 256-value chunks on the CPU,
// double on the GPU), and CUDA's log may differ from glibc's by an ulp: f32 rtol 1e-5, f64 1e-12.
// Needs a GPU.
#include "core/ops/softmax.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

#include "cuda_test_util.h"

namespace ompq {
namespace {

using testing::expect_close;
using ::testing::HasSubstr;
using testing::on_gpu;
using testing::random_tensor_in;

double rtol_for(DType dtype) { return dtype == DType::kF32 ? 1e-5 : 1e-12; }
double atol_for(DType dtype) { return dtype == DType::kF32 ? 1e-6 : 1e-13; }

void expect_softmax_matches(const Tensor& x, const Tensor& x_gpu, int64_t dim, uint64_t seed) {
  const DType dtype = x.dtype();
  const double rtol = rtol_for(dtype), atol = atol_for(dtype);
  const Tensor dy = random_tensor_in(x.shape(), dtype, seed, -2, 2);
  const Tensor dy_gpu = on_gpu(dy);
  for (bool log : {false, true}) {
    SCOPED_TRACE(log ? "log_softmax" : "softmax");
    const Tensor y = log ? ops::log_softmax(x, dim) : ops::softmax(x, dim);
    const Tensor y_gpu = log ? ops::log_softmax(x_gpu, dim) : ops::softmax(x_gpu, dim);
    ASSERT_TRUE(y_gpu.device().is_cuda());
    expect_close(y, y_gpu, rtol, atol, "output");
    // Both backward passes get the CPU's forward output, so that they differ only by their own
    // arithmetic.
    const Tensor dx =
        log ? ops::log_softmax_backward(dy, y, dim) : ops::softmax_backward(dy, y, dim);
    const Tensor dx_gpu = log ? ops::log_softmax_backward(dy_gpu, on_gpu(y), dim)
                              : ops::softmax_backward(dy_gpu, on_gpu(y), dim);
    expect_close(dx, dx_gpu, rtol, atol, "grad input");
  }
}

TEST(CudaSoftmax, EveryDimOfOddShapesMatchesTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 9000;
  const Shape kShapes[] = {{7, 13}, {3, 5, 4, 6}, {1, 1}, {5}, {2, 1000}, {3, 2500, 3}};
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const Shape& shape : kShapes) {
      const Tensor x = random_tensor_in(shape, dtype, seed++, -8, 8);
      const Tensor x_gpu = on_gpu(x);
      for (int64_t dim = -1; dim < static_cast<int64_t>(shape.size()); ++dim) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + shape_str(shape) + " dim " +
                     std::to_string(dim));
        expect_softmax_matches(x, x_gpu, dim, seed++);
      }
    }
  }
}

TEST(CudaSoftmax, TransposedInputMatchesTheCpu) {
  OMPQ_REQUIRE_GPU();
  const Tensor storage = random_tensor_in({9, 6, 11}, DType::kF32, 9100, -8, 8);
  for (int64_t dim : {0, 1, 2}) {
    SCOPED_TRACE(dim);
    expect_softmax_matches(storage.transpose(0, 2), on_gpu(storage).transpose(0, 2), dim, 9101);
  }
}

TEST(CudaSoftmax, ExtremeAndInfiniteLogits) {
  OMPQ_REQUIRE_GPU();
  const double inf = std::numeric_limits<double>::infinity();
  for (DType dtype : {DType::kF32, DType::kF64}) {
    SCOPED_TRACE(dtype_name(dtype));
    const Tensor x = Tensor::from_vector<double>({1000, -1000, 999, 0,   //
                                                  -inf, 3, -inf, 2,      //
                                                  -90, -95, -100, -88},  //
                                                 {3, 4})
                         .to(dtype);
    expect_softmax_matches(x, on_gpu(x), 1, 9200);
    expect_softmax_matches(x, on_gpu(x), 0, 9201);
  }
}

void expect_cross_entropy_matches(int64_t batch, int64_t classes, DType dtype, double smoothing,
                                  uint64_t seed) {
  const Tensor logits = random_tensor_in({batch, classes}, dtype, seed, -8, 8);
  const Tensor target = random_tensor_in({batch}, DType::kI64, seed + 1, 0, classes);
  const auto expected = ops::cross_entropy(logits, target, smoothing);
  const auto actual = ops::cross_entropy(on_gpu(logits), on_gpu(target), smoothing);
  const double rtol = rtol_for(dtype), atol = atol_for(dtype);
  ASSERT_TRUE(actual.loss.device().is_cuda());
  expect_close(expected.loss, actual.loss, rtol, atol, "loss");
  expect_close(expected.log_sum_exp, actual.log_sum_exp, rtol, atol, "log_sum_exp");
  const Tensor grad_loss = Tensor::scalar(1.75, dtype);
  const Tensor grad =
      ops::cross_entropy_backward(grad_loss, logits, target, expected.log_sum_exp, smoothing);
  const Tensor grad_gpu = ops::cross_entropy_backward(
      on_gpu(grad_loss), on_gpu(logits), on_gpu(target), on_gpu(expected.log_sum_exp), smoothing);
  expect_close(grad, grad_gpu, rtol, atol, "grad logits");
}

TEST(CudaCrossEntropy, LossLogSumExpAndGradientMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 9300;
  const std::pair<int64_t, int64_t> kSizes[] = {{37, 10}, {5, 1000}, {300, 3}, {1, 1}};
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const auto& [batch, classes] : kSizes) {
      for (double smoothing : {0.0, 0.1, 1.0}) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + " [" + std::to_string(batch) + ", " +
                     std::to_string(classes) + "] smoothing " + std::to_string(smoothing));
        expect_cross_entropy_matches(batch, classes, dtype, smoothing, seed);
        seed += 2;
      }
    }
  }
}

TEST(CudaCrossEntropy, EmptyBatchGivesNanLikeTheCpu) {
  OMPQ_REQUIRE_GPU();
  const Tensor logits = Tensor::empty({0, 4});
  const Tensor target = Tensor::empty({0}, DType::kI64);
  expect_close(ops::cross_entropy(logits, target, 0.0).loss,
               ops::cross_entropy(on_gpu(logits), on_gpu(target), 0.0).loss, 0, 0, "loss");
}

TEST(CudaCrossEntropy, TargetOutOfRangeThrowsWithTheCpuMessage) {
  OMPQ_REQUIRE_GPU();
  const Tensor logits = on_gpu(random_tensor_in({3, 5}, DType::kF32, 9400, -1, 1));
  for (int64_t bad : {5, -1}) {
    const Tensor target = on_gpu(Tensor::from_vector<int64_t>({0, bad, 2}, {3}));
    try {
      ops::cross_entropy(logits, target, 0.0);
      ADD_FAILURE() << "target " << bad << " did not throw";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr("target " + std::to_string(bad) + " at batch index 1"));
      EXPECT_THAT(e.what(), HasSubstr("out of range for 5 classes"));
    }
  }
}

TEST(CudaCrossEntropy, GradLossOnAnotherDeviceThrows) {
  OMPQ_REQUIRE_GPU();
  const Tensor logits = on_gpu(random_tensor_in({2, 3}, DType::kF32, 9500, -1, 1));
  const Tensor target = on_gpu(Tensor::from_vector<int64_t>({0, 2}, {2}));
  const auto forward = ops::cross_entropy(logits, target, 0.0);
  EXPECT_THROW(
      {
        try {
          ops::cross_entropy_backward(Tensor::scalar(1.0), logits, target, forward.log_sum_exp,
                                      0.0);
        } catch (const Error& e) {
          EXPECT_THAT(e.what(), HasSubstr("grad_loss is on cpu"));
          throw;
        }
      },
      Error);
}

}  // namespace
}  // namespace ompq
