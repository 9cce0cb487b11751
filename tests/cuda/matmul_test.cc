// cuBLASLt products (cuda/cublaslt_gemm.cc) against the CPU's f64 matmul on fresh random inputs
// in [-1, 1): every combination of row- and column-major operands, batched products, linear with
// a bias (aligned and not), linear's gradients through autograd, in f32, f64, bf16 and f16; and
// int8 x int8 -> int32 against exact integer loops. Tolerance per tensor, atol = rtol =
// tol * max|ref|: f64 1e-12; f32 1e-5 (no TF32: f32 accumulation over up to 511 terms); f16 4e-3
// and bf16 2e-2 (2 ulps of the output type); f32 with TF32 allowed 5e-3 (10-bit mantissas).
// Also: the plan cache, the workspace fallback and bad inputs. Needs a GPU, except the checks of
// what int8 operands must be (CublasLtInt8Operands), which read CPU tensors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/autograd.h"
#include "core/functional/elementwise.h"
#include "core/functional/linalg.h"
#include "core/functional/reduce.h"
#include "core/ops/linalg.h"
#include "cuda/cublaslt_gemm.h"
#include "cuda/library_workspace.h"
#include "cuda_test_util.h"

namespace ompq {
namespace {

using ::testing::AllOf;
using testing::expect_close;
using ::testing::HasSubstr;
using testing::random_tensor_in;
using ::testing::ThrowsMessage;

double tolerance(DType dtype) {
  switch (dtype) {
    case DType::kF64:
      return 1e-12;
    case DType::kF32:
      return 1e-5;
    case DType::kF16:
      return 4e-3;
    default:
      return 2e-2;
  }
}

void expect_matches(const Tensor& expected, const Tensor& actual, double tol,
                    const std::string& what) {
  double max_abs = 0;
  for (double v : expected.to_vector<double>()) max_abs = std::max(max_abs, std::fabs(v));
  expect_close(expected, actual, tol, tol * max_abs, what);
}

Tensor as_f64(const Tensor& t) { return t.to(DType::kF64); }
Tensor gpu(const Tensor& t) { return t.to(Device::cuda()); }

// A [rows, cols] operand, row-major or as the transposed view of a row-major [cols, rows].
Tensor operand(int64_t rows, int64_t cols, bool column_major, DType dtype, uint64_t seed) {
  if (!column_major) return random_tensor_in({rows, cols}, dtype, seed, -1, 1);
  return random_tensor_in({cols, rows}, dtype, seed, -1, 1).t();
}

Tensor on_gpu_like(const Tensor& t) {  // same values and layout (row- or column-major)
  const bool column_major = t.dim() == 2 && t.stride(0) == 1 && t.size(1) > 1;
  return column_major ? gpu(t.t().contiguous()).t() : gpu(t.contiguous());
}

struct Mkn {
  int64_t m, k, n;
};

const Mkn kShapes[] = {{1, 1, 1},      {7, 13, 5},  {64, 128, 96}, {257, 511, 129},
                       {1, 512, 1000}, {33, 1, 17}, {2, 64, 3}};

TEST(CublasLtMatmul, EveryLayoutMatchesTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 100;
  for (DType dtype : {DType::kF32, DType::kF64, DType::kBF16, DType::kF16}) {
    for (const Mkn& s : kShapes) {
      for (bool a_col : {false, true}) {
        for (bool b_col : {false, true}) {
          SCOPED_TRACE(absl::StrCat(dtype_name(dtype), " ", s.m, "x", s.k, "x", s.n,
                                    a_col ? " a col-major" : " a row-major",
                                    b_col ? " b col-major" : " b row-major"));
          const Tensor a = operand(s.m, s.k, a_col, dtype, seed++);
          const Tensor b = operand(s.k, s.n, b_col, dtype, seed++);
          const Tensor expected = ops::matmul(as_f64(a), as_f64(b));
          const Tensor actual = ops::matmul(on_gpu_like(a), on_gpu_like(b));
          ASSERT_TRUE(actual.device().is_cuda());
          EXPECT_EQ(actual.dtype(), dtype);
          expect_matches(expected, actual, tolerance(dtype), "product");
        }
      }
    }
  }
}

TEST(CublasLtMatmul, BatchedProductsMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 200;
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    for (bool transposed : {false, true}) {
      SCOPED_TRACE(absl::StrCat(dtype_name(dtype), transposed ? " transposed" : ""));
      Tensor a = random_tensor_in({3, 17, 31}, dtype, seed++, -1, 1);
      Tensor b = random_tensor_in({3, 31, 9}, dtype, seed++, -1, 1);
      Tensor ag = gpu(a), bg = gpu(b);
      if (transposed) {  // the same products from transposed storage
        a = random_tensor_in({3, 31, 17}, dtype, seed++, -1, 1);
        b = random_tensor_in({3, 9, 31}, dtype, seed++, -1, 1);
        ag = gpu(a).transpose(1, 2);
        bg = gpu(b).transpose(1, 2);
        a = a.transpose(1, 2);
        b = b.transpose(1, 2);
      }
      expect_matches(ops::matmul(as_f64(a), as_f64(b)), ops::matmul(ag, bg), tolerance(dtype),
                     "batched product");
    }
  }
}

TEST(CublasLtMatmul, LinearWithBiasMatchesTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 300;
  for (DType dtype : {DType::kF32, DType::kF64, DType::kBF16, DType::kF16}) {
    for (int64_t bias_offset : {0, 1}) {  // offset 1: a bias that is not 16-byte aligned
      SCOPED_TRACE(absl::StrCat(dtype_name(dtype), " bias offset ", bias_offset));
      const Tensor x = random_tensor_in({2, 5, 96}, dtype, seed++, -1, 1);
      const Tensor w = random_tensor_in({40, 96}, dtype, seed++, -1, 1);
      const Tensor bias_storage = random_tensor_in({41}, dtype, seed++, -1, 1);
      const Tensor bias = bias_storage.slice(0, bias_offset, bias_offset + 40);
      const Tensor expected = ops::linear(as_f64(x), as_f64(w), as_f64(bias));
      const Tensor actual =
          ops::linear(gpu(x), gpu(w), gpu(bias_storage).slice(0, bias_offset, bias_offset + 40));
      EXPECT_EQ(actual.shape(), Shape({2, 5, 40}));
      expect_matches(expected, actual, tolerance(dtype), "linear");
    }
  }
}

TEST(CublasLtMatmul, LinearGradientsMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  const Tensor x = random_tensor_in({6, 50}, DType::kF32, 400, -1, 1);
  const Tensor w = random_tensor_in({30, 50}, DType::kF32, 401, -1, 1);
  const Tensor b = random_tensor_in({30}, DType::kF32, 402, -1, 1);
  auto grads_on = [&](Device device) {
    Tensor xd = x.detach().to(device).set_requires_grad(true);
    Tensor wd = w.detach().to(device).set_requires_grad(true);
    Tensor bd = b.detach().to(device).set_requires_grad(true);
    Tensor out = linear(xd, wd, bd);
    sum(out * out).backward();
    return std::vector<Tensor>{xd.grad(), wd.grad(), bd.grad()};
  };
  const std::vector<Tensor> cpu = grads_on(Device::cpu());
  const std::vector<Tensor> cuda = grads_on(Device::cuda());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(cuda[i].device().is_cuda());
    expect_matches(cpu[i], cuda[i], 1e-5, absl::StrCat("gradient ", i));
  }
}

TEST(CublasLtMatmul, Tf32IsOffByDefaultAndCanBeAllowed) {
  OMPQ_REQUIRE_GPU();
  EXPECT_FALSE(cuda::cublaslt_allow_tf32());
  const Tensor a = random_tensor_in({128, 256}, DType::kF32, 500, -1, 1);
  const Tensor b = random_tensor_in({256, 64}, DType::kF32, 501, -1, 1);
  const Tensor expected = ops::matmul(as_f64(a), as_f64(b));
  cuda::set_cublaslt_allow_tf32(true);
  const int64_t before = cuda::cublaslt_heuristic_queries();
  const Tensor tf32 = ops::matmul(gpu(a), gpu(b));
  cuda::set_cublaslt_allow_tf32(false);
  EXPECT_EQ(cuda::cublaslt_heuristic_queries(), before + 1) << "TF32 products have their own plan";
  expect_matches(expected, tf32, 5e-3, "tf32 product");
  expect_matches(expected, ops::matmul(gpu(a), gpu(b)), 1e-5, "f32 product");
}

// out[i, j] = sum_k a[i, k] * w_t[j, k] in exact integers.
Tensor int_reference(const Tensor& a, const Tensor& w_t, const Tensor& bias) {
  const int64_t m = a.size(0), k = a.size(1), n = w_t.size(0);
  const std::vector<int8_t> av = a.to_vector<int8_t>(), wv = w_t.to_vector<int8_t>();
  const std::vector<int32_t> bv = bias.to_vector<int32_t>();
  std::vector<int32_t> out(m * n);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      int64_t acc = bv[j];
      for (int64_t kk = 0; kk < k; ++kk) acc += int64_t{av[i * k + kk]} * wv[j * k + kk];
      out[i * n + j] = static_cast<int32_t>(acc);
    }
  }
  return Tensor::from_vector(out, {1, m, n});
}

TEST(CublasLtMatmul, Int8ProductsAreExact) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 600;
  for (const Mkn& s : {Mkn{1, 128, 64}, Mkn{5, 32, 8}, Mkn{64, 256, 128}, Mkn{256, 64, 32}}) {
    SCOPED_TRACE(absl::StrCat(s.m, "x", s.k, "x", s.n));
    const Tensor a = random_tensor_in({s.m, s.k}, DType::kI8, seed++, -128, 128);
    const Tensor w_t = random_tensor_in({s.n, s.k}, DType::kI8, seed++, -128, 128);
    const Tensor bias = random_tensor_in({s.n}, DType::kI32, seed++, -100000, 100000);
    const Tensor out = Tensor::empty({1, s.m, s.n}, DType::kI32, Device::cuda());
    const Tensor wg = gpu(w_t);
    cuda::cublaslt_matmul(out, gpu(a).unsqueeze(0),
                          as_strided(wg, {1, s.k, s.n}, {s.k * s.n, 1, s.k}, 0), gpu(bias));
    testing::expect_equal(int_reference(a, w_t, bias), out, "int8 product");
  }
}

// a [1, m, k] row-major and w [1, k, n] column-major (the memory of a row-major [n, k]) on the CPU,
// each starting `offset` bytes into its storage: what check_int8_operands reads needs no GPU.
struct Int8Operands {
  Tensor a, w;
};
Int8Operands int8_operands(int64_t m, int64_t k, int64_t n, int64_t offset = 0) {
  const Tensor a_storage = Tensor::zeros({offset + m * k}, DType::kI8);
  const Tensor w_storage = Tensor::zeros({offset + n * k}, DType::kI8);
  return {as_strided(a_storage, {1, m, k}, {m * k, k, 1}, offset),
          as_strided(w_storage, {1, k, n}, {k * n, 1, k}, offset)};
}

TEST(CublasLtInt8Operands, AcceptsLeadingDimensionsThatAreMultiplesOfFour) {
  for (const Mkn& s : {Mkn{1, 128, 64}, Mkn{5, 32, 8}, Mkn{3, 4, 4}}) {
    const Int8Operands operands = int8_operands(s.m, s.k, s.n);
    EXPECT_NO_THROW(cuda::check_int8_operands(operands.a, operands.w))
        << s.m << "x" << s.k << "x" << s.n;
  }
}

TEST(CublasLtInt8Operands, NamesTheSizeThatIsNotAMultipleOfFour) {
  const Int8Operands odd_k = int8_operands(8, 30, 16);
  EXPECT_THAT([&] { cuda::check_int8_operands(odd_k.a, odd_k.w); },
              ThrowsMessage<Error>(AllOf(HasSubstr("[1, 8, 30] @ [1, 30, 16]"),
                                         HasSubstr("K = 30 is not a multiple of 4"))));
  const Int8Operands odd_n = int8_operands(8, 32, 6);
  EXPECT_THAT([&] { cuda::check_int8_operands(odd_n.a, odd_n.w); },
              ThrowsMessage<Error>(HasSubstr("N = 6 is not a multiple of 4")));
}

TEST(CublasLtInt8Operands, NamesTheLayoutAndAlignmentItNeeds) {
  const Int8Operands operands = int8_operands(8, 32, 16);
  const Tensor w_row_major = Tensor::zeros({1, 32, 16}, DType::kI8);
  EXPECT_THAT([&] { cuda::check_int8_operands(operands.a, w_row_major); },
              ThrowsMessage<Error>(HasSubstr("got a row-major and w row-major")));
  const Tensor a_column_major =
      as_strided(Tensor::zeros({8 * 32}, DType::kI8), {1, 8, 32}, {8 * 32, 1, 8}, 0);
  EXPECT_THAT([&] { cuda::check_int8_operands(a_column_major, operands.w); },
              ThrowsMessage<Error>(HasSubstr("got a column-major and w column-major")));
  const Int8Operands shifted = int8_operands(8, 32, 16, /*offset=*/2);
  EXPECT_THAT([&] { cuda::check_int8_operands(shifted.a, shifted.w); },
              ThrowsMessage<Error>(HasSubstr("4-byte boundaries, got a view starting a at byte "
                                             "alignment 2")));
}

TEST(CublasLtMatmul, Int8ProductWithAnOddInnerSizeFailsBeforePlanning) {
  OMPQ_REQUIRE_GPU();
  const int64_t before = cuda::cublaslt_heuristic_queries();
  const Tensor a = Tensor::zeros({1, 8, 30}, DType::kI8, Device::cuda());
  const Tensor w = as_strided(Tensor::zeros({16 * 30}, DType::kI8, Device::cuda()), {1, 30, 16},
                              {30 * 16, 1, 30}, 0);
  const Tensor out = Tensor::empty({1, 8, 16}, DType::kI32, Device::cuda());
  EXPECT_THAT([&] { cuda::cublaslt_matmul(out, a, w, Tensor()); },
              ThrowsMessage<Error>(HasSubstr("K = 30 is not a multiple of 4")));
  EXPECT_EQ(cuda::cublaslt_heuristic_queries(), before) << "rejected before any plan";
}

TEST(CublasLtMatmul, SecondProductOfAShapeQueriesNoHeuristic) {
  OMPQ_REQUIRE_GPU();
  const Tensor a = gpu(random_tensor_in({19, 23}, DType::kF32, 700, -1, 1));
  const Tensor b = gpu(random_tensor_in({23, 29}, DType::kF32, 701, -1, 1));
  const int64_t before = cuda::cublaslt_heuristic_queries();
  ops::matmul(a, b);
  EXPECT_EQ(cuda::cublaslt_heuristic_queries(), before + 1);
  ops::matmul(a.clone(), b.clone());
  EXPECT_EQ(cuda::cublaslt_heuristic_queries(), before + 1);
  ops::matmul(b.t(), a.t());  // another layout: another plan
  EXPECT_EQ(cuda::cublaslt_heuristic_queries(), before + 2);
}

struct WorkspaceLimit {
  explicit WorkspaceLimit(size_t bytes) { cuda::set_workspace_limit(bytes); }
  ~WorkspaceLimit() { cuda::set_workspace_limit(cuda::kNoWorkspaceLimit); }
};

// Long reductions over few outputs are where cuBLASLt splits K and wants workspace.
TEST(CublasLtMatmul, FallsBackToAnAlgorithmNeedingLessWorkspace) {
  OMPQ_REQUIRE_GPU();
  int exercised = 0;
  uint64_t seed = 800;
  for (const Mkn& s : {Mkn{16, 32768, 16}, Mkn{64, 16384, 64}, Mkn{8, 65536, 128}}) {
    SCOPED_TRACE(absl::StrCat(s.m, "x", s.k, "x", s.n));
    const Tensor a = random_tensor_in({s.m, s.k}, DType::kF32, seed++, -1, 1);
    const Tensor b = random_tensor_in({s.k, s.n}, DType::kF32, seed++, -1, 1);
    const Tensor expected = ops::matmul(as_f64(a), as_f64(b));
    const Tensor ag = gpu(a), bg = gpu(b);
    ops::matmul(ag, bg);
    const size_t preferred = cuda::workspace_stats().last_bytes;
    if (preferred == 0) continue;
    ++exercised;
    WorkspaceLimit limit(0);
    expect_matches(expected, ops::matmul(ag, bg), 1e-4, "no workspace");
    EXPECT_EQ(cuda::workspace_stats().last_bytes, 0u);
    EXPECT_GT(cuda::workspace_stats().last_candidate, 0);
  }
  if (exercised == 0) GTEST_SKIP() << "cuBLASLt's preferred algorithms needed no workspace here";
}

TEST(CublasLtMatmul, RejectsBadOperands) {
  OMPQ_REQUIRE_GPU();
  const Tensor a = Tensor::zeros({1, 4, 8}, DType::kF32, Device::cuda());
  const Tensor w = Tensor::zeros({1, 7, 3}, DType::kF32, Device::cuda());
  const Tensor out = Tensor::empty({1, 4, 3}, DType::kF32, Device::cuda());
  EXPECT_THAT([&] { cuda::cublaslt_matmul(out, a, w, Tensor()); },
              ThrowsMessage<Error>(HasSubstr("expected a [B, M, K], w [B, K, N]")));
  const Tensor i = Tensor::zeros({3, 3}, DType::kI32, Device::cuda());
  EXPECT_THAT([&] { ops::matmul(i, i); }, ThrowsMessage<Error>(HasSubstr("unsupported dtype i32")));
  const Tensor i8 = Tensor::zeros({1, 4, 4}, DType::kI8, Device::cuda());
  const Tensor i8_out = Tensor::empty({1, 4, 4}, DType::kI8, Device::cuda());
  EXPECT_THAT([&] { cuda::cublaslt_matmul(i8_out, i8, i8, Tensor()); },
              ThrowsMessage<Error>(HasSubstr("i8 operands and an i32 output")));
}

}  // namespace
}  // namespace ompq
