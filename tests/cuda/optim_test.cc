// CUDA fused optimizer steps against the CPU kernels: several consecutive SGD steps (plain,
// momentum, dampening, nesterov, weight decay) and Adam/AdamW steps on fresh random parameters of
// odd sizes, comparing the parameter and every state tensor after each step. Both devices run
// core/ops/optim_math.h with the same host-computed coefficients; they differ only where one
// compiler fuses a multiply-add and the other does not (a few ulps): f32 rtol 1e-6, f64 1e-14.
// Needs a GPU.
#include "core/ops/optim.h"

#include <gtest/gtest.h>

#include "cuda_test_util.h"

namespace ompq {
namespace {

using testing::expect_close;
using testing::on_gpu;
using testing::random_tensor_in;

double rtol_for(DType dtype) { return dtype == DType::kF32 ? 1e-6 : 1e-14; }
// An update that cancels most of a parameter of magnitude ~1 keeps an ulp of it as its error.
double atol_for(DType dtype) { return dtype == DType::kF32 ? 5e-7 : 1e-15; }

const Shape kShapes[] = {{1}, {37, 29}, {12345}};

struct SgdCase {
  const char* name;
  SgdOptions options;
};

const SgdCase kSgdCases[] = {
    {"plain", {0.1, 0, 0, 0, false}},
    {"momentum", {0.05, 0.9, 0, 0, false}},
    {"momentum, dampening, weight decay", {0.05, 0.9, 0.1, 1e-4, false}},
    {"nesterov, weight decay", {0.1, 0.9, 0, 5e-4, true}},
};

TEST(CudaOptim, SgdStepsMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 10000;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const Shape& shape : kShapes) {
      for (const SgdCase& c : kSgdCases) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + shape_str(shape) + " " + c.name);
        const bool momentum = c.options.momentum != 0;
        Tensor param = random_tensor_in(shape, dtype, seed++, -1, 1);
        Tensor buffer = momentum ? random_tensor_in(shape, dtype, seed++, -1, 1) : Tensor();
        const Tensor param_gpu = on_gpu(param);
        const Tensor buffer_gpu = momentum ? on_gpu(buffer) : Tensor();
        for (int step = 0; step < 3; ++step) {
          SCOPED_TRACE(step);
          const Tensor grad = random_tensor_in(shape, dtype, seed++, -1, 1);
          ops::sgd_step_(param, grad, buffer, c.options, step == 0);
          ops::sgd_step_(param_gpu, on_gpu(grad), buffer_gpu, c.options, step == 0);
          expect_close(param, param_gpu, rtol_for(dtype), atol_for(dtype), "param");
          if (momentum) {
            expect_close(buffer, buffer_gpu, rtol_for(dtype), atol_for(dtype), "momentum buffer");
          }
        }
      }
    }
  }
}

TEST(CudaOptim, AdamAndAdamWStepsMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 10100;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const Shape& shape : kShapes) {
      for (bool decoupled : {false, true}) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + shape_str(shape) +
                     (decoupled ? " AdamW" : " Adam"));
        AdamOptions options;
        options.lr = 1e-2;
        options.weight_decay = 1e-2;
        options.decoupled_weight_decay = decoupled;
        Tensor param = random_tensor_in(shape, dtype, seed++, -1, 1);
        Tensor exp_avg = Tensor::zeros(shape, dtype), exp_avg_sq = Tensor::zeros(shape, dtype);
        const Tensor param_gpu = on_gpu(param), exp_avg_gpu = on_gpu(exp_avg),
                     exp_avg_sq_gpu = on_gpu(exp_avg_sq);
        for (int64_t step = 1; step <= 3; ++step) {
          SCOPED_TRACE(step);
          const Tensor grad = random_tensor_in(shape, dtype, seed++, -1, 1);
          ops::adam_step_(param, grad, exp_avg, exp_avg_sq, options, step);
          ops::adam_step_(param_gpu, on_gpu(grad), exp_avg_gpu, exp_avg_sq_gpu, options, step);
          expect_close(param, param_gpu, rtol_for(dtype), atol_for(dtype), "param");
          expect_close(exp_avg, exp_avg_gpu, rtol_for(dtype), atol_for(dtype), "exp_avg");
          expect_close(exp_avg_sq, exp_avg_sq_gpu, rtol_for(dtype), atol_for(dtype), "exp_avg_sq");
        }
      }
    }
  }
}

TEST(CudaOptim, TransposedGradientIsReadInLogicalOrder) {
  OMPQ_REQUIRE_GPU();
  // The op copies a non-contiguous gradient to a contiguous one before the kernel runs.
  const Tensor grad_storage = random_tensor_in({29, 37}, DType::kF32, 10200, -1, 1);
  Tensor param = random_tensor_in({37, 29}, DType::kF32, 10201, -1, 1);
  const Tensor param_gpu = on_gpu(param);
  const SgdOptions options{0.1, 0, 0, 0, false};
  ops::sgd_step_(param, grad_storage.t(), Tensor(), options, true);
  ops::sgd_step_(param_gpu, on_gpu(grad_storage).t(), Tensor(), options, true);
  expect_close(param, param_gpu, 1e-6, 5e-7, "param");
}

}  // namespace
}  // namespace ompq
