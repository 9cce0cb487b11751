// Elementwise ops: forward against naive broadcasting loops and std:: math, layouts, PyTorch's
// conventions at kinks and special values, finite-difference gradients, and bad inputs.
#include "core/functional/elementwise.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "core/autograd.h"
#include "core/functional/reduce.h"
#include "core/ops/elementwise.h"
#include "core/random.h"
#include "tests/gradcheck.h"

namespace ompq {
namespace {

using testing::expect_gradients_match;
using ::testing::HasSubstr;

// Value of a row-major tensor of `shape` at flat position `flat` of the broadcast shape `out`.
double broadcast_at(const std::vector<double>& values, const Shape& shape, const Shape& out,
                    int64_t flat) {
  int64_t index = 0, stride = 1;
  for (int64_t d = static_cast<int64_t>(out.size()) - 1; d >= 0; --d) {
    const int64_t i = flat % out[d];
    flat /= out[d];
    const int64_t sd = d - static_cast<int64_t>(out.size() - shape.size());
    if (sd < 0) continue;
    if (shape[sd] != 1) index += i * stride;
    stride *= shape[sd];
  }
  return values[index];
}

// Expects out == f(a, b) elementwise with NumPy broadcasting, computed naively in double.
void expect_binary_matches(const Tensor& out, const Tensor& a, const Tensor& b,
                           const std::function<double(double, double)>& f, double tol) {
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), "test");
  ASSERT_EQ(out.shape(), shape);
  std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
  std::vector<double> ov = out.to_vector<double>();
  for (int64_t i = 0; i < shape_numel(shape); ++i) {
    const double want =
        f(broadcast_at(av, a.shape(), shape, i), broadcast_at(bv, b.shape(), shape, i));
    ASSERT_NEAR(ov[i], want, tol * (1 + std::abs(want))) << "element " << i;
  }
}

Tensor randn_f(const Shape& shape, uint64_t seed, DType dtype = DType::kF32) {
  Generator gen(seed);
  return randn(shape, gen, dtype);
}

// Random values in [lo, hi).
Tensor uniform(const Shape& shape, double lo, double hi, uint64_t seed, DType dtype = DType::kF64) {
  Generator gen(seed);
  Tensor t = Tensor::empty(shape, dtype);
  ops::uniform_(t, lo, hi, gen);
  return t;
}

// Random multiples of 0.5 offset by 0.25 (never 0): coarse enough that comparisons see ties.
Tensor coarse(const Shape& shape, uint64_t seed, DType dtype) {
  std::vector<double> v = randn_f(shape, seed, DType::kF64).to_vector<double>();
  for (double& x : v) x = std::round(2 * x) / 2 + 0.25;
  return Tensor::from_vector(v, shape).to(dtype);
}

// The message of the Error that fn throws, or "" when it throws nothing.
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

struct BinaryCase {
  const char* name;
  Tensor (*op)(const Tensor&, const Tensor&);
  double (*ref)(double, double);
};

const BinaryCase kBinaryCases[] = {
    {"add", ops::add, [](double x, double y) { return x + y; }},
    {"sub", ops::sub, [](double x, double y) { return x - y; }},
    {"mul", ops::mul, [](double x, double y) { return x * y; }},
    {"div", ops::div, [](double x, double y) { return x / y; }},
    {"maximum", ops::maximum, [](double x, double y) { return std::max(x, y); }},
    {"minimum", ops::minimum, [](double x, double y) { return std::min(x, y); }},
    {"gt", ops::gt, [](double x, double y) { return x > y ? 1.0 : 0.0; }},
    {"lt", ops::lt, [](double x, double y) { return x < y ? 1.0 : 0.0; }},
    {"ge", ops::ge, [](double x, double y) { return x >= y ? 1.0 : 0.0; }},
    {"le", ops::le, [](double x, double y) { return x <= y ? 1.0 : 0.0; }},
    {"eq", ops::eq, [](double x, double y) { return x == y ? 1.0 : 0.0; }},
};

TEST(Elementwise, BinaryOpsBroadcastLikeNaiveLoops) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{2, 3, 4}, {2, 3, 4}}, {{2, 3, 4}, {3, 1}}, {{2, 3, 4}, {4}}, {{3, 1}, {2, 3, 4}},
      {{2, 1, 4}, {1, 3, 1}}, {{2, 3, 4}, {}},     {{}, {5}},        {{1}, {1}},
      {{4, 1, 5}, {4, 6, 5}}, {{7, 1}, {1, 9}},    {{0, 3}, {3}},
  };
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const auto& [sa, sb] : shapes) {
      Tensor a = coarse(sa, 1, dtype), b = coarse(sb, 2, dtype);
      for (const BinaryCase& c : kBinaryCases) {
        SCOPED_TRACE(
            absl::StrCat(c.name, " ", shape_str(sa), " ", shape_str(sb), " ", dtype_name(dtype)));
        const double tol = dtype == DType::kF32 ? 1e-6 : 1e-14;
        expect_binary_matches(c.op(a, b), a, b, c.ref, tol);
      }
    }
  }
}

TEST(Elementwise, ComparisonsSeeTiesAndOrder) {
  Tensor a = Tensor::from_vector<float>({1, 2, 3, 4}, {4});
  Tensor b = Tensor::from_vector<float>({2, 2, 2, 2}, {4});
  EXPECT_EQ(ops::gt(a, b).to_vector<float>(), (std::vector<float>{0, 0, 1, 1}));
  EXPECT_EQ(ops::ge(a, b).to_vector<float>(), (std::vector<float>{0, 1, 1, 1}));
  EXPECT_EQ(ops::lt(a, b).to_vector<float>(), (std::vector<float>{1, 0, 0, 0}));
  EXPECT_EQ(ops::le(a, b).to_vector<float>(), (std::vector<float>{1, 1, 0, 0}));
  EXPECT_EQ(ops::eq(a, b).to_vector<float>(), (std::vector<float>{0, 1, 0, 0}));
  EXPECT_EQ(ops::eq(a, b).dtype(), DType::kF32);
}

TEST(Elementwise, StridedAndBroadcastInputsOfLargeTensors) {
  // Big enough to be split across threads; transposed, sliced and broadcast operands.
  Tensor base = randn_f({64, 96, 40}, 3);
  Tensor a = base.transpose(0, 2);                           // [40, 96, 64], not contiguous
  Tensor b = randn_f({40, 96, 128}, 4).slice(2, 0, 128, 2);  // [40, 96, 64], stride 2 inner
  Tensor bias = randn_f({96, 1}, 5);
  expect_binary_matches(
      ops::mul(a, b), a, b, [](double x, double y) { return x * y; }, 1e-6);
  expect_binary_matches(
      ops::add(a, bias), a, bias, [](double x, double y) { return x + y; }, 1e-6);
  expect_binary_matches(
      ops::sub(bias, a), bias, a, [](double x, double y) { return x - y; }, 1e-6);
  Tensor flat = randn_f({100003}, 6), flat2 = randn_f({100003}, 7);
  expect_binary_matches(
      ops::div(flat, flat2), flat, flat2, [](double x, double y) { return x / y; }, 1e-6);
}

TEST(Elementwise, DenseNonContiguousLayoutIsKept) {
  // A channels-last activation [N, C, H, W] with NHWC memory: outputs keep that layout.
  Tensor nhwc = randn_f({2, 5, 4, 3}, 8).permute({0, 3, 1, 2});
  Tensor bias = randn_f({3, 1, 1}, 9);
  Tensor r = ops::relu(nhwc);
  EXPECT_EQ(r.strides(), nhwc.strides());
  Tensor s = ops::add(nhwc, bias);
  EXPECT_EQ(s.strides(), nhwc.strides());
  expect_binary_matches(
      s, nhwc, bias, [](double x, double y) { return x + y; }, 1e-6);
  std::vector<float> x = nhwc.to_vector<float>(), rv = r.to_vector<float>();
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(rv[i], std::max(x[i], 0.0f));
  // A sliced (non-dense) input gives a contiguous output.
  Tensor sliced = randn_f({6, 8}, 10).slice(1, 0, 8, 2);
  EXPECT_TRUE(ops::exp(sliced).is_contiguous());
}

TEST(Elementwise, UnaryOpsMatchStdMath) {
  Tensor x64 = uniform({3, 17, 33}, -4, 4, 11);
  Tensor pos64 = uniform({3, 17, 33}, 0.01, 5, 12);
  struct Case {
    const char* name;
    std::function<Tensor(const Tensor&)> op;
    std::function<double(double)> ref;
    bool positive;
  };
  const std::vector<Case> cases = {
      {"neg", ops::neg, [](double v) { return -v; }, false},
      {"abs", ops::abs, [](double v) { return std::fabs(v); }, false},
      {"relu", ops::relu, [](double v) { return v < 0 ? 0.0 : v; }, false},
      {"relu6", ops::relu6, [](double v) { return std::min(std::max(v, 0.0), 6.0); }, false},
      {"clamp", [](const Tensor& t) { return ops::clamp(t, -1.5, 0.25); },
       [](double v) { return std::min(std::max(v, -1.5), 0.25); }, false},
      {"sqrt", ops::sqrt, [](double v) { return std::sqrt(v); }, true},
      {"exp", ops::exp, [](double v) { return std::exp(v); }, false},
      {"log", ops::log, [](double v) { return std::log(v); }, true},
      {"square", ops::square, [](double v) { return v * v; }, false},
      {"pow", [](const Tensor& t) { return ops::pow(t, 1.7); },
       [](double v) { return std::pow(v, 1.7); }, true},
      {"pow_int", [](const Tensor& t) { return ops::pow(t, 3.0); },
       [](double v) { return v * v * v; }, false},
      {"add_s", [](const Tensor& t) { return ops::add(t, 2.5); }, [](double v) { return v + 2.5; },
       false},
      {"sub_s", [](const Tensor& t) { return ops::sub(t, 2.5); }, [](double v) { return v - 2.5; },
       false},
      {"mul_s", [](const Tensor& t) { return ops::mul(t, -3.0); },
       [](double v) { return v * -3.0; }, false},
      {"div_s", [](const Tensor& t) { return ops::div(t, 4.0); }, [](double v) { return v / 4.0; },
       false},
      {"rsub_s", [](const Tensor& t) { return ops::rsub(t, 1.0); },
       [](double v) { return 1.0 - v; }, false},
      {"rdiv_s", [](const Tensor& t) { return ops::rdiv(t, 2.0); },
       [](double v) { return 2.0 / v; }, true},
  };
  for (DType dtype : {DType::kF32, DType::kF64}) {
    const double tol = dtype == DType::kF32 ? 2e-6 : 1e-14;
    for (const Case& c : cases) {
      SCOPED_TRACE(absl::StrCat(c.name, " ", dtype_name(dtype)));
      Tensor x = (c.positive ? pos64 : x64).to(dtype);
      Tensor out = c.op(x);
      ASSERT_EQ(out.dtype(), dtype);
      ASSERT_EQ(out.shape(), x.shape());
      std::vector<double> xv = x.to_vector<double>(), ov = out.to_vector<double>();
      for (size_t i = 0; i < xv.size(); ++i) {
        const double want = c.ref(xv[i]);
        ASSERT_NEAR(ov[i], want, tol * (1 + std::abs(want))) << "x = " << xv[i];
      }
    }
  }
}

TEST(Elementwise, SpecialValuesFollowPyTorch) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  Tensor x = Tensor::from_vector<float>({nan, -inf, inf, -0.0f, 3.0f}, {5});
  std::vector<float> r = ops::relu(x).to_vector<float>();
  EXPECT_TRUE(std::isnan(r[0]));  // torch.relu(nan) = nan
  EXPECT_EQ(r[1], 0.0f);
  EXPECT_EQ(r[2], inf);
  std::vector<float> c = ops::clamp(x, -1, 1).to_vector<float>();
  EXPECT_TRUE(std::isnan(c[0]));
  EXPECT_EQ(c[1], -1.0f);
  EXPECT_EQ(c[2], 1.0f);
  // lo > hi: torch.clamp gives hi.
  EXPECT_EQ(ops::clamp(x, 2, 1).to_vector<float>()[4], 1.0f);
  Tensor y = Tensor::from_vector<float>({1, 1, nan, 2, 2}, {5});
  std::vector<float> mx = ops::maximum(x, y).to_vector<float>();
  std::vector<float> mn = ops::minimum(x, y).to_vector<float>();
  EXPECT_TRUE(std::isnan(mx[0]) && std::isnan(mx[2]) && std::isnan(mn[0]) && std::isnan(mn[2]));
  EXPECT_EQ(mx[1], 1.0f);
  EXPECT_EQ(mn[1], -inf);
  EXPECT_EQ(ops::abs(x).to_vector<float>()[3], 0.0f);
  EXPECT_FALSE(std::signbit(ops::abs(x).to_vector<float>()[3]));
  EXPECT_TRUE(std::isnan(ops::log(Tensor::from_vector<float>({-1}, {1})).item<float>()));
  EXPECT_EQ(ops::div(Tensor::from_vector<float>({1}, {1}), Tensor::from_vector<float>({0}, {1}))
                .item<float>(),
            inf);
}

TEST(Elementwise, OperatorsAndScalarsOnEitherSide) {
  Tensor x = Tensor::from_vector<double>({1, 2, 4}, {3});
  Tensor y = Tensor::from_vector<double>({2, 2, 2}, {3});
  EXPECT_EQ((x + y).to_vector<double>(), (std::vector<double>{3, 4, 6}));
  EXPECT_EQ((x - y).to_vector<double>(), (std::vector<double>{-1, 0, 2}));
  EXPECT_EQ((x * y).to_vector<double>(), (std::vector<double>{2, 4, 8}));
  EXPECT_EQ((x / y).to_vector<double>(), (std::vector<double>{0.5, 1, 2}));
  EXPECT_EQ((-x).to_vector<double>(), (std::vector<double>{-1, -2, -4}));
  EXPECT_EQ((x + 1.0).to_vector<double>(), (std::vector<double>{2, 3, 5}));
  EXPECT_EQ((1.0 + x).to_vector<double>(), (std::vector<double>{2, 3, 5}));
  EXPECT_EQ((x - 1.0).to_vector<double>(), (std::vector<double>{0, 1, 3}));
  EXPECT_EQ((1.0 - x).to_vector<double>(), (std::vector<double>{0, -1, -3}));
  EXPECT_EQ((x * 3.0).to_vector<double>(), (std::vector<double>{3, 6, 12}));
  EXPECT_EQ((3.0 * x).to_vector<double>(), (std::vector<double>{3, 6, 12}));
  EXPECT_EQ((x / 2.0).to_vector<double>(), (std::vector<double>{0.5, 1, 2}));
  EXPECT_EQ((4.0 / x).to_vector<double>(), (std::vector<double>{4, 2, 1}));
}

TEST(Elementwise, WhereBroadcastsAndAcceptsMaskDtypes) {
  Tensor cond_u8 = Tensor::from_vector<uint8_t>({1, 0, 3}, {3, 1});
  Tensor cond_f = Tensor::from_vector<float>({0.5f, 0.0f, -2.0f}, {3, 1});
  Tensor x = Tensor::from_vector<float>({1, 2, 3, 4}, {4});
  Tensor y = Tensor::scalar(-1.0);
  const std::vector<float> want = {1, 2, 3, 4, -1, -1, -1, -1, 1, 2, 3, 4};
  EXPECT_EQ(ops::where(cond_u8, x, y).shape(), (Shape{3, 4}));
  EXPECT_EQ(ops::where(cond_u8, x, y).to_vector<float>(), want);
  EXPECT_EQ(ops::where(cond_f, x, y).to_vector<float>(), want);
  Tensor cond_d = Tensor::from_vector<double>({1, 0}, {2});
  Tensor xd = Tensor::from_vector<double>({5, 6}, {2});
  EXPECT_EQ(ops::where(cond_d, xd, ops::neg(xd)).to_vector<double>(), (std::vector<double>{5, -6}));
}

TEST(Elementwise, ResultOnlyRequiresGradWhenAnInputDoes) {
  Tensor a = randn_f({3}, 1), b = randn_f({3}, 2);
  EXPECT_FALSE(add(a, b).requires_grad());
  b.set_requires_grad(true);
  EXPECT_TRUE(add(a, b).requires_grad());
  EXPECT_FALSE(gt(a, b).requires_grad());
  {
    NoGradGuard no_grad;
    EXPECT_FALSE(mul(a, b).requires_grad());
  }
  // A gradient reaches only the input that asked for it.
  mul(a, b).backward(Tensor::ones({3}));
  EXPECT_EQ(b.grad().to_vector<float>(), a.to_vector<float>());
  EXPECT_FALSE(a.grad().defined());
}

// ---- gradients
// -----------------------------------------------------------------------------------

using testing::TensorFn;

void check_binary_grad(Tensor (*op)(const Tensor&, const Tensor&), const Shape& sa, const Shape& sb,
                       double lo = -2, double hi = 2) {
  SCOPED_TRACE(absl::StrCat(shape_str(sa), " with ", shape_str(sb)));
  expect_gradients_match([op](const std::vector<Tensor>& in) { return op(in[0], in[1]); },
                         {uniform(sa, lo, hi, 21), uniform(sb, lo, hi, 22)});
}

const std::vector<std::pair<Shape, Shape>> kGradShapes = {{{2, 3, 4}, {3, 1}},
                                                          {{3, 1}, {2, 3, 4}},
                                                          {{2, 3, 4}, {2, 3, 4}},
                                                          {{2, 1, 4}, {3, 1}},
                                                          {{4}, {}}};

TEST(ElementwiseGrad, AddSubMulBroadcast) {
  for (const auto& [sa, sb] : kGradShapes) {
    check_binary_grad(add, sa, sb);
    check_binary_grad(sub, sa, sb);
    check_binary_grad(mul, sa, sb);
  }
}

TEST(ElementwiseGrad, DivBroadcast) {
  for (const auto& [sa, sb] : kGradShapes) check_binary_grad(div, sa, sb, 0.5, 2.0);
}

TEST(ElementwiseGrad, MaximumMinimumWithoutTies) {
  for (const auto& [sa, sb] : kGradShapes) {
    check_binary_grad(maximum, sa, sb);
    check_binary_grad(minimum, sa, sb);
  }
}

TEST(ElementwiseGrad, ScalarOverloadsAndOperators) {
  const std::vector<TensorFn> fns = {
      [](const std::vector<Tensor>& in) { return add(in[0], 1.5); },
      [](const std::vector<Tensor>& in) { return sub(in[0], 1.5); },
      [](const std::vector<Tensor>& in) { return mul(in[0], -2.5); },
      [](const std::vector<Tensor>& in) { return div(in[0], 3.0); },
      [](const std::vector<Tensor>& in) { return 2.0 - in[0]; },
      [](const std::vector<Tensor>& in) { return 2.0 / in[0]; },
      [](const std::vector<Tensor>& in) { return 3.0 * in[0] + in[0] * in[0] - in[0] / 2.0; },
      [](const std::vector<Tensor>& in) { return -in[0]; },
  };
  for (size_t i = 0; i < fns.size(); ++i) {
    SCOPED_TRACE(i);
    expect_gradients_match(fns[i], {uniform({2, 5}, 0.5, 2, 30 + i)});
  }
}

TEST(ElementwiseGrad, UnaryOpsAwayFromKinks) {
  // Values kept at least 0.05 from every kink (0, 6, clamp bounds) so finite differences are valid.
  Tensor mixed =
      Tensor::from_vector<double>({-3, -1.2, -0.3, 0.2, 0.9, 2.5, 5.5, 6.5, 7.1, -0.05}, {2, 5});
  Tensor positive = uniform({2, 5}, 0.2, 3, 40);
  struct Case {
    const char* name;
    TensorFn fn;
    bool positive;
  };
  const std::vector<Case> cases = {
      {"neg", [](const std::vector<Tensor>& in) { return neg(in[0]); }, false},
      {"abs", [](const std::vector<Tensor>& in) { return abs(in[0]); }, false},
      {"relu", [](const std::vector<Tensor>& in) { return relu(in[0]); }, false},
      {"relu6", [](const std::vector<Tensor>& in) { return relu6(in[0]); }, false},
      {"clamp", [](const std::vector<Tensor>& in) { return clamp(in[0], -1, 1); }, false},
      {"sqrt", [](const std::vector<Tensor>& in) { return sqrt(in[0]); }, true},
      {"exp", [](const std::vector<Tensor>& in) { return exp(in[0]); }, false},
      {"log", [](const std::vector<Tensor>& in) { return log(in[0]); }, true},
      {"square", [](const std::vector<Tensor>& in) { return square(in[0]); }, false},
      {"pow", [](const std::vector<Tensor>& in) { return pow(in[0], 2.5); }, true},
      {"pow_neg", [](const std::vector<Tensor>& in) { return pow(in[0], -1.5); }, true},
      {"pow_int", [](const std::vector<Tensor>& in) { return pow(in[0], 3.0); }, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    expect_gradients_match(c.fn, {c.positive ? positive : mixed});
  }
}

TEST(ElementwiseGrad, WhereRoutesGradientsToTheChosenSide) {
  Tensor cond = Tensor::from_vector<uint8_t>({1, 0, 1}, {3, 1});
  expect_gradients_match(
      [cond](const std::vector<Tensor>& in) { return where(cond, in[0], in[1]); },
      {uniform({3, 4}, -1, 1, 50), uniform({4}, -1, 1, 51)});
  expect_gradients_match(
      [](const std::vector<Tensor>& in) { return where(gt(in[0], in[1]), in[0], in[1]); },
      {uniform({2, 3}, -1, 1, 52), uniform({2, 3}, -1, 1, 53)});
}

// Gradient of sum(f(x)) w.r.t. x.
std::vector<double> grad_of_sum(const std::function<Tensor(const Tensor&)>& f,
                                std::vector<double> xs) {
  Tensor x = Tensor::from_vector<double>(xs, {static_cast<int64_t>(xs.size())});
  x.set_requires_grad(true);
  sum(f(x)).backward();
  return x.grad().to_vector<double>();
}

TEST(ElementwiseGrad, KinksFollowPyTorch) {
  // torch: relu'(0) = 0; hardtanh (relu6) passes nothing at 0 and 6; clamp passes at its bounds;
  // abs'(0) = 0; maximum/minimum split ties 0.5/0.5.
  EXPECT_EQ(grad_of_sum([](const Tensor& x) { return relu(x); }, {-1, 0, 1}),
            (std::vector<double>{0, 0, 1}));
  EXPECT_EQ(grad_of_sum([](const Tensor& x) { return relu6(x); }, {-1, 0, 3, 6, 7}),
            (std::vector<double>{0, 0, 1, 0, 0}));
  EXPECT_EQ(grad_of_sum([](const Tensor& x) { return clamp(x, -1, 1); }, {-2, -1, 0, 1, 2}),
            (std::vector<double>{0, 1, 1, 1, 0}));
  EXPECT_EQ(grad_of_sum([](const Tensor& x) { return abs(x); }, {-2, 0, 2}),
            (std::vector<double>{-1, 0, 1}));
  EXPECT_EQ(grad_of_sum([](const Tensor& x) { return pow(x, 0.0); }, {-2, 0, 2}),
            (std::vector<double>{0, 0, 0}));
  Tensor other = Tensor::from_vector<double>({1, 1, 1}, {3});
  EXPECT_EQ(grad_of_sum([&](const Tensor& x) { return maximum(x, other); }, {0, 1, 2}),
            (std::vector<double>{0, 0.5, 1}));
  EXPECT_EQ(grad_of_sum([&](const Tensor& x) { return minimum(other, x); }, {0, 1, 2}),
            (std::vector<double>{1, 0.5, 0}));
}

// ---- bad inputs
// ----------------------------------------------------------------------------------

TEST(ElementwiseErrors, IncompatibleBroadcastNamesOpAndShapes) {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4});
  const std::string message = error_of([&] { ops::add(a, b); });
  EXPECT_THAT(message, HasSubstr("add: shapes [2, 3] and [4] cannot be broadcast together"));
  EXPECT_THROW(mul(a, b), Error);
  EXPECT_THAT(error_of([&] { maximum(a, b); }), HasSubstr("maximum"));
  EXPECT_THAT(error_of([&] { where(Tensor::zeros({5}, DType::kU8), a, a); }),
              HasSubstr("where: shapes [5] and [2, 3] cannot be broadcast"));
}

TEST(ElementwiseErrors, DtypeMismatchAndUnsupportedDtypes) {
  Tensor f = Tensor::zeros({2}), d = Tensor::zeros({2}, DType::kF64),
         i = Tensor::zeros({2}, DType::kI64);
  EXPECT_THAT(error_of([&] { sub(f, d); }),
              HasSubstr("sub: dtype mismatch (f32 with shape [2] and f64 with shape [2])"));
  EXPECT_THAT(error_of([&] { relu(i); }), HasSubstr("relu: unsupported dtype i64"));
  EXPECT_THAT(error_of([&] { ops::where(Tensor::zeros({2}, DType::kI32), f, f); }),
              HasSubstr("where: condition of dtype i32"));
  EXPECT_THAT(error_of([&] { ops::where(f, f, d); }), HasSubstr("where: dtype mismatch"));
}

}  // namespace
}  // namespace ompq
