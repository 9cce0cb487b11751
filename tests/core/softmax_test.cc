// softmax / log_softmax / cross_entropy: PyTorch 1.13 golden values, a naive reference over every
// dim, stability for large inputs, f64 finite-difference gradients, and bad inputs.
#include "core/functional/softmax.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/autograd.h"
#include "core/ops/softmax_math.h"
#include "core/random.h"
#include "tests/gradcheck.h"

namespace ompq {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

void expect_near_vectors(const std::vector<double>& actual, const std::vector<double>& expected,
                         double tol) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) EXPECT_NEAR(actual[i], expected[i], tol) << "at " << i;
}

// Naive softmax of a contiguous tensor along `dim`, in double.
std::vector<double> reference_softmax(const Tensor& x, int64_t dim, bool log) {
  std::vector<double> v = x.to_vector<double>(), out(v.size());
  int64_t outer = 1, inner = 1, size = x.size(dim);
  for (int64_t d = 0; d < dim; ++d) outer *= x.size(d);
  for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.size(d);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < inner; ++j) {
      auto at = [&](int64_t k) { return (o * size + k) * inner + j; };
      double max = -INFINITY, sum = 0;
      for (int64_t k = 0; k < size; ++k) max = std::max(max, v[at(k)]);
      for (int64_t k = 0; k < size; ++k) sum += std::exp(v[at(k)] - max);
      for (int64_t k = 0; k < size; ++k)
        out[at(k)] = log ? v[at(k)] - max - std::log(sum) : std::exp(v[at(k)] - max) / sum;
    }
  return out;
}

// x[i] = 4 sin(0.53 i), shape [2, 3, 4]: the input of the golden values below.
Tensor golden_softmax_input() {
  std::vector<double> v(24);
  for (int i = 0; i < 24; ++i) v[i] = 4 * std::sin(0.53 * i);
  return Tensor::from_vector(v, {2, 3, 4});
}

TEST(Softmax, MatchesPyTorchGolden) {
  // torch.softmax / torch.log_softmax(x, 1) in f64; compared in f32 as well.
  const std::vector<double> softmax_dim1 = {
      0.03190097912,   0.5327591172,   0.9734570208,   0.9947188155,    0.9671935485,
      0.4659406124,    0.02547863167,  0.002117075396, 0.0009054723556, 0.0013002704,
      0.001064347544,  0.003164109148, 0.05042699624,  0.6604470241,    0.9824213942,
      0.9940635584,    0.9486476061,   0.3382715311,   0.01646038218,   0.001673174327,
      0.0009253976775, 0.001281444759, 0.001118223592, 0.004263267268};
  const std::vector<double> log_softmax_dim2 = {
      -4.563090331, -2.540956966, -1.073668401,  -0.5638278701, -0.2231708547, -1.746810616,
      -3.788524399, -5.788094814, -2.200105183,  -2.631533725,  -1.967239718,  -0.3894960417,
      -4.322220516, -2.348162303, -0.9999823255, -0.6476021045, -0.2023220712, -1.83184258,
      -3.903658528, -5.849292916, -2.541321269,  -2.814133428,  -1.999303682,  -0.3204097897};
  for (DType dtype : {DType::kF64, DType::kF32}) {
    const double tol = dtype == DType::kF64 ? 1e-9 : 2e-6;
    Tensor x = golden_softmax_input().to(dtype);
    expect_near_vectors(softmax(x, 1).to_vector<double>(), softmax_dim1, tol);
    expect_near_vectors(log_softmax(x, -1).to_vector<double>(), log_softmax_dim2, tol);
  }
}

TEST(Softmax, MatchesReferenceOverEveryDim) {
  Generator gen(3);
  // Inner sizes above and below the kernel's column block (64), and a non-contiguous input.
  for (Shape shape : {Shape{2, 3, 4}, Shape{3, 5, 70}, Shape{130, 2}, Shape{7}}) {
    Tensor x = randn(shape, gen, DType::kF64);
    for (int64_t dim = 0; dim < x.dim(); ++dim) {
      for (bool log : {false, true}) {
        Tensor y = log ? log_softmax(x, dim) : softmax(x, dim);
        expect_near_vectors(y.to_vector<double>(), reference_softmax(x, dim, log), 1e-12);
      }
    }
  }
  Tensor base = randn({4, 6}, gen, DType::kF64);
  Tensor transposed = base.t();
  expect_near_vectors(softmax(transposed, 1).to_vector<double>(),
                      reference_softmax(transposed.contiguous(), 1, false), 1e-12);
}

TEST(Softmax, F32KernelsMatchDoubleReference) {
  // The f32 path uses the vectorizable polynomial exp; f64 uses std::exp.
  Generator gen(4);
  for (Shape shape : {Shape{5, 300}, Shape{2, 7, 9}}) {
    Tensor x = randn(shape, gen, DType::kF32).detach();
    std::vector<double> x64 = x.to_vector<double>();
    Tensor exact_input = Tensor::from_vector(x64, shape);
    for (int64_t dim = 0; dim < x.dim(); ++dim) {
      for (bool log : {false, true}) {
        Tensor y = log ? log_softmax(x, dim) : softmax(x, dim);
        expect_near_vectors(y.to_vector<double>(), reference_softmax(exact_input, dim, log), 1e-6);
      }
    }
  }
}

TEST(Softmax, PolynomialExpIsAccurateAndHandlesSpecialValues) {
  double worst = 0;
  for (float x = -87.0f; x < 88.0f; x += 0.001953125f) {
    worst = std::max(worst, std::abs(softmax_expf(x) - std::exp(double{x})) / std::exp(double{x}));
  }
  EXPECT_LT(worst, 2.5e-7);  // about 2 ulp
  EXPECT_EQ(softmax_expf(0.0f), 1.0f);
  EXPECT_EQ(softmax_expf(-INFINITY), 0.0f);
  EXPECT_EQ(softmax_expf(-100.0f), 0.0f);
  EXPECT_TRUE(std::isnan(softmax_expf(NAN)));
  // A masked (-inf) logit gets probability 0.
  Tensor masked = Tensor::from_vector<float>({0.f, -INFINITY, 1.f}, {3});
  EXPECT_EQ(softmax(masked, 0).to_vector<float>()[1], 0.0f);
}

TEST(Softmax, StableForLargeInputs) {
  Tensor x = Tensor::from_vector<float>({1000.f, 1001.f, 1002.f, -1000.f}, {1, 4});
  std::vector<double> p = softmax(x, 1).to_vector<double>();
  std::vector<double> lp = log_softmax(x, 1).to_vector<double>();
  const double z = 1 + std::exp(-1.0) + std::exp(-2.0);
  expect_near_vectors(p, {std::exp(-2.0) / z, std::exp(-1.0) / z, 1 / z, 0.0}, 1e-6);
  expect_near_vectors(lp, {-2 - std::log(z), -1 - std::log(z), -std::log(z), -2002 - std::log(z)},
                      1e-3);
}

TEST(Softmax, Gradients) {
  Generator gen(5);
  for (Shape shape : {Shape{3, 4, 5}, Shape{4, 6}}) {
    for (int64_t dim : {0, 1, -1}) {
      for (bool log : {false, true}) {
        SCOPED_TRACE(::testing::Message() << "shape " << shape_str(shape) << " dim " << dim
                                          << (log ? " log_softmax" : " softmax"));
        testing::expect_gradients_match(
            [=](const std::vector<Tensor>& in) {
              return log ? log_softmax(in[0], dim) : softmax(in[0], dim);
            },
            {randn(shape, gen)});
      }
    }
  }
}

TEST(Softmax, BadDim) {
  EXPECT_THAT(
      [] {
        softmax(Tensor::zeros({2, 3}), 2);
      },
      ThrowsMessage<Error>(HasSubstr("softmax: dim 2 out of range")));
  EXPECT_THAT(
      [] {
        log_softmax(Tensor::zeros({2, 3}), -3);
      },
      ThrowsMessage<Error>(HasSubstr("log_softmax: dim -3 out of range")));
}

// logits[i] = 3 cos(0.71 i), shape [3, 5], targets {2, 0, 4}: the input of the golden values.
Tensor golden_logits() {
  std::vector<double> v(15);
  for (int i = 0; i < 15; ++i) v[i] = 3 * std::cos(0.71 * i);
  return Tensor::from_vector(v, {3, 5});
}

TEST(CrossEntropy, MatchesPyTorchGolden) {
  // torch.nn.functional.cross_entropy(logits, target, label_smoothing=ls) in f64.
  Tensor target = Tensor::from_vector<int64_t>({2, 0, 4}, {3});
  const std::pair<double, double> cases[] = {
      {0.0, 4.70568784846233}, {0.1, 4.55391008868737}, {0.3, 4.25035456913745}};
  for (auto [ls, expected] : cases) {
    EXPECT_NEAR(cross_entropy(golden_logits(), target, ls).item<double>(), expected, 1e-12);
    EXPECT_NEAR(cross_entropy(golden_logits().to(DType::kF32), target, ls).item<double>(), expected,
                1e-5);
  }
}

TEST(CrossEntropy, IsMeanNllOfLogSoftmax) {
  Generator gen(8);
  Tensor logits = randn({6, 9}, gen, DType::kF64);
  Tensor target = Tensor::from_vector<int64_t>({0, 8, 3, 3, 5, 1}, {6});
  std::vector<double> lp = reference_softmax(logits, 1, true);
  std::vector<int64_t> t = target.to_vector<int64_t>();
  double nll = 0;
  for (int n = 0; n < 6; ++n) nll -= lp[n * 9 + t[n]];
  EXPECT_NEAR(cross_entropy(logits, target).item<double>(), nll / 6, 1e-12);
}

TEST(CrossEntropy, Gradients) {
  Generator gen(9);
  Tensor target = Tensor::from_vector<int64_t>({1, 0, 4, 4}, {4});
  for (double ls : {0.0, 0.2}) {
    SCOPED_TRACE(::testing::Message() << "label_smoothing " << ls);
    testing::expect_gradients_match(
        [&](const std::vector<Tensor>& in) { return cross_entropy(in[0], target, ls); },
        {randn({4, 5}, gen)});
  }
}

TEST(CrossEntropy, GradientIsSoftmaxMinusSmoothedOneHotOverN) {
  Tensor logits = golden_logits();
  logits.set_requires_grad(true);
  Tensor target = Tensor::from_vector<int64_t>({2, 0, 4}, {3});
  cross_entropy(logits, target, 0.1).backward();
  std::vector<double> p = reference_softmax(golden_logits(), 1, false);
  std::vector<double> g = logits.grad().to_vector<double>();
  const int64_t t[3] = {2, 0, 4};
  for (int n = 0; n < 3; ++n)
    for (int c = 0; c < 5; ++c) {
      double smoothed = 0.1 / 5 + (c == t[n] ? 0.9 : 0.0);
      EXPECT_NEAR(g[n * 5 + c], (p[n * 5 + c] - smoothed) / 3, 1e-12);
    }
}

TEST(CrossEntropy, BadTargets) {
  Tensor logits = Tensor::zeros({3, 5});
  EXPECT_THAT(
      [&] {
        cross_entropy(logits, Tensor::from_vector<int64_t>({1, 5, 0}, {3}));
      },
      ThrowsMessage<Error>(HasSubstr("target 5 at batch index 1 is out of range for 5")));
  EXPECT_THAT(
      [&] {
        cross_entropy(logits, Tensor::from_vector<int64_t>({-1, 0, 0}, {3}));
      },
      ThrowsMessage<Error>(HasSubstr("target -1 at batch index 0")));
  EXPECT_THAT(
      [&] {
        cross_entropy(logits, Tensor::from_vector<float>({1, 2, 0}, {3}));
      },
      ThrowsMessage<Error>(HasSubstr("target has dtype f32 (expected i64")));
  EXPECT_THAT(
      [&] {
        cross_entropy(logits, Tensor::from_vector<int32_t>({1, 2, 0}, {3}));
      },
      ThrowsMessage<Error>(HasSubstr("target has dtype i32")));
  EXPECT_THAT(
      [&] {
        cross_entropy(logits, Tensor::from_vector<int64_t>({1, 2, 0}, {3, 1}));
      },
      ThrowsMessage<Error>(
          HasSubstr("target of shape [3, 1] does not match logits of shape [3, 5]")));
  EXPECT_THAT(
      [&] {
        cross_entropy(logits, Tensor::from_vector<int64_t>({1, 2}, {2}));
      },
      ThrowsMessage<Error>(HasSubstr("target of shape [2]")));
  EXPECT_THAT(
      [&] {
        cross_entropy(Tensor::zeros({3, 5, 1}), Tensor::zeros({3}, DType::kI64));
      },
      ThrowsMessage<Error>(HasSubstr("logits of shape [3, 5, 1] must be [N, C]")));
  EXPECT_THAT([&] { cross_entropy(logits, Tensor::zeros({3}, DType::kI64), 1.5); },
              ThrowsMessage<Error>(HasSubstr("label_smoothing 1.5 is outside [0, 1]")));
}

}  // namespace
}  // namespace ompq
