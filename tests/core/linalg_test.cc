// matmul and linear: f64 finite-difference gradients (2-D, batched, transposed views, linear on
// 3-D input with and without bias), oneDNN f32 against the f64 loops, PyTorch 1.13 golden values,
// and bad inputs.
#include "core/functional/linalg.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/ops/linalg.h"
#include "core/random.h"
#include "tests/core/golden_inputs.h"
#include "tests/gradcheck.h"

namespace ompq {
namespace {

using ::testing::AllOf;
using testing::expect_all_close;
using testing::expect_gradients_match;
using ::testing::HasSubstr;
using testing::pattern_tensor;

TEST(MatmulTest, GradientsMatchFiniteDifferences2D) {
  Generator gen(1);
  expect_gradients_match([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
                         {randn({3, 4}, gen, DType::kF64), randn({4, 5}, gen, DType::kF64)});
}

TEST(MatmulTest, GradientsMatchFiniteDifferencesBatched) {
  Generator gen(2);
  expect_gradients_match([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
                         {randn({2, 3, 4}, gen, DType::kF64), randn({2, 4, 2}, gen, DType::kF64)});
}

TEST(MatmulTest, GradientsMatchFiniteDifferencesTransposedViews) {
  Generator gen(3);
  expect_gradients_match(
      [](const std::vector<Tensor>& in) { return matmul(in[0].t(), in[1].transpose(0, 1)); },
      {randn({4, 3}, gen, DType::kF64), randn({5, 4}, gen, DType::kF64)});
}

TEST(LinearTest, GradientsMatchFiniteDifferences3DInput) {
  Generator gen(4);
  expect_gradients_match([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); },
                         {randn({2, 3, 4}, gen, DType::kF64), randn({5, 4}, gen, DType::kF64),
                          randn({5}, gen, DType::kF64)});
  expect_gradients_match(
      [](const std::vector<Tensor>& in) { return linear(in[0], in[1], Tensor()); },
      {randn({3, 4}, gen, DType::kF64), randn({2, 4}, gen, DType::kF64)});
}

TEST(MatmulTest, OneDnnF32MatchesF64Loops) {
  Generator gen(5);
  struct Case {
    Shape a, b;
    bool transpose_a, transpose_b;
  };
  const Case cases[] = {{{17, 33}, {33, 9}, false, false},
                        {{33, 17}, {9, 33}, true, true},
                        {{3, 8, 20}, {3, 20, 6}, false, false},
                        {{3, 20, 8}, {3, 6, 20}, true, true},
                        {{1, 64}, {64, 130}, false, false}};
  for (const Case& c : cases) {
    Tensor a = randn(c.a, gen), b = randn(c.b, gen);
    if (c.transpose_a) a = a.transpose(-1, -2);
    if (c.transpose_b) b = b.transpose(-1, -2);
    SCOPED_TRACE(shape_str(a.shape()) + " x " + shape_str(b.shape()));
    expect_all_close(ops::matmul(a, b), ops::matmul(a.to(DType::kF64), b.to(DType::kF64)), 1e-5);
  }
  Tensor x = randn({2, 5, 24}, gen), w = randn({7, 24}, gen), bias = randn({7}, gen);
  expect_all_close(ops::linear(x, w, bias),
                   ops::linear(x.to(DType::kF64), w.to(DType::kF64), bias.to(DType::kF64)), 1e-5);
}

// Golden values from PyTorch 1.13 (float64) on pattern inputs (see golden_inputs.h):
// linear: x = pattern(37, 23, 11) [2, 3, 4], w = pattern(29, 17, 8) [5, 4], b = pattern(5, 7, 3),
// grad = pattern(13, 11, 5) [2, 3, 5]; bmm: a = pattern(31, 19, 9) [2, 3, 4],
// b = pattern(7, 13, 6) [2, 4, 2]. Exact binary fractions: 1e-12 in f64, 1e-6 in f32.
TEST(LinearTest, MatchesPyTorchGolden) {
  const std::vector<double> y = {0.53125,   0.640625,  0.671875,  -0.890625, 0.015625,  -0.46875,
                                 -0.875,    -0.5625,   0.8125,    2,         -1.828125, 2.28125,
                                 1.796875,  -1.078125, -0.6875,   1.484375,  -1.03125,  -1.234375,
                                 -1.171875, -0.5,      -1.671875, 0.328125,  -0.671875, 1.25,
                                 1.125,     2,         -1.546875, -1.1875,   -1.359375, -0.125};
  const std::vector<double> gx = {0.15625,  -0.78125, 0.671875,  0,        -1.1875, 0.0625,
                                  0.515625, -1.15625, -1.15625,  0.21875,  0.53125, -1.28125,
                                  -0.09375, 0.546875, -0.140625, -0.03125, -0.0625, 0.703125,
                                  -0.125,   -0.15625, 0.484375,  0.515625, -1.3125, 0.578125};
  const std::vector<double> gw = {1.234375, -0.53125, 0.578125, -1.1875,   -0.390625,
                                  1.40625,  1.40625,  -1.46875, -0.984375, 0.421875,
                                  -0.6875,  -0.71875, -0.03125, -0.5625,   -0.375,
                                  0.890625, -0.28125, -0.34375, -0.40625,  0.609375};
  const std::vector<double> gb = {1.25, 0, -1.25, -1.125, 0.375};
  const std::vector<double> bmm = {0.484375, 0.265625, 0.046875, 0.046875, 0.203125,  0.421875,
                                   0.015625, -0.96875, 0,        0.8125,   -0.015625, -0.96875};
  for (DType dtype : {DType::kF64, DType::kF32}) {
    SCOPED_TRACE(dtype_name(dtype));
    const double tol = dtype == DType::kF64 ? 1e-12 : 1e-6;
    Tensor x = pattern_tensor({2, 3, 4}, 37, 23, 11).to(dtype).set_requires_grad(true);
    Tensor w = pattern_tensor({5, 4}, 29, 17, 8).to(dtype).set_requires_grad(true);
    Tensor b = pattern_tensor({5}, 5, 7, 3).to(dtype).set_requires_grad(true);
    Tensor out = linear(x, w, b);
    expect_all_close(out, Tensor::from_vector(y, {2, 3, 5}), tol);
    out.backward(pattern_tensor({2, 3, 5}, 13, 11, 5).to(dtype));
    expect_all_close(x.grad(), Tensor::from_vector(gx, {2, 3, 4}), tol);
    expect_all_close(w.grad(), Tensor::from_vector(gw, {5, 4}), tol);
    expect_all_close(b.grad(), Tensor::from_vector(gb, {5}), tol);
    expect_all_close(matmul(pattern_tensor({2, 3, 4}, 31, 19, 9).to(dtype),
                            pattern_tensor({2, 4, 2}, 7, 13, 6).to(dtype)),
                     Tensor::from_vector(bmm, {2, 3, 2}), tol);
  }
}

TEST(MatmulTest, BadShapesAreRejected) {
  EXPECT_THAT(
      [] {
        matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 5}));
      },
      ::testing::ThrowsMessage<Error>(
          AllOf(HasSubstr("matmul"), HasSubstr("[2, 3]"), HasSubstr("[4, 5]"))));
  EXPECT_THAT(
      [] {
        matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({4, 5}));
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("two 2-D or two 3-D")));
  EXPECT_THAT(
      [] {
        matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({3, 4, 5}));
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("batch sizes differ")));
  EXPECT_THAT(
      [] {
        matmul(Tensor::zeros({2, 3}), Tensor::zeros({3, 2}, DType::kF64));
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("dtype mismatch")));
}

TEST(LinearTest, BadShapesAreRejected) {
  EXPECT_THAT(
      [] {
        linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 5}), Tensor());
      },
      ::testing::ThrowsMessage<Error>(
          AllOf(HasSubstr("linear"), HasSubstr("[2, 3]"), HasSubstr("[4, 5]"))));
  EXPECT_THAT(
      [] {
        linear(Tensor::zeros({2, 5}), Tensor::zeros({4, 5}), Tensor::zeros({5}));
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("bias of shape [5]")));
}

}  // namespace
}  // namespace ompq
