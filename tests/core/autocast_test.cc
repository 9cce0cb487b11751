// Autocast mixed precision on the CPU: the guard's state (nesting, disabling, per thread); conv2d,
// linear and matmul under bf16 and f16 autocast against (a) an f64 reference on the operands
// rounded to the low dtype, which checks that exactly the low-precision products were formed and
// accumulated in f32 (tolerance 1e-4 of the result's scale: f32 accumulation over at most a few
// hundred terms), and (b) the f32 computation on unrounded operands (tolerance: bf16 1e-2, f16
// 2e-3 of the result's scale: the operands' rounding, 2^-9 and 2^-12 relative), while differing
// from it bitwise (the low precision really ran); gradients of the f32 master weights are f32
// and close to the f32 ones. The raw ops' low-precision dtype combinations and their errors; bf16
// forced onto the widened f32 path that CPUs without oneDNN bf16 take.
#include "core/autocast.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "core/autograd.h"
#include "core/cpu/dnnl_context.h"
#include "core/functional/conv.h"
#include "core/functional/elementwise.h"
#include "core/functional/linalg.h"
#include "core/functional/reduce.h"
#include "core/ops/conv.h"
#include "core/ops/elementwise.h"
#include "core/ops/linalg.h"
#include "core/random.h"
#include "tests/core/golden_inputs.h"

namespace ompq {
namespace {

using ::testing::AllOf;
using testing::expect_all_close;
using ::testing::HasSubstr;

// t's values rounded to `dtype`, held in f64 (the reference's operands).
Tensor rounded(const Tensor& t, DType dtype) { return t.detach().to(dtype).to(DType::kF64); }

double tolerance_vs_f32(DType dtype) { return dtype == DType::kBF16 ? 1e-2 : 2e-3; }

int64_t count_different(const Tensor& a, const Tensor& b) {
  std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  int64_t n = 0;
  for (size_t i = 0; i < x.size(); ++i) n += x[i] != y[i];
  return n;
}

Tensor to_channels_last(const Tensor& t) {
  return t.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
}

TEST(AutocastGuard, NestsDisablesAndRestores) {
  EXPECT_FALSE(autocast_enabled());
  EXPECT_EQ(autocast_dtype(), DType::kF32);
  {
    AutocastGuard bf16(DType::kBF16);
    EXPECT_TRUE(autocast_enabled());
    EXPECT_EQ(autocast_dtype(), DType::kBF16);
    {
      AutocastGuard f16(DType::kF16);
      EXPECT_EQ(autocast_dtype(), DType::kF16);
      {
        AutocastGuard off(DType::kF32);
        EXPECT_FALSE(autocast_enabled());
      }
      EXPECT_EQ(autocast_dtype(), DType::kF16);
    }
    EXPECT_EQ(autocast_dtype(), DType::kBF16);
    bool other_thread_enabled = true;
    std::thread([&] { other_thread_enabled = autocast_enabled(); }).join();
    EXPECT_FALSE(other_thread_enabled) << "autocast is per thread";
  }
  EXPECT_FALSE(autocast_enabled());
}

TEST(AutocastGuard, RejectsOtherDtypes) {
  for (DType dtype : {DType::kF64, DType::kI8}) {
    EXPECT_THAT([&] { AutocastGuard guard(dtype); },
                ::testing::ThrowsMessage<Error>(AllOf(HasSubstr("AutocastGuard"),
                                                      HasSubstr(dtype_name(dtype)),
                                                      HasSubstr("expected bf16 or f16"))));
  }
  EXPECT_FALSE(autocast_enabled()) << "a rejected guard leaves the state alone";
}

TEST(AutocastCast, CastsF32KeepsLayoutAndLeavesF64Alone) {
  Generator gen(1);
  const Tensor x = to_channels_last(randn({2, 3, 4, 5}, gen));
  EXPECT_TRUE(autocast_cast(x).same(x)) << "autocast off";
  AutocastGuard guard(DType::kBF16);
  const Tensor cast = autocast_cast(x);
  EXPECT_EQ(cast.dtype(), DType::kBF16);
  EXPECT_TRUE(is_channels_last(cast));
  expect_all_close(cast, rounded(x, DType::kBF16), 0.0);
  const Tensor x64 = randn({3}, gen, DType::kF64);
  EXPECT_TRUE(autocast_cast(x64).same(x64));
  const Tensor low = x.to(DType::kBF16);
  EXPECT_TRUE(autocast_cast(low).same(low));
}

TEST(AutocastCast, GradientComesBackInTheSourceDtype) {
  Generator gen(2);
  Tensor x = randn({4}, gen).set_requires_grad(true);
  {
    AutocastGuard guard(DType::kF16);
    Tensor cast = autocast_cast(x);
    ASSERT_EQ(cast.dtype(), DType::kF16);
    cast.backward(Tensor::full({4}, 0.5, DType::kF16));
  }
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().dtype(), DType::kF32);
  EXPECT_EQ(x.grad().to_vector<float>(), std::vector<float>(4, 0.5f));
}

struct ConvCase {
  const char* name;
  Shape x, w;
  Conv2dParams p;
  bool channels_last;
};

// One per oneDNN layout choice of core/cpu/conv_kernels.cc: blocked 3x3, plain pointwise, plain
// few-channel first layer, blocked depthwise, channels_last as given.
const ConvCase kConvCases[] = {
    {"blocked_3x3", {2, 16, 9, 9}, {24, 16, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1}, false},
    {"pointwise_stride2", {2, 32, 8, 8}, {16, 32, 1, 1}, {{2, 2}, {0, 0}, {1, 1}, 1}, false},
    {"first_layer", {2, 3, 15, 15}, {8, 3, 7, 7}, {{2, 2}, {3, 3}, {1, 1}, 1}, false},
    {"depthwise", {2, 16, 9, 9}, {16, 1, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, 16}, false},
    {"channels_last", {2, 16, 7, 6}, {8, 16, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1}, true},
};

// conv2d under autocast and in f32 on the same f32 leaves, forward and backward.
void check_autocast_conv(const ConvCase& c, DType dtype, uint64_t seed) {
  SCOPED_TRACE(absl::StrCat(c.name, " ", dtype_name(dtype)));
  Generator gen(seed);
  const Tensor x0 = c.channels_last ? to_channels_last(randn(c.x, gen)) : randn(c.x, gen);
  const Tensor w0 = randn(c.w, gen), b0 = randn({c.w[0]}, gen);
  const Shape out_shape = ops::conv2d_output_shape(c.x, c.w, c.p);
  const Tensor seed_grad = randn(out_shape, gen);
  auto run = [&](DType precision) {
    Tensor x = x0.detach().set_requires_grad(true), w = w0.clone().set_requires_grad(true),
           b = b0.clone().set_requires_grad(true);
    Tensor out;
    {
      AutocastGuard guard(precision);
      out = conv2d(x, w, b, c.p);
    }
    out.backward(seed_grad);
    return std::vector<Tensor>{out, x.grad(), w.grad(), b.grad()};
  };
  const std::vector<Tensor> low = run(dtype), full = run(DType::kF32);
  for (const Tensor& t : low) EXPECT_EQ(t.dtype(), DType::kF32);
  if (c.channels_last) EXPECT_TRUE(is_channels_last(low[0]));

  const Tensor ref = ops::conv2d(rounded(x0, dtype), rounded(w0, dtype), b0.to(DType::kF64), c.p);
  expect_all_close(low[0], ref, 1e-4);
  const Conv2dGrads ref_grads = ops::conv2d_backward(rounded(seed_grad, dtype), rounded(x0, dtype),
                                                     rounded(w0, dtype), {true, true, true}, c.p);
  expect_all_close(low[1], ref_grads.input, 1e-4);
  expect_all_close(low[2], ref_grads.weight, 1e-4);

  const double tol = tolerance_vs_f32(dtype);
  for (int i = 0; i < 4; ++i) {
    SCOPED_TRACE(i == 0 ? "output" : absl::StrCat("gradient ", i - 1));
    expect_all_close(low[i], full[i], tol);
  }
  EXPECT_GT(count_different(low[0], full[0]), 0) << "autocast gave the f32 result bit for bit";
  EXPECT_GT(count_different(low[2], full[2]), 0);
}

TEST(AutocastConv2d, Bf16MatchesTheRoundedReferenceAndIsCloseToF32) {
  uint64_t seed = 10;
  for (const ConvCase& c : kConvCases) check_autocast_conv(c, DType::kBF16, seed++);
}

TEST(AutocastConv2d, F16MatchesTheRoundedReferenceAndIsCloseToF32) {
  uint64_t seed = 20;
  for (const ConvCase& c : kConvCases) check_autocast_conv(c, DType::kF16, seed++);
}

TEST(AutocastConv2d, F64IsNotCast) {
  Generator gen(3);
  const Tensor x = randn({1, 2, 5, 5}, gen, DType::kF64), w = randn({3, 2, 3, 3}, gen, DType::kF64);
  const Tensor expected = conv2d(x, w, Tensor());
  AutocastGuard guard(DType::kBF16);
  const Tensor out = conv2d(x, w, Tensor());
  EXPECT_EQ(out.dtype(), DType::kF64);
  EXPECT_EQ(count_different(out, expected), 0);
}

void check_autocast_linear(DType dtype, uint64_t seed) {
  SCOPED_TRACE(dtype_name(dtype));
  Generator gen(seed);
  const Tensor x0 = randn({3, 5, 48}, gen), w0 = randn({20, 48}, gen), b0 = randn({20}, gen);
  const Tensor seed_grad = randn({3, 5, 20}, gen);
  auto run = [&](DType precision) {
    Tensor x = x0.clone().set_requires_grad(true), w = w0.clone().set_requires_grad(true),
           b = b0.clone().set_requires_grad(true);
    Tensor out;
    {
      AutocastGuard guard(precision);
      out = linear(x, w, b);
    }
    out.backward(seed_grad);
    return std::vector<Tensor>{out, x.grad(), w.grad(), b.grad()};
  };
  const std::vector<Tensor> low = run(dtype), full = run(DType::kF32);
  for (const Tensor& t : low) EXPECT_EQ(t.dtype(), DType::kF32);
  expect_all_close(low[0], ops::linear(rounded(x0, dtype), rounded(w0, dtype), b0.to(DType::kF64)),
                   1e-4);
  const Tensor g = rounded(seed_grad, dtype).reshape({15, 20});
  expect_all_close(low[2], ops::matmul(g.t(), rounded(x0, dtype).reshape({15, 48})), 1e-4);
  expect_all_close(low[3], sum(seed_grad.reshape({15, 20}), {0}), 1e-6);  // the f32 gradient
  for (int i = 0; i < 4; ++i) expect_all_close(low[i], full[i], tolerance_vs_f32(dtype));
  EXPECT_GT(count_different(low[0], full[0]), 0);
  EXPECT_GT(count_different(low[2], full[2]), 0);
}

TEST(AutocastLinear, Bf16AndF16MatchTheRoundedReferenceAndAreCloseToF32) {
  check_autocast_linear(DType::kBF16, 30);
  check_autocast_linear(DType::kF16, 31);
}

TEST(AutocastMatmul, BatchedProductAndGradientsInBf16) {
  Generator gen(40);
  const Tensor a0 = randn({2, 7, 33}, gen), b0 = randn({2, 33, 9}, gen);
  Tensor a = a0.clone().set_requires_grad(true), b = b0.clone().set_requires_grad(true);
  Tensor out;
  {
    AutocastGuard guard(DType::kBF16);
    out = matmul(a, b);
  }
  EXPECT_EQ(out.dtype(), DType::kF32);
  expect_all_close(out, ops::matmul(rounded(a0, DType::kBF16), rounded(b0, DType::kBF16)), 1e-4);
  EXPECT_GT(count_different(out, ops::matmul(a0, b0)), 0);
  sum(out * out).backward();
  ASSERT_EQ(a.grad().dtype(), DType::kF32);
  ASSERT_EQ(b.grad().dtype(), DType::kF32);
  const Tensor full_grad = 2.0 * ops::matmul(a0, b0);
  expect_all_close(a.grad(), ops::matmul(full_grad, b0.transpose(1, 2).contiguous()), 1e-2);
  expect_all_close(b.grad(), ops::matmul(a0.transpose(1, 2).contiguous(), full_grad), 1e-2);
}

// ---- raw ops: low-precision dtypes -------------------------------------------------------------

TEST(LowPrecisionConv2d, SameDtypeOutputsAndBackwardOnTheCpu) {
  Generator gen(50);
  const Conv2dParams p = {{1, 1}, {1, 1}, {1, 1}, 1};
  const Tensor x = randn({2, 16, 6, 6}, gen), w = randn({8, 16, 3, 3}, gen), b = randn({8}, gen),
               g = randn({2, 8, 6, 6}, gen);
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    SCOPED_TRACE(dtype_name(dtype));
    const Tensor xl = x.to(dtype), wl = w.to(dtype);
    const Tensor out = ops::conv2d(xl, wl, b.to(dtype), p);
    ASSERT_EQ(out.dtype(), dtype);
    // One rounding of an f32 result: within one ulp (2^-8 / 2^-11 relative) of the reference.
    const double ulp = dtype == DType::kBF16 ? 1.0 / 256 : 1.0 / 2048;
    const Tensor ref = ops::conv2d(rounded(x, dtype), rounded(w, dtype), rounded(b, dtype), p);
    expect_all_close(out, ref, ulp);
    const Conv2dGrads grads = ops::conv2d_backward(g.to(dtype), xl, wl, {true, true, true}, p);
    const Conv2dGrads mixed = ops::conv2d_backward(g, xl, wl, {true, true, true}, p);
    const Conv2dGrads ref_grads = ops::conv2d_backward(rounded(g, dtype), rounded(x, dtype),
                                                       rounded(w, dtype), {true, true, true}, p);
    for (const Tensor* t : {&grads.input, &grads.weight, &grads.bias}) EXPECT_EQ(t->dtype(), dtype);
    for (const Tensor* t : {&mixed.input, &mixed.weight, &mixed.bias}) {
      EXPECT_EQ(t->dtype(), DType::kF32);
    }
    expect_all_close(grads.input, ref_grads.input, ulp);
    expect_all_close(grads.weight, ref_grads.weight, ulp);
    expect_all_close(mixed.input, ref_grads.input, 1e-4);
    expect_all_close(mixed.weight, ref_grads.weight, 1e-4);
    expect_all_close(mixed.bias, ref_grads.bias, 1e-4);
  }
}

TEST(LowPrecisionMatmul, SameDtypeAndF32OutputsOnTheCpu) {
  Generator gen(60);
  const Tensor a = randn({9, 40}, gen), b = randn({40, 11}, gen), bias = randn({11}, gen);
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    SCOPED_TRACE(dtype_name(dtype));
    const Tensor ref = ops::matmul(rounded(a, dtype), rounded(b, dtype));
    const Tensor same = ops::matmul(a.to(dtype), b.to(dtype));
    EXPECT_EQ(same.dtype(), dtype);
    expect_all_close(same, ref, dtype == DType::kBF16 ? 1.0 / 256 : 1.0 / 2048);
    const Tensor wide = ops::matmul(a.to(dtype), b.to(dtype), DType::kF32);
    EXPECT_EQ(wide.dtype(), DType::kF32);
    expect_all_close(wide, ref, 1e-5);
    // Column-major (transposed) operands take the same path.
    expect_all_close(ops::matmul(a.to(dtype).t().contiguous().t(), b.to(dtype), DType::kF32), ref,
                     1e-5);
    const Tensor lin = ops::linear(a.to(dtype), b.t().contiguous().to(dtype), bias, DType::kF32);
    expect_all_close(lin, ops::add(ref, bias.to(DType::kF64)), 1e-5);
  }
}

// Where oneDNN has no bf16 (AVX2 CPUs) bf16 is widened to f32: the f32 primitives on the widened
// operands, a bf16 output rounded once from their result, an f32 grad_out rounded to bf16 first.
// That is the f32 computation on the bf16-rounded operands, so the two agree bit for bit. Forced
// here so that the fallback is tested on CPUs with native bf16 too.
TEST(LowPrecisionWidenedBf16, IsTheF32ComputationOnTheRoundedOperands) {
  Generator gen(70);
  const Conv2dParams p = {{1, 1}, {1, 1}, {1, 1}, 1};
  const Tensor x = randn({2, 16, 6, 6}, gen), w = randn({8, 16, 3, 3}, gen), b = randn({8}, gen),
               g = randn({2, 8, 6, 6}, gen), a = randn({9, 40}, gen), m = randn({40, 11}, gen),
               linear_bias = randn({11}, gen);
  // Each tensor rounded to bf16, and that bf16 tensor widened back to f32.
  auto bf16 = [](const Tensor& t) { return t.to(DType::kBF16); };
  auto widened = [](const Tensor& t) { return t.to(DType::kBF16).to(DType::kF32); };
  const Tensor conv_ref = ops::conv2d(widened(x), widened(w), widened(b), p);
  const Conv2dGrads conv_grads_ref =
      ops::conv2d_backward(widened(g), widened(x), widened(w), {true, true, true}, p);
  const Tensor matmul_ref = ops::matmul(widened(a), widened(m));
  const Tensor linear_ref = ops::linear(widened(a), widened(m).t(), linear_bias);

  cpu::ScopedBf16Widening widening;
  ASSERT_FALSE(cpu::onednn_has_bf16());
  const Tensor out = ops::conv2d(bf16(x), bf16(w), bf16(b), p);
  ASSERT_EQ(out.dtype(), DType::kBF16);
  expect_all_close(out, conv_ref.to(DType::kBF16), 0.0);
  for (const Tensor& grad_out : {g, bf16(g)}) {
    SCOPED_TRACE(absl::StrCat("grad_out ", dtype_name(grad_out.dtype())));
    const Conv2dGrads grads =
        ops::conv2d_backward(grad_out, bf16(x), bf16(w), {true, true, true}, p);
    for (const Tensor* t : {&grads.input, &grads.weight, &grads.bias}) {
      EXPECT_EQ(t->dtype(), grad_out.dtype());
    }
    expect_all_close(grads.input, conv_grads_ref.input.to(grad_out.dtype()), 0.0);
    expect_all_close(grads.weight, conv_grads_ref.weight.to(grad_out.dtype()), 0.0);
    expect_all_close(grads.bias, conv_grads_ref.bias.to(grad_out.dtype()), 0.0);
  }
  const Tensor same = ops::matmul(bf16(a), bf16(m));
  ASSERT_EQ(same.dtype(), DType::kBF16);
  expect_all_close(same, matmul_ref.to(DType::kBF16), 0.0);
  expect_all_close(ops::matmul(bf16(a), bf16(m), DType::kF32), matmul_ref, 0.0);
  expect_all_close(ops::linear(bf16(a), bf16(m).t(), linear_bias, DType::kF32), linear_ref, 0.0);
}

TEST(LowPrecisionWidenedBf16, ScopeIsPerThreadAndRestores) {
  const bool native = cpu::onednn_has_bf16();
  {
    cpu::ScopedBf16Widening outer;
    {
      cpu::ScopedBf16Widening inner;
      EXPECT_FALSE(cpu::onednn_has_bf16());
    }
    EXPECT_FALSE(cpu::onednn_has_bf16()) << "the outer scope still forces widening";
    bool other_thread = !native;
    std::thread([&] { other_thread = cpu::onednn_has_bf16(); }).join();
    EXPECT_EQ(other_thread, native) << "forcing is per thread";
  }
  EXPECT_EQ(cpu::onednn_has_bf16(), native);
}

TEST(LowPrecisionOps, RejectUnsupportedDtypeCombinations) {
  const Tensor x = Tensor::zeros({1, 2, 5, 5}), w = Tensor::zeros({4, 2, 3, 3});
  EXPECT_THAT([&] { ops::conv2d(x, w, Tensor(), {}, DType::kBF16); },
              ::testing::ThrowsMessage<Error>(AllOf(
                  HasSubstr("conv2d: operands of dtype f32 cannot give an output of dtype bf16"),
                  HasSubstr("expected f32)"))));
  EXPECT_THAT(
      [&] { ops::conv2d(x.to(DType::kBF16), w.to(DType::kBF16), Tensor(), {}, DType::kF16); },
      ::testing::ThrowsMessage<Error>(HasSubstr("(expected bf16 or f32)")));
  EXPECT_THAT([&] { ops::conv2d(x.to(DType::kI8), w.to(DType::kI8), Tensor(), {}); },
              ::testing::ThrowsMessage<Error>(
                  AllOf(HasSubstr("conv2d: unsupported dtype i8"), HasSubstr("bf16 or f16"))));
  EXPECT_THAT(
      [&] {
        ops::conv2d(x.to(DType::kBF16), w.to(DType::kBF16), Tensor::zeros({4}, DType::kBF16), {},
                    DType::kF32);
      },
      ::testing::ThrowsMessage<Error>(
          HasSubstr("conv2d: bias of dtype bf16 for an output of dtype f32")));
  EXPECT_THAT([&] { ops::conv2d(x.to(DType::kBF16), w.to(DType::kF16), Tensor(), {}); },
              ::testing::ThrowsMessage<Error>(HasSubstr("dtype mismatch")));
  EXPECT_THAT(
      [&] {
        ops::conv2d_backward(Tensor::zeros({1, 4, 3, 3}, DType::kF64), x.to(DType::kBF16),
                             w.to(DType::kBF16), {true, true, false}, {});
      },
      ::testing::ThrowsMessage<Error>(
          HasSubstr("conv2d_backward: operands of dtype bf16 cannot give an output of dtype f64")));
  const Tensor a = Tensor::zeros({2, 3}, DType::kF16), b = Tensor::zeros({3, 4}, DType::kF16);
  EXPECT_THAT([&] { ops::matmul(a, b, DType::kF64); },
              ::testing::ThrowsMessage<Error>(
                  HasSubstr("matmul: operands of dtype f16 cannot give an output of dtype f64")));
  EXPECT_THAT([&] { ops::linear(a, b.t(), Tensor::zeros({4}, DType::kF16), DType::kF32); },
              ::testing::ThrowsMessage<Error>(
                  HasSubstr("linear: bias of dtype f16 for an output of dtype f32")));
  EXPECT_THAT([&] { ops::matmul(a.to(DType::kI32), b.to(DType::kI32)); },
              ::testing::ThrowsMessage<Error>(HasSubstr("matmul: unsupported dtype i32")));
}

}  // namespace
}  // namespace ompq
