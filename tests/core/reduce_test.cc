// Reductions: forward against naive loops over every dim subset and memory layout (including the
// per-channel NCHW and channels-last cases batch norm needs), accuracy and determinism, PyTorch's
// semantics for NaN, ties, empty and 0-dim inputs, finite-difference gradients, bad dims.
#include "core/functional/reduce.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <numeric>

#include "core/autograd.h"
#include "core/ops/reduce.h"
#include "core/parallel.h"
#include "core/random.h"
#include "tests/gradcheck.h"

namespace ompq {
namespace {

using testing::expect_gradients_match;
using ::testing::HasSubstr;

Tensor randn_t(const Shape& shape, uint64_t seed, DType dtype = DType::kF32) {
  Generator gen(seed);
  return randn(shape, gen, dtype);
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

enum class Kind { kSum, kMean, kVarUnbiased, kVarBiased, kMax, kMin };

// Naive reduction of x over `dims` (all when empty) in double: every Kind's result, each in
// keepdim row-major order.
std::map<Kind, std::vector<double>> naive_reduce(const Tensor& x,
                                                 const std::vector<int64_t>& dims) {
  const Shape& shape = x.shape();
  const int64_t nd = x.dim();
  std::vector<bool> reduced(nd, dims.empty());
  for (int64_t d : dims) reduced[d < 0 ? d + nd : d] = true;
  Shape out_shape = shape;
  for (int64_t d = 0; d < nd; ++d) {
    if (reduced[d]) out_shape[d] = 1;
  }
  const std::vector<double> v = x.to_vector<double>();
  std::vector<int64_t> group(x.numel());  // the output each element belongs to
  for (int64_t flat = 0; flat < x.numel(); ++flat) {
    int64_t rem = flat, out_index = 0, out_stride = 1;
    for (int64_t d = nd - 1; d >= 0; --d) {
      const int64_t i = rem % shape[d];
      rem /= shape[d];
      if (!reduced[d]) out_index += i * out_stride;
      out_stride *= out_shape[d];
    }
    group[flat] = out_index;
  }
  const size_t n_out = shape_numel(out_shape);
  const double n = static_cast<double>(x.numel()) / n_out;
  std::vector<double> sum(n_out, 0.0), ss(n_out, 0.0);
  std::vector<double> mx(n_out, -INFINITY), mn(n_out, INFINITY);
  for (size_t i = 0; i < v.size(); ++i) {
    sum[group[i]] += v[i];
    mx[group[i]] = std::max(mx[group[i]], v[i]);
    mn[group[i]] = std::min(mn[group[i]], v[i]);
  }
  for (size_t i = 0; i < v.size(); ++i) {
    const double c = v[i] - sum[group[i]] / n;
    ss[group[i]] += c * c;
  }
  std::map<Kind, std::vector<double>> out;
  for (size_t o = 0; o < n_out; ++o) {
    out[Kind::kSum].push_back(sum[o]);
    out[Kind::kMean].push_back(sum[o] / n);
    out[Kind::kVarUnbiased].push_back(ss[o] / (n - 1));
    out[Kind::kVarBiased].push_back(ss[o] / n);
    out[Kind::kMax].push_back(mx[o]);
    out[Kind::kMin].push_back(mn[o]);
  }
  return out;
}

Tensor run(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, Kind kind) {
  switch (kind) {
    case Kind::kSum:
      return ops::sum(x, dims, keepdim);
    case Kind::kMean:
      return ops::mean(x, dims, keepdim);
    case Kind::kVarUnbiased:
      return ops::var(x, dims, true, keepdim);
    case Kind::kVarBiased:
      return ops::var(x, dims, false, keepdim);
    case Kind::kMax:
      return ops::amax(x, dims, keepdim);
    case Kind::kMin:
      return ops::amin(x, dims, keepdim);
  }
  return Tensor();
}

const Kind kKinds[] = {Kind::kSum,       Kind::kMean, Kind::kVarUnbiased,
                       Kind::kVarBiased, Kind::kMax,  Kind::kMin};

void expect_reduction_matches(const Tensor& x, const std::vector<int64_t>& dims, double tol) {
  const std::map<Kind, std::vector<double>> reference = naive_reduce(x, dims);
  for (Kind kind : kKinds) {
    for (bool keepdim : {true, false}) {
      SCOPED_TRACE(absl::StrCat("kind ", static_cast<int>(kind), " dims ", shape_str(dims),
                                " keepdim ", keepdim, " x ", shape_str(x.shape())));
      Tensor out = run(x, dims, keepdim, kind);
      Shape want_shape;
      for (int64_t d = 0; d < x.dim(); ++d) {
        bool r = dims.empty();
        for (int64_t e : dims) r = r || (e < 0 ? e + x.dim() : e) == d;
        if (!r)
          want_shape.push_back(x.size(d));
        else if (keepdim)
          want_shape.push_back(1);
      }
      ASSERT_EQ(out.shape(), want_shape);
      ASSERT_EQ(out.dtype(), x.dtype());
      std::vector<double> got = out.to_vector<double>();
      const std::vector<double>& want = reference.at(kind);
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], tol * (1 + std::abs(want[i]))) << "output " << i;
      }
    }
  }
}

TEST(Reduce, EveryDimSubsetOfA4dTensor) {
  for (DType dtype : {DType::kF32, DType::kF64}) {
    Tensor x = randn_t({2, 3, 4, 5}, 1, dtype);
    const double tol = dtype == DType::kF32 ? 2e-6 : 1e-12;
    for (int mask = 0; mask < 16; ++mask) {
      std::vector<int64_t> dims;
      for (int d = 0; d < 4; ++d) {
        if (mask & (1 << d)) dims.push_back(d);
      }
      expect_reduction_matches(x, dims, tol);
    }
    expect_reduction_matches(x, {-1, -3}, tol);
  }
}

TEST(Reduce, NonContiguousInputs) {
  Tensor base = randn_t({6, 5, 8}, 2, DType::kF64);
  expect_reduction_matches(base.permute({2, 0, 1}), {0}, 1e-12);
  expect_reduction_matches(base.permute({2, 0, 1}), {1, 2}, 1e-12);
  expect_reduction_matches(base.slice(2, 1, 8, 3), {2}, 1e-12);
  expect_reduction_matches(base.slice(0, 0, 6, 2).transpose(1, 2), {0, 1}, 1e-12);
  expect_reduction_matches(randn_t({5, 1}, 3, DType::kF64).expand({5, 7}), {1}, 1e-12);
  expect_reduction_matches(randn_t({1, 7}, 3, DType::kF64).expand({5, 7}), {0}, 1e-12);
}

TEST(Reduce, LargeShapesOfEveryLoopKind) {
  // Inner rows, outer columns, the per-channel sums of NCHW and of channels-last (batch norm),
  // everything at once, and few outputs over many elements (split across threads).
  const double tol = 1e-5;
  expect_reduction_matches(randn_t({40, 2000}, 4), {1}, tol);
  expect_reduction_matches(randn_t({2000, 40}, 5), {0}, tol);
  expect_reduction_matches(randn_t({300, 260}, 6), {0}, tol);  // two blocks of adjacent outputs
  expect_reduction_matches(randn_t({8, 3, 31, 29}, 7), {0, 2, 3}, tol);
  expect_reduction_matches(randn_t({8, 3, 80, 80}, 15), {0, 2, 3}, tol);
  expect_reduction_matches(randn_t({4, 3, 10, 20}, 16).slice(3, 0, 20, 2), {0, 2, 3}, tol);
  expect_reduction_matches(randn_t({4, 31, 29, 24}, 8).permute({0, 3, 1, 2}), {0, 2, 3}, tol);
  expect_reduction_matches(randn_t({100003}, 9), {}, tol);
  expect_reduction_matches(randn_t({3, 12000, 3}, 10), {1}, tol);
  expect_reduction_matches(randn_t({2, 40000}, 11), {1}, tol);
}

TEST(Reduce, F32SumAccumulatesInDouble) {
  // 2^20 copies of 0.1f: a float accumulator drifts by ~1e-2 relative; ours rounds once.
  const int64_t n = 1 << 20;
  Tensor x = Tensor::full({n}, 0.1);
  const double exact = static_cast<double>(0.1f) * n;
  EXPECT_EQ(ops::sum(x, {}, false).item<float>(), static_cast<float>(exact));
  EXPECT_EQ(ops::mean(x, {}, false).item<float>(), 0.1f);
  EXPECT_EQ(ops::sum(x.view({1024, 1024}), {0}, false).to_vector<float>()[17],
            static_cast<float>(static_cast<double>(0.1f) * 1024));
}

TEST(Reduce, RepeatedRunsAreBitIdentical) {
  Tensor x = randn_t({8, 3, 64, 64}, 12);
  for (std::vector<int64_t> dims : {std::vector<int64_t>{}, {0, 2, 3}, {1}, {3}}) {
    Tensor a = ops::sum(x, dims, false), b = ops::sum(x, dims, false);
    EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  }
}

TEST(Reduce, ResultDoesNotDependOnTheThreadCount) {
  // Within the double accumulator's rounding, a sum gives the same float whatever the chunking.
  Tensor x = randn_t({3, 4096, 7}, 13);
  const int threads = num_threads();
  set_num_threads(1);
  std::vector<float> one = ops::sum(x, {1}, false).to_vector<float>();
  set_num_threads(std::max(threads, 2));
  std::vector<float> many = ops::sum(x, {1}, false).to_vector<float>();
  set_num_threads(threads);
  EXPECT_EQ(one, many);
}

TEST(Reduce, NanPropagatesThroughMaxMinAndSum) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = Tensor::from_vector<float>({1, nan, 3, 4, 5, 6}, {2, 3});
  std::vector<float> mx = ops::amax(x, {1}, false).to_vector<float>();
  EXPECT_TRUE(std::isnan(mx[0]));
  EXPECT_EQ(mx[1], 6.0f);
  EXPECT_TRUE(std::isnan(ops::amin(x, {}, false).item<float>()));
  EXPECT_TRUE(std::isnan(ops::sum(x, {}, false).item<float>()));
  // NaN first, then larger values: still NaN.
  EXPECT_TRUE(
      std::isnan(ops::amax(Tensor::from_vector<float>({nan, 7, 9}, {3}), {}, false).item<float>()));
}

TEST(Reduce, EmptyAndZeroDimInputs) {
  Tensor empty = Tensor::zeros({0, 3});
  EXPECT_EQ(ops::sum(empty, {0}, false).to_vector<float>(), (std::vector<float>{0, 0, 0}));
  EXPECT_TRUE(std::isnan(ops::mean(empty, {0}, false).to_vector<float>()[0]));
  EXPECT_EQ(ops::sum(empty, {1}, false).shape(), (Shape{0}));
  Tensor s = Tensor::scalar(2.5);
  EXPECT_EQ(ops::sum(s, {}, false).item<float>(), 2.5f);
  EXPECT_EQ(ops::sum(s, {0}, true).shape(), Shape{});
  EXPECT_EQ(ops::amax(s, {}, false).item<float>(), 2.5f);
  EXPECT_EQ(ops::argmax(s, 0, false).item<int64_t>(), 0);
  // One element, unbiased: 0/0, as torch.var.
  EXPECT_TRUE(std::isnan(ops::var(Tensor::ones({1}), {}, true, false).item<float>()));
  EXPECT_EQ(ops::var(Tensor::ones({1}), {}, false, false).item<float>(), 0.0f);
}

TEST(Argmax, FirstMaximumAlongDim) {
  Tensor x = Tensor::from_vector<float>({1, 5, 5, 2,  //
                                         7, 0, 7, 7,  //
                                         -1, -2, -3, -0.5f},
                                        {3, 4});
  EXPECT_EQ(ops::argmax(x, 1, false).to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 3}));
  EXPECT_EQ(ops::argmax(x, -1, true).shape(), (Shape{3, 1}));
  EXPECT_EQ(ops::argmax(x, 0, false).to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 1, 1}));
  EXPECT_EQ(ops::argmax(x, 0, false).dtype(), DType::kI64);
  EXPECT_EQ(ops::argmax(x.t(), 0, false).to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 3}));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(
      ops::argmax(Tensor::from_vector<float>({1, nan, 9, nan}, {4}), 0, false).item<int64_t>(), 1);
}

TEST(Argmax, LargeTensorMatchesNaive) {
  Tensor x = randn_t({37, 1000}, 14, DType::kF64);
  std::vector<double> v = x.to_vector<double>();
  std::vector<int64_t> got = argmax(x, 1).to_vector<int64_t>();
  for (int64_t r = 0; r < 37; ++r) {
    auto row = v.begin() + r * 1000;
    EXPECT_EQ(got[r], std::max_element(row, row + 1000) - row);
  }
}

// ---- gradients
// -----------------------------------------------------------------------------------

using testing::TensorFn;

TEST(ReduceGrad, SumMeanVarOverDims) {
  const std::vector<std::vector<int64_t>> dim_sets = {{},     {0},    {1},      {-1},
                                                      {0, 2}, {1, 2}, {0, 1, 2}};
  for (const auto& dims : dim_sets) {
    for (bool keepdim : {false, true}) {
      SCOPED_TRACE(absl::StrCat(shape_str(dims), " keepdim ", keepdim));
      Tensor x = randn_t({2, 3, 4}, 20, DType::kF64);
      expect_gradients_match(
          [&](const std::vector<Tensor>& in) { return sum(in[0], dims, keepdim); }, {x});
      expect_gradients_match(
          [&](const std::vector<Tensor>& in) { return mean(in[0], dims, keepdim); }, {x});
      expect_gradients_match(
          [&](const std::vector<Tensor>& in) { return var(in[0], dims, true, keepdim); }, {x});
      expect_gradients_match(
          [&](const std::vector<Tensor>& in) { return var(in[0], dims, false, keepdim); }, {x});
    }
  }
}

TEST(ReduceGrad, AmaxAminWithoutTies) {
  for (const auto& dims : std::vector<std::vector<int64_t>>{{}, {0}, {2}, {0, 2}}) {
    for (bool keepdim : {false, true}) {
      SCOPED_TRACE(absl::StrCat(shape_str(dims), " keepdim ", keepdim));
      Tensor x = randn_t({2, 3, 4}, 21, DType::kF64);
      expect_gradients_match(
          [&](const std::vector<Tensor>& in) { return amax(in[0], dims, keepdim); }, {x});
      expect_gradients_match(
          [&](const std::vector<Tensor>& in) { return amin(in[0], dims, keepdim); }, {x});
    }
  }
}

TEST(ReduceGrad, AmaxSplitsTheGradientAmongTies) {
  // torch.amax: the gradient is divided evenly among the maxima.
  Tensor x = Tensor::from_vector<double>({3, 1, 3, 3, 2, 2}, {2, 3});
  x.set_requires_grad(true);
  amax(x, {1}).backward(Tensor::from_vector<double>({6, 10}, {2}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{3, 0, 3, 10, 0, 0}));
  Tensor y = Tensor::from_vector<double>({1, 1, 4, 1}, {4});
  y.set_requires_grad(true);
  amin(y).backward();
  EXPECT_EQ(y.grad().to_vector<double>(), (std::vector<double>{1.0 / 3, 1.0 / 3, 0, 1.0 / 3}));
}

TEST(ReduceGrad, ThroughNonContiguousInput) {
  expect_gradients_match(
      [](const std::vector<Tensor>& in) {
        return var(in[0].permute({2, 0, 1}), {0, 2}, true, true);
      },
      {randn_t({3, 4, 5}, 22, DType::kF64)});
}

TEST(ReduceGrad, ArgmaxHasNoGradient) {
  Tensor x = randn_t({3, 4}, 23);
  x.set_requires_grad(true);
  EXPECT_FALSE(argmax(x, 1).requires_grad());
}

// ---- bad inputs
// ----------------------------------------------------------------------------------

TEST(ReduceErrors, BadDimsNameTheOpAndShape) {
  Tensor x = Tensor::zeros({2, 3});
  EXPECT_THAT(error_of([&] { sum(x, {2}); }),
              HasSubstr("sum: dim 2 out of range for a tensor with 2 dims"));
  EXPECT_THAT(error_of([&] { mean(x, {-3}); }), HasSubstr("mean: dim -3 out of range"));
  EXPECT_THAT(error_of([&] {
                var(x, {1, -1});
              }),
              HasSubstr("var: dim -1 repeated in [1, -1] for a tensor of shape [2, 3]"));
  EXPECT_THAT(error_of([&] { argmax(x, 5); }), HasSubstr("argmax: dim 5 out of range"));
  EXPECT_THAT(error_of([&] {
                amax(Tensor::zeros({2, 0}), {1});
              }),
              HasSubstr("amax: cannot reduce over dim 1 of size 0 (shape [2, 0])"));
  EXPECT_THAT(error_of([&] {
                argmax(Tensor::zeros({2, 0}), 1);
              }),
              HasSubstr("argmax: dim 1 of shape [2, 0] is empty"));
}

TEST(ReduceErrors, UnsupportedDtype) {
  EXPECT_THAT(error_of([] { sum(Tensor::zeros({4}, DType::kI64)); }),
              HasSubstr("sum: unsupported dtype i64 for a tensor of shape [4]"));
  EXPECT_THAT(error_of([] { argmax(Tensor::zeros({4}, DType::kU8), 0); }),
              HasSubstr("argmax: unsupported dtype u8"));
}

}  // namespace
}  // namespace ompq
