// Autocast mixed precision on CUDA against the CPU on the same f32 leaves: conv2d (NCHW and
// channels_last, grouped) and linear under bf16 and f16 autocast, forward and the f32 gradients of
// input, weight and bias; and the unscale/found-inf kernel of loss scaling. The CPU returns the
// f32-accumulated result unrounded while cuDNN writes the low dtype before the conversion to f32,
// so per tensor atol = rtol = tol * max|cpu| with tol bf16 2e-2, f16 4e-3 (2 ulps plus f32
// accumulation order), as tests/cuda/conv_test.cc. The unscale kernel must equal the CPU's bit for
// bit (one multiplication per element). Needs a GPU.
#include "core/autocast.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/autograd.h"
#include "core/functional/conv.h"
#include "core/functional/linalg.h"
#include "core/ops/amp.h"
#include "core/ops/conv.h"
#include "cuda_test_util.h"

namespace ompq {
namespace {

using testing::expect_close;
using testing::random_tensor_in;

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector<double>()) m = std::max(m, std::fabs(v));
  return m;
}

void expect_matches(const Tensor& cpu, const Tensor& gpu, DType dtype, const std::string& what) {
  ASSERT_TRUE(gpu.device().is_cuda()) << what;
  EXPECT_EQ(gpu.dtype(), DType::kF32) << what;
  const double tol = dtype == DType::kBF16 ? 2e-2 : 4e-3;
  expect_close(cpu, gpu, tol, tol * max_abs(cpu), what);
}

// The output and the gradients of the three leaves of `fn` run under autocast on `device`.
template <typename Fn>
std::vector<Tensor> autocast_run(const std::vector<Tensor>& leaves, const Tensor& seed_grad,
                                 DType dtype, Device device, bool channels_last, const Fn& fn) {
  std::vector<Tensor> on_device;
  for (size_t i = 0; i < leaves.size(); ++i) {
    Tensor t = leaves[i].to(device);
    if (i == 0 && channels_last) t = t.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
    on_device.push_back(t.detach().set_requires_grad(true));
  }
  Tensor out;
  {
    AutocastGuard guard(dtype);
    out = fn(on_device);
  }
  out.backward(seed_grad.to(device));
  std::vector<Tensor> results = {out};
  for (const Tensor& t : on_device) results.push_back(t.grad());
  return results;
}

struct ConvCase {
  const char* name;
  Shape x, w;
  Conv2dParams p;
};

const ConvCase kCases[] = {
    {"3x3", {2, 32, 10, 10}, {48, 32, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1}},
    {"stem 7x7/2", {2, 3, 20, 20}, {16, 3, 7, 7}, {{2, 2}, {3, 3}, {1, 1}, 1}},
    {"1x1/2", {2, 64, 8, 8}, {32, 64, 1, 1}, {{2, 2}, {0, 0}, {1, 1}, 1}},
    {"depthwise", {2, 32, 9, 9}, {32, 1, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 32}},
};

TEST(CudaAutocast, Conv2dMatchesTheCpuInBf16AndF16) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 100;
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    for (bool channels_last : {false, true}) {
      for (const ConvCase& c : kCases) {
        SCOPED_TRACE(absl::StrCat(c.name, " ", dtype_name(dtype),
                                  channels_last ? " channels_last" : " NCHW"));
        const std::vector<Tensor> leaves = {random_tensor_in(c.x, DType::kF32, seed++, -1, 1),
                                            random_tensor_in(c.w, DType::kF32, seed++, -1, 1),
                                            random_tensor_in({c.w[0]}, DType::kF32, seed++, -1, 1)};
        const Tensor grad =
            random_tensor_in(ops::conv2d_output_shape(c.x, c.w, c.p), DType::kF32, seed++, -1, 1);
        auto fn = [&](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], c.p); };
        const std::vector<Tensor> cpu =
            autocast_run(leaves, grad, dtype, Device::cpu(), channels_last, fn);
        const std::vector<Tensor> gpu =
            autocast_run(leaves, grad, dtype, Device::cuda(), channels_last, fn);
        const char* names[] = {"output", "grad input", "grad weight", "grad bias"};
        for (int i = 0; i < 4; ++i) expect_matches(cpu[i], gpu[i], dtype, names[i]);
        if (channels_last) EXPECT_TRUE(is_channels_last(gpu[0]));
      }
    }
  }
}

TEST(CudaAutocast, LinearMatchesTheCpuInBf16AndF16) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 200;
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    SCOPED_TRACE(dtype_name(dtype));
    const std::vector<Tensor> leaves = {random_tensor_in({4, 7, 96}, DType::kF32, seed++, -1, 1),
                                        random_tensor_in({40, 96}, DType::kF32, seed++, -1, 1),
                                        random_tensor_in({40}, DType::kF32, seed++, -1, 1)};
    const Tensor grad = random_tensor_in({4, 7, 40}, DType::kF32, seed++, -1, 1);
    auto fn = [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); };
    const std::vector<Tensor> cpu = autocast_run(leaves, grad, dtype, Device::cpu(), false, fn);
    const std::vector<Tensor> gpu = autocast_run(leaves, grad, dtype, Device::cuda(), false, fn);
    const char* names[] = {"output", "grad input", "grad weight", "grad bias"};
    for (int i = 0; i < 4; ++i) expect_matches(cpu[i], gpu[i], dtype, names[i]);
  }
}

TEST(CudaAutocast, UnscaleKernelMatchesTheCpu) {
  OMPQ_REQUIRE_GPU();
  for (bool with_inf : {false, true}) {
    SCOPED_TRACE(with_inf ? "with inf" : "finite");
    Tensor a = random_tensor_in({100003}, DType::kF32, 300, -1e4, 1e4);
    const Tensor b = random_tensor_in({7, 9}, DType::kF64, 301, -1e4, 1e4);
    if (with_inf) a.slice(0, 77777, 77778).fill_(std::numeric_limits<double>::infinity());
    const Tensor a_gpu = a.to(Device::cuda()), b_gpu = b.to(Device::cuda());
    Tensor found_cpu = Tensor::zeros({1}),
           found_gpu = Tensor::zeros({1}, DType::kF32, Device::cuda());
    ops::unscale_grads_({a, b}, 1.0 / 3.0, found_cpu);
    ops::unscale_grads_({a_gpu, b_gpu}, 1.0 / 3.0, found_gpu);
    EXPECT_EQ(found_gpu.item<float>(), found_cpu.item<float>());
    EXPECT_EQ(found_cpu.item<float>(), with_inf ? 1.0f : 0.0f);
    testing::expect_equal(a, a_gpu, "f32 gradient");
    testing::expect_equal(b, b_gpu, "f64 gradient");
  }
}

}  // namespace
}  // namespace ompq
