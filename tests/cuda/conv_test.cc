// cuDNN convolution (cuda/cudnn_conv.cc) against the CPU's f64 convolution on fresh random
// inputs in [-1, 1): forward with bias, both gradients and the bias gradient, at ResNet-like,
// odd, strided, dilated, grouped and depthwise shapes, NCHW and channels_last, in f32, f64, bf16
// and f16. The reference runs on the same (rounded) input values in f64, so the differences are
// the GPU's accumulation and output rounding. Tolerance, per tensor, atol = rtol = tol * max|ref|
// with tol: f64 1e-10; f32 2e-4 (FMA math; Winograd/FFT algorithms lose a few bits); f16 4e-3
// (2 ulps of half); bf16 2e-2 (2 ulps of bfloat16 plus f32 accumulation over up to ~600 terms).
// Also: the plan cache (a second call of a shape searches nothing), measured (benchmark) mode,
// the workspace fallback, and the unsupported-dtype error. Needs a GPU.
#include "core/functional/conv.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/autograd.h"
#include "core/functional/elementwise.h"
#include "core/functional/reduce.h"
#include "core/ops/conv.h"
#include "cuda/cudnn_conv.h"
#include "cuda/library_workspace.h"
#include "cuda_test_util.h"

namespace ompq {
namespace {

using testing::expect_close;
using testing::random_tensor_in;
using testing::square_conv;

double tolerance(DType dtype) {
  switch (dtype) {
    case DType::kF64:
      return 1e-10;
    case DType::kF32:
      return 2e-4;
    case DType::kF16:
      return 4e-3;
    default:
      return 2e-2;
  }
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector<double>()) m = std::max(m, std::fabs(v));
  return m;
}

// |actual - expected| <= tol * (|expected| + max|expected|) element by element.
void expect_matches(const Tensor& expected, const Tensor& actual, DType dtype,
                    const std::string& what) {
  const double tol = tolerance(dtype);
  expect_close(expected, actual, tol, tol * max_abs(expected), what);
}

struct ConvCase {
  const char* name;
  int64_t n, c, h, w, o, kh, kw;
  Conv2dParams p;
};

Conv2dParams asymmetric() {
  Conv2dParams p;
  p.stride = {2, 1};
  p.padding = {1, 0};
  p.dilation = {1, 2};
  return p;
}

const ConvCase kCases[] = {
    {"resnet stem 7x7/2", 2, 3, 32, 32, 16, 7, 7, square_conv(2, 3)},
    {"resnet 3x3", 2, 64, 14, 14, 64, 3, 3, square_conv(1, 1)},
    {"resnet 3x3/2", 2, 64, 14, 14, 128, 3, 3, square_conv(2, 1)},
    {"resnet 1x1/2 shortcut", 2, 64, 14, 14, 128, 1, 1, square_conv(2, 0)},
    {"bottleneck 1x1", 3, 256, 7, 7, 64, 1, 1, square_conv(1, 0)},
    {"odd sizes", 3, 5, 11, 13, 7, 3, 3, square_conv(1, 1)},
    {"asymmetric stride/padding/dilation", 2, 6, 12, 9, 5, 3, 2, asymmetric()},
    {"dilation 2", 2, 8, 12, 12, 8, 3, 3, square_conv(1, 2, 2)},
    {"groups 4", 2, 8, 9, 9, 12, 3, 3, square_conv(1, 1, 1, 4)},
    {"depthwise", 2, 16, 10, 10, 16, 3, 3, square_conv(1, 1, 1, 16)},
    {"depthwise /2", 2, 32, 9, 9, 32, 3, 3, square_conv(2, 1, 1, 32)},
    {"depthwise multiplier 2", 1, 8, 8, 8, 16, 3, 3, square_conv(1, 1, 1, 8)},
    {"1x1 output", 4, 16, 3, 3, 8, 3, 3, square_conv(1, 0)},
};

Tensor to_gpu(const Tensor& t, bool channels_last) {
  Tensor g = t.to(Device::cuda());
  if (!channels_last || t.dim() != 4) return g;
  return g.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
}

Tensor as_f64(const Tensor& t) { return t.to(DType::kF64); }

void check_case(const ConvCase& c, DType dtype, bool channels_last, uint64_t seed) {
  SCOPED_TRACE(
      absl::StrCat(c.name, " ", dtype_name(dtype), channels_last ? " channels_last" : " NCHW"));
  const Tensor x = random_tensor_in({c.n, c.c, c.h, c.w}, dtype, seed, -1, 1);
  const Tensor w = random_tensor_in({c.o, c.c / c.p.groups, c.kh, c.kw}, dtype, seed + 1, -1, 1);
  const Tensor b = random_tensor_in({c.o}, dtype, seed + 2, -1, 1);
  const Tensor expected = ops::conv2d(as_f64(x), as_f64(w), as_f64(b), c.p);
  const Tensor grad = random_tensor_in(expected.shape(), dtype, seed + 3, -1, 1);
  const Conv2dGrads expected_grads =
      ops::conv2d_backward(as_f64(grad), as_f64(x), as_f64(w), {true, true, true}, c.p);

  const Tensor xg = to_gpu(x, channels_last), wg = to_gpu(w, false), bg = to_gpu(b, false);
  const Tensor out = ops::conv2d(xg, wg, bg, c.p);
  ASSERT_TRUE(out.device().is_cuda());
  EXPECT_EQ(out.dtype(), dtype);
  expect_matches(expected, out, dtype, "output");
  const Conv2dGrads grads =
      ops::conv2d_backward(to_gpu(grad, channels_last), xg, wg, {true, true, true}, c.p);
  expect_matches(expected_grads.input, grads.input, dtype, "grad input");
  expect_matches(expected_grads.weight, grads.weight, dtype, "grad weight");
  expect_matches(expected_grads.bias, grads.bias, dtype, "grad bias");
  if (channels_last && c.h * c.w > 1 && c.c > 1) {
    EXPECT_TRUE(is_channels_last(grads.input)) << "the input gradient keeps x's memory format";
  }
}

TEST(CudnnConv, MatchesTheCpuInF32) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 100;
  for (bool channels_last : {false, true}) {
    for (const ConvCase& c : kCases) check_case(c, DType::kF32, channels_last, seed += 10);
  }
}

TEST(CudnnConv, MatchesTheCpuInF64) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 200;
  for (const ConvCase& c : kCases) check_case(c, DType::kF64, false, seed += 10);
}

TEST(CudnnConv, MatchesTheCpuInBf16AndF16) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 300;
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    for (bool channels_last : {false, true}) {
      for (const ConvCase& c : kCases) check_case(c, dtype, channels_last, seed += 10);
    }
  }
}

TEST(CudnnConv, SeparateGradientEntryPointsMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  const ConvCase& c = kCases[2];
  for (bool channels_last : {false, true}) {
    const Tensor x = random_tensor_in({c.n, c.c, c.h, c.w}, DType::kF32, 400, -1, 1);
    const Tensor w = random_tensor_in({c.o, c.c, c.kh, c.kw}, DType::kF32, 401, -1, 1);
    const Shape out_shape = ops::conv2d_output_shape(x.shape(), w.shape(), c.p);
    const Tensor grad = random_tensor_in(out_shape, DType::kF32, 402, -1, 1);
    const Tensor expected_input =
        ops::conv2d_backward_input(as_f64(grad), as_f64(w), x.shape(), c.p);
    const Conv2dGrads expected_weight =
        ops::conv2d_backward_weight(as_f64(grad), as_f64(x), w.shape(), true, c.p);
    const Tensor gg = to_gpu(grad, channels_last);
    expect_matches(expected_input, ops::conv2d_backward_input(gg, to_gpu(w, false), x.shape(), c.p),
                   DType::kF32, "grad input");
    const Conv2dGrads g =
        ops::conv2d_backward_weight(gg, to_gpu(x, channels_last), w.shape(), true, c.p);
    EXPECT_FALSE(g.input.defined());
    expect_matches(expected_weight.weight, g.weight, DType::kF32, "grad weight");
    expect_matches(expected_weight.bias, g.bias, DType::kF32, "grad bias");
  }
}

TEST(CudnnConv, AutogradGradientsMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  const ConvCase& c = kCases[9];  // depthwise
  const Tensor x = random_tensor_in({c.n, c.c, c.h, c.w}, DType::kF32, 500, -1, 1);
  const Tensor w = random_tensor_in({c.o, 1, c.kh, c.kw}, DType::kF32, 501, -1, 1);
  const Tensor b = random_tensor_in({c.o}, DType::kF32, 502, -1, 1);
  auto grads_on = [&](Device device) {
    Tensor xd = x.detach().to(device).set_requires_grad(true);
    Tensor wd = w.detach().to(device).set_requires_grad(true);
    Tensor bd = b.detach().to(device).set_requires_grad(true);
    Tensor out = conv2d(xd, wd, bd, c.p);
    sum(out * out).backward();
    return std::vector<Tensor>{xd.grad(), wd.grad(), bd.grad()};
  };
  const std::vector<Tensor> cpu = grads_on(Device::cpu());
  const std::vector<Tensor> gpu = grads_on(Device::cuda());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(gpu[i].device().is_cuda());
    expect_matches(cpu[i], gpu[i], DType::kF32, absl::StrCat("gradient ", i));
  }
}

TEST(CudnnConv, SecondCallOfAShapeSearchesNoAlgorithm) {
  OMPQ_REQUIRE_GPU();
  cuda::clear_cudnn_plans();
  const ConvCase& c = kCases[1];
  const Tensor x =
      random_tensor_in({c.n, c.c, c.h, c.w}, DType::kF32, 600, -1, 1).to(Device::cuda());
  const Tensor w =
      random_tensor_in({c.o, c.c, c.kh, c.kw}, DType::kF32, 601, -1, 1).to(Device::cuda());
  const int64_t before = cuda::cudnn_algorithm_searches();
  const Tensor out = ops::conv2d(x, w, Tensor(), c.p);
  EXPECT_EQ(cuda::cudnn_algorithm_searches(), before + 1);
  ops::conv2d(x.clone(), w.clone(), Tensor(), c.p);  // same shape, new buffers
  EXPECT_EQ(cuda::cudnn_algorithm_searches(), before + 1);
  ops::conv2d_backward(out, x, w, {true, true, false}, c.p);  // backward data + filter
  EXPECT_EQ(cuda::cudnn_algorithm_searches(), before + 3);
  ops::conv2d_backward(out, x, w, {true, true, false}, c.p);
  EXPECT_EQ(cuda::cudnn_algorithm_searches(), before + 3);
  Conv2dParams strided = c.p;
  strided.stride = {2, 2};
  ops::conv2d(x, w, Tensor(), strided);  // a new problem
  EXPECT_EQ(cuda::cudnn_algorithm_searches(), before + 4);
  cuda::clear_cudnn_plans();
  ops::conv2d(x, w, Tensor(), c.p);
  EXPECT_EQ(cuda::cudnn_algorithm_searches(), before + 5);
}

TEST(CudnnConv, BenchmarkModeMeasuresOncePerShapeAndMatchesTheCpu) {
  OMPQ_REQUIRE_GPU();
  const bool was = cuda::cudnn_benchmark();
  cuda::set_cudnn_benchmark(true);
  const int64_t before = cuda::cudnn_algorithm_searches();
  uint64_t seed = 700;
  for (int i : {1, 2, 10}) check_case(kCases[i], DType::kF32, true, seed += 10);
  const int64_t searched = cuda::cudnn_algorithm_searches() - before;
  EXPECT_GE(searched, 9);  // three problems, three directions each
  check_case(kCases[1], DType::kF32, true, 800);
  EXPECT_EQ(cuda::cudnn_algorithm_searches() - before, searched);
  cuda::set_cudnn_benchmark(was);
}

// Restores the workspace limit however the test ends.
struct WorkspaceLimit {
  explicit WorkspaceLimit(size_t bytes) { cuda::set_workspace_limit(bytes); }
  ~WorkspaceLimit() { cuda::set_workspace_limit(cuda::kNoWorkspaceLimit); }
};

// For each direction of a few shapes: when the preferred algorithm needs workspace, forbidding
// that much makes a later candidate run (and with no workspace at all, one that needs none), and
// the result stays right.
TEST(CudnnConv, FallsBackToAnAlgorithmNeedingLessWorkspace) {
  OMPQ_REQUIRE_GPU();
  cuda::clear_cudnn_plans();
  int exercised = 0;
  uint64_t seed = 900;
  for (int i : {0, 1, 2, 4, 7}) {
    const ConvCase& c = kCases[i];
    const Tensor x = random_tensor_in({c.n, c.c, c.h, c.w}, DType::kF32, seed++, -1, 1);
    const Tensor w = random_tensor_in({c.o, c.c, c.kh, c.kw}, DType::kF32, seed++, -1, 1);
    const Shape out_shape = ops::conv2d_output_shape(x.shape(), w.shape(), c.p);
    const Tensor grad = random_tensor_in(out_shape, DType::kF32, seed++, -1, 1);
    const Tensor xg = x.to(Device::cuda()), wg = w.to(Device::cuda()), gg = grad.to(Device::cuda());
    struct Direction {
      const char* name;
      std::function<Tensor()> gpu;
      Tensor expected;
    };
    const Direction directions[] = {
        {"forward", [&] { return ops::conv2d(xg, wg, Tensor(), c.p); },
         ops::conv2d(as_f64(x), as_f64(w), Tensor(), c.p)},
        {"backward data", [&] { return ops::conv2d_backward_input(gg, wg, x.shape(), c.p); },
         ops::conv2d_backward_input(as_f64(grad), as_f64(w), x.shape(), c.p)},
        {"backward filter",
         [&] { return ops::conv2d_backward_weight(gg, xg, w.shape(), false, c.p).weight; },
         ops::conv2d_backward_weight(as_f64(grad), as_f64(x), w.shape(), false, c.p).weight},
    };
    for (const Direction& d : directions) {
      SCOPED_TRACE(absl::StrCat(c.name, " ", d.name));
      d.gpu();
      const size_t preferred = cuda::workspace_stats().last_bytes;
      if (preferred == 0) continue;
      ++exercised;
      const int64_t fallbacks = cuda::workspace_stats().fallbacks;
      {
        WorkspaceLimit limit(preferred - 1);
        expect_matches(d.expected, d.gpu(), DType::kF32, "limited workspace");
        EXPECT_LT(cuda::workspace_stats().last_bytes, preferred);
        EXPECT_GT(cuda::workspace_stats().last_candidate, 0);
        EXPECT_EQ(cuda::workspace_stats().fallbacks, fallbacks + 1);
      }
      {
        WorkspaceLimit limit(0);
        expect_matches(d.expected, d.gpu(), DType::kF32, "no workspace");
        EXPECT_EQ(cuda::workspace_stats().last_bytes, 0u);
      }
      d.gpu();  // the limit lifted, the preferred algorithm runs again
      EXPECT_EQ(cuda::workspace_stats().last_bytes, preferred);
    }
  }
  EXPECT_GT(exercised, 0) << "no preferred algorithm needed workspace: the fallback is untested";
}

TEST(CudnnConv, RejectsIntegerTensors) {
  OMPQ_REQUIRE_GPU();
  const Tensor x = Tensor::zeros({1, 2, 5, 5}, DType::kI32, Device::cuda());
  const Tensor w = Tensor::zeros({3, 2, 3, 3}, DType::kI32, Device::cuda());
  EXPECT_THAT([&] { ops::conv2d(x, w, Tensor(), square_conv(1, 1)); },
              ::testing::ThrowsMessage<Error>(::testing::HasSubstr("unsupported dtype i32")));
}

}  // namespace
}  // namespace ompq
