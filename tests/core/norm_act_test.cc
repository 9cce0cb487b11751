// Batch norm fused with a residual add and an activation (batch_norm_act): against the composed
// ops (batch_norm, add, relu / relu6) in both layouts, training and eval, f32 and f64 (outputs,
// running statistics and the gradients of x, weight, bias and residual); f64 finite-difference
// gradients for each activation with and without a residual, in train and eval mode and
// channels_last; the activation math at its kinks; thread-count independence; bad inputs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/functional/elementwise.h"
#include "core/functional/norm.h"
#include "core/ops/conv.h"
#include "core/ops/norm.h"
#include "core/ops/norm_math.h"
#include "core/parallel.h"
#include "core/random.h"
#include "tests/gradcheck.h"

namespace ompq {
namespace {

using ::testing::HasSubstr;

constexpr NormActivation kActivations[] = {NormActivation::kIdentity, NormActivation::kRelu,
                                           NormActivation::kRelu6};

const char* activation_name(NormActivation a) {
  switch (a) {
    case NormActivation::kRelu:
      return "relu";
    case NormActivation::kRelu6:
      return "relu6";
    case NormActivation::kIdentity:
      break;
  }
  return "identity";
}

// The same values in channels_last memory (autograd-aware: gradients flow back to t).
Tensor to_channels_last(const Tensor& t) {
  return t.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
}

// activation(batch_norm(...) + residual) from the separate ops.
Tensor composed(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& rm,
                const Tensor& rv, bool training, NormActivation activation,
                const Tensor& residual) {
  Tensor y = batch_norm(x, w, b, rm, rv, training, 0.3, 1e-5);
  if (residual.defined()) y = add(y, residual);
  switch (activation) {
    case NormActivation::kRelu:
      return relu(y);
    case NormActivation::kRelu6:
      return relu6(y);
    case NormActivation::kIdentity:
      break;
  }
  return y;
}

void expect_near_tensors(const Tensor& actual, const Tensor& expected, double tol,
                         const char* what) {
  ASSERT_EQ(actual.defined(), expected.defined()) << what;
  if (!actual.defined()) return;
  ASSERT_EQ(actual.shape(), expected.shape()) << what;
  std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_NEAR(a[i], e[i], tol * (1 + std::fabs(e[i]))) << what << " at " << i;
  }
}

// Leaves that require grad, copies of the given values.
Tensor leaf(const Tensor& t) {
  Tensor l = t.detach().clone();
  l.set_requires_grad(true);
  return l;
}

// BN outputs spread well past 0 and 6 (weight ~ 3, bias ~ 2), so that both activations clip.
struct Case {
  Tensor x, w, b, rm, rv, residual, dy;
};

Case random_case(const Shape& shape, DType dtype, bool channels_last, bool with_residual,
                 Generator& gen) {
  const int64_t c = shape[1];
  Case k;
  k.x = randn(shape, gen, dtype);
  k.w = randn({c}, gen, dtype) * 3.0;
  k.b = randn({c}, gen, dtype) + 2.0;
  k.rm = randn({c}, gen, dtype) * 0.1;
  k.rv = rand({c}, gen, dtype) + 0.5;
  if (with_residual) k.residual = randn(shape, gen, dtype) * 2.0;
  k.dy = randn(shape, gen, dtype);
  if (channels_last) {
    k.x = to_channels_last(k.x);
    if (with_residual) k.residual = to_channels_last(k.residual);
  }
  return k;
}

TEST(BatchNormAct, MatchesComposedOpsForwardAndBackward) {
  Generator gen(41);
  struct Layout {
    Shape shape;
    bool channels_last;
  };
  // Planar, [N, C] and channels_last, with channel counts on and off the vector width.
  const Layout layouts[] = {
      {{4, 6, 5, 7}, false}, {{16, 5}, false}, {{3, 20, 6, 5}, true}, {{2, 24, 9, 9}, true}};
  for (DType dtype : {DType::kF64, DType::kF32}) {
    const double tol = dtype == DType::kF64 ? 1e-12 : 1e-5;
    for (const Layout& layout : layouts) {
      for (bool training : {true, false}) {
        for (NormActivation activation : kActivations) {
          for (bool with_residual : {false, true}) {
            SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + shape_str(layout.shape) +
                         (layout.channels_last ? " channels_last " : " ") +
                         (training ? "train " : "eval ") + activation_name(activation) +
                         (with_residual ? " + residual" : ""));
            const Case k =
                random_case(layout.shape, dtype, layout.channels_last, with_residual, gen);
            Tensor x1 = leaf(k.x), w1 = leaf(k.w), b1 = leaf(k.b), rm1 = k.rm.clone(),
                   rv1 = k.rv.clone();
            Tensor x2 = leaf(k.x), w2 = leaf(k.w), b2 = leaf(k.b), rm2 = k.rm.clone(),
                   rv2 = k.rv.clone();
            Tensor r1 = with_residual ? leaf(k.residual) : Tensor();
            Tensor r2 = with_residual ? leaf(k.residual) : Tensor();
            auto in_layout = [&](const Tensor& t) {
              return layout.channels_last ? to_channels_last(t) : t;
            };
            Tensor fused =
                batch_norm_act(in_layout(x1), w1, b1, rm1, rv1, training, activation, r1, 0.3);
            Tensor reference = composed(in_layout(x2), w2, b2, rm2, rv2, training, activation, r2);
            EXPECT_EQ(is_channels_last(fused), layout.channels_last);
            expect_near_tensors(fused, reference, tol, "output");
            expect_near_tensors(rm1, rm2, tol, "running_mean");
            expect_near_tensors(rv1, rv2, tol, "running_var");
            fused.backward(k.dy);
            reference.backward(k.dy);
            expect_near_tensors(x1.grad(), x2.grad(), tol, "grad x");
            expect_near_tensors(w1.grad(), w2.grad(), tol, "grad weight");
            expect_near_tensors(b1.grad(), b2.grad(), tol, "grad bias");
            if (with_residual) expect_near_tensors(r1.grad(), r2.grad(), tol, "grad residual");
          }
        }
      }
    }
  }
}

TEST(BatchNormAct, ActivationsClipInTheTestedRange) {
  // The cases above exercise both kinks: with weight ~ 3 and bias ~ 2 the outputs fall below 0
  // and above 6.
  Generator gen(41);
  const Case k = random_case({4, 6, 5, 7}, DType::kF64, false, true, gen);
  const std::vector<double> y =
      batch_norm_act(k.x, k.w, k.b, Tensor(), Tensor(), true, NormActivation::kIdentity, k.residual)
          .to_vector<double>();
  EXPECT_GT(std::count_if(y.begin(), y.end(), [](double v) { return v < 0; }), 10);
  EXPECT_GT(std::count_if(y.begin(), y.end(), [](double v) { return v > 6; }), 10);
}

TEST(BatchNormAct, GradientsForEachActivationResidualAndMode) {
  Generator gen(42);
  for (NormActivation activation : kActivations) {
    for (bool with_residual : {false, true}) {
      for (bool training : {true, false}) {
        for (bool channels_last : {false, true}) {
          SCOPED_TRACE(std::string(activation_name(activation)) +
                       (with_residual ? " + residual " : " ") + (training ? "train" : "eval") +
                       (channels_last ? " channels_last" : ""));
          const Case k = random_case({3, 4, 3, 3}, DType::kF64, false, with_residual, gen);
          auto fn = [&](const std::vector<Tensor>& in) {
            const Tensor x = channels_last ? to_channels_last(in[0]) : in[0];
            const Tensor r = with_residual ? in[3] : Tensor();
            return batch_norm_act(x, in[1], in[2], training ? Tensor() : k.rm,
                                  training ? Tensor() : k.rv, training, activation, r);
          };
          std::vector<Tensor> inputs = {k.x, k.w, k.b};
          if (with_residual) inputs.push_back(k.residual);
          testing::expect_gradients_match(fn, inputs);
        }
      }
    }
  }
}

TEST(BatchNormAct, ActivationMathAtTheKinks) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(norm_activation<NormActivation::kRelu>(-2.0), 0.0);
  EXPECT_EQ(norm_activation<NormActivation::kRelu>(3.5), 3.5);
  EXPECT_TRUE(std::isnan(norm_activation<NormActivation::kRelu>(nan)));
  EXPECT_EQ(norm_activation<NormActivation::kRelu6>(-2.0), 0.0);
  EXPECT_EQ(norm_activation<NormActivation::kRelu6>(7.0), 6.0);
  EXPECT_EQ(norm_activation<NormActivation::kRelu6>(5.5f), 5.5f);
  EXPECT_TRUE(std::isnan(norm_activation<NormActivation::kRelu6>(nan)));
  EXPECT_EQ(norm_activation<NormActivation::kIdentity>(-2.0), -2.0);
  // Gradients from the output, as PyTorch: relu'(0) = 0; hardtanh passes nothing at 0 and 6.
  EXPECT_EQ(norm_activation_grad<NormActivation::kRelu>(2.0, 0.0), 0.0);
  EXPECT_EQ(norm_activation_grad<NormActivation::kRelu>(2.0, 1e-30), 2.0);
  EXPECT_EQ(norm_activation_grad<NormActivation::kRelu>(2.0, nan), 0.0);
  EXPECT_EQ(norm_activation_grad<NormActivation::kRelu6>(2.0, 0.0), 0.0);
  EXPECT_EQ(norm_activation_grad<NormActivation::kRelu6>(2.0, 6.0), 0.0);
  EXPECT_EQ(norm_activation_grad<NormActivation::kRelu6>(2.0, 5.9), 2.0);
  EXPECT_EQ(norm_activation_grad<NormActivation::kIdentity>(2.0, -1.0), 2.0);
  for (NormActivation a : kActivations) {
    EXPECT_EQ(with_norm_activation(a, [](auto act) { return decltype(act)::value; }), a);
  }
}

TEST(BatchNormAct, SameBitsForAnyThreadCount) {
  for (bool channels_last : {false, true}) {
    Generator gen(43);
    const Case k = random_case({8, 24, 32, 32}, DType::kF32, channels_last, true, gen);
    auto run = [&](int threads) {
      set_num_threads(threads);
      Tensor x = leaf(k.x), w = leaf(k.w), r = leaf(k.residual);
      Tensor y = batch_norm_act(channels_last ? to_channels_last(x) : x, w, k.b, Tensor(), Tensor(),
                                /*training=*/true, NormActivation::kRelu, r);
      y.backward(k.dy);
      return std::vector<std::vector<float>>{y.to_vector<float>(), x.grad().to_vector<float>(),
                                             w.grad().to_vector<float>(),
                                             r.grad().to_vector<float>()};
    };
    const int threads = num_threads();
    auto one = run(1);
    auto three = run(3);
    set_num_threads(threads);
    EXPECT_TRUE(one == three) << (channels_last ? "channels_last" : "nchw");
  }
}

TEST(BatchNormAct, OnlyTheResidualNeedsAGradient) {
  Generator gen(44);
  const Case k = random_case({2, 3, 4, 4}, DType::kF64, false, true, gen);
  Tensor r = leaf(k.residual);
  Tensor y = batch_norm_act(k.x, k.w, k.b, Tensor(), Tensor(), true, NormActivation::kRelu, r);
  y.backward(k.dy);
  // relu passes dy where the output is positive.
  const std::vector<double> yv = y.to_vector<double>(), dy = k.dy.to_vector<double>();
  std::vector<double> expected(yv.size());
  for (size_t i = 0; i < yv.size(); ++i) expected[i] = yv[i] > 0 ? dy[i] : 0.0;
  EXPECT_EQ(r.grad().to_vector<double>(), expected);
}

TEST(BatchNormAct, BadInputs) {
  const Tensor x = Tensor::zeros({2, 3, 4, 5});
  EXPECT_THAT(
      [&] {
        batch_norm_act(x, Tensor(), Tensor(), Tensor(), Tensor(), true, NormActivation::kRelu,
                       Tensor::zeros({2, 3, 4, 4}));
      },
      ::testing::ThrowsMessage<Error>(
          HasSubstr("batch_norm_act: residual of shape [2, 3, 4, 4] does not match input of shape "
                    "[2, 3, 4, 5]")));
  EXPECT_THAT(
      [&] {
        batch_norm_act(x, Tensor(), Tensor(), Tensor(), Tensor(), true, NormActivation::kRelu,
                       Tensor::zeros({2, 3, 4, 5}, DType::kF64));
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("dtype mismatch")));
  // Errors name the fused op even when only the activation is fused.
  EXPECT_THAT(
      [] {
        batch_norm_act(Tensor::zeros({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true,
                       NormActivation::kRelu6);
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("batch_norm_act: expected more than 1 value")));
  const Tensor stats = Tensor::ones({3});
  EXPECT_THAT(
      [&] {
        ops::batch_norm_act_backward(x, x, Tensor(), Tensor(), stats, stats, 1e-5, true,
                                     NormActivation::kRelu, {true, false, false, false});
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("batch_norm_act_backward: the forward output")));
  EXPECT_THAT(
      [&] {
        ops::batch_norm_act_backward(x, x, Tensor::zeros({2, 3, 4, 4}), Tensor(), stats, stats,
                                     1e-5, true, NormActivation::kRelu, {true, false, false, true});
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("output of shape [2, 3, 4, 4]")));
}

}  // namespace
}  // namespace ompq
