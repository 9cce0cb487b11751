// bf16/f16 activations on the CPU: the elementwise ops, pooling and batch norm (forward, with its
// fused residual add and ReLU/ReLU6) read and write bf16/f16 and compute in f32. Each is checked
// against the f32 op on the same values (the low-precision input widened to f32, which is exact):
// max pooling and the elementwise ops, whose f32 result is rounded once, must equal that result
// rounded to the low dtype bit for bit; sums (average pooling, batch norm) must lie within one
// rounding of it (bf16 2^-8, f16 2^-11 of the result's scale, with slack for a different summing
// order). Then the inputs are compared with the f32 op on the unrounded values, within the
// tolerance of the input's rounding. Both NCHW and channels_last; the output keeps the layout.
// Autocast with AutocastActivations::kLowPrecision: conv2d returns the autocast dtype only where it
// records no gradient, so a conv -> batch norm -> ReLU -> pool -> conv chain stays bf16 in
// inference, and training stays f32.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/autocast.h"
#include "core/autograd.h"
#include "core/functional/conv.h"
#include "core/functional/elementwise.h"
#include "core/functional/linalg.h"
#include "core/functional/norm.h"
#include "core/functional/pool.h"
#include "core/ops/conv.h"
#include "core/ops/elementwise.h"
#include "core/ops/norm.h"
#include "core/ops/pool.h"
#include "core/random.h"
#include "tests/core/golden_inputs.h"

namespace ompq {
namespace {

using testing::expect_all_close;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

const DType kLowDtypes[] = {DType::kBF16, DType::kF16};

// One rounding of a result of magnitude <= its scale, with slack for the summing order.
double rounding_tolerance(DType dtype) { return dtype == DType::kBF16 ? 8e-3 : 1e-3; }
// The f32 op on unrounded inputs against the low-precision one: the inputs' rounding as well.
double input_tolerance(DType dtype) { return dtype == DType::kBF16 ? 3e-2 : 4e-3; }

Tensor to_channels_last(const Tensor& t) {
  return t.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
}

// Random f32 values of `shape`, in channels_last memory when asked.
Tensor random_input(const Shape& shape, bool channels_last, Generator& gen, double scale = 2.0) {
  Tensor t = ops::mul(randn(shape, gen), scale);
  return channels_last ? to_channels_last(t) : t;
}

// t in `dtype`, in t's memory order.
Tensor in_dtype(const Tensor& t, DType dtype) {
  return is_channels_last(t) ? to_channels_last(t.to(dtype)) : t.to(dtype);
}

void expect_bits_equal(const Tensor& actual, const Tensor& expected) {
  ASSERT_EQ(actual.dtype(), expected.dtype());
  ASSERT_EQ(actual.shape(), expected.shape());
  const std::vector<double> a = actual.to(DType::kF64).to_vector<double>();
  const std::vector<double> e = expected.to(DType::kF64).to_vector<double>();
  int failures = 0;
  for (size_t i = 0; i < a.size() && failures < 5; ++i) {
    if (a[i] != e[i] && !(a[i] != a[i] && e[i] != e[i])) {
      ADD_FAILURE() << "element " << i << ": " << a[i] << " != " << e[i];
      ++failures;
    }
  }
}

// `op` on the low-precision input against the f32 op on the same values (rounded once: equal
// bits, or within one rounding when `exact` is false) and on the unrounded values.
void check_against_f32(const std::vector<Tensor>& inputs32, DType dtype, bool exact,
                       const std::function<Tensor(const std::vector<Tensor>&)>& op) {
  std::vector<Tensor> low, widened;
  for (const Tensor& t : inputs32) {
    low.push_back(in_dtype(t, dtype));
    widened.push_back(in_dtype(low.back(), DType::kF32));
  }
  const Tensor out = op(low);
  const Tensor reference = op(widened);
  ASSERT_EQ(out.dtype(), dtype);
  EXPECT_EQ(is_channels_last(out), is_channels_last(reference));
  if (exact) {
    expect_bits_equal(out, reference.to(dtype));
  } else {
    expect_all_close(out.to(DType::kF64), reference.to(DType::kF64), rounding_tolerance(dtype));
  }
  expect_all_close(out.to(DType::kF64), op(inputs32).to(DType::kF64), input_tolerance(dtype));
}

TEST(LowPrecisionElementwise, RoundsTheF32ResultOnce) {
  Generator gen(1);
  for (DType dtype : kLowDtypes) {
    for (bool channels_last : {false, true}) {
      SCOPED_TRACE(absl::StrCat(dtype_name(dtype), channels_last ? " channels_last" : " nchw"));
      const Tensor a = random_input({2, 5, 6, 7}, channels_last, gen, 4.0);
      const Tensor b = random_input({2, 5, 6, 7}, channels_last, gen);
      const Tensor bias = randn({5, 1, 1}, gen);
      const Tensor a_greater = ops::gt(a, b);  // an f32 condition
      using Inputs = const std::vector<Tensor>&;
      check_against_f32({a}, dtype, true, [](Inputs in) { return relu(in[0]); });
      check_against_f32({a}, dtype, true, [](Inputs in) { return relu6(in[0]); });
      check_against_f32({a, b}, dtype, true, [](Inputs in) { return add(in[0], in[1]); });
      check_against_f32({a, bias}, dtype, true, [](Inputs in) { return mul(in[0], in[1]); });
      check_against_f32({a}, dtype, true, [](Inputs in) { return sqrt(abs(in[0])); });
      check_against_f32({a, b}, dtype, true,
                        [&](Inputs in) { return ops::where(a_greater, in[0], in[1]); });
    }
  }
}

TEST(LowPrecisionElementwise, ReluGradientFlowsInTheLowDtype) {
  Generator gen(2);
  const Tensor x32 = randn({3, 4}, gen);
  const Tensor seed32 = randn({3, 4}, gen);
  for (DType dtype : kLowDtypes) {
    SCOPED_TRACE(dtype_name(dtype));
    Tensor x = x32.to(dtype).set_requires_grad(true);
    add(relu(x), x).backward(seed32.to(dtype));
    ASSERT_TRUE(x.grad().defined());
    EXPECT_EQ(x.grad().dtype(), dtype);
    // d/dx (relu(x) + x) = (x > 0) + 1, times the seed.
    const Tensor x_wide = x32.to(dtype).to(DType::kF32), seed = seed32.to(dtype).to(DType::kF32);
    const Tensor expected =
        ops::mul(seed, ops::add(ops::gt(x_wide, Tensor::zeros({3, 4})), 1.0)).to(dtype);
    expect_bits_equal(x.grad(), expected);
  }
}

TEST(LowPrecisionElementwise, RejectsOtherDtypesNamingTheAcceptedOnes) {
  EXPECT_THAT([] { relu(Tensor::zeros({2}, DType::kI32)); },
              ThrowsMessage<Error>(HasSubstr(
                  "relu: unsupported dtype i32 for a tensor of shape [2] on cpu (expected f32 or "
                  "f64, or bf16/f16 on the CPU)")));
}

const Pool2dParams kStem{{3, 3}, {2, 2}, {1, 1}};
const Pool2dParams kUneven{{3, 2}, {2, 3}, {1, 1}};

TEST(LowPrecisionPool, MaxPoolPicksTheSameElements) {
  Generator gen(3);
  for (DType dtype : kLowDtypes) {
    for (bool channels_last : {false, true}) {
      for (const Pool2dParams& p : {kStem, kUneven}) {
        SCOPED_TRACE(absl::StrCat(dtype_name(dtype), channels_last ? " channels_last" : " nchw"));
        const Tensor x = random_input({2, 6, 9, 11}, channels_last, gen);
        using Inputs = const std::vector<Tensor>&;
        check_against_f32({x}, dtype, true, [&](Inputs in) { return max_pool2d(in[0], p); });
        const Tensor low = in_dtype(x, dtype);
        EXPECT_EQ(ops::max_pool2d(low, p).indices.to_vector<int64_t>(),
                  ops::max_pool2d(in_dtype(low, DType::kF32), p).indices.to_vector<int64_t>());
      }
    }
  }
}

TEST(LowPrecisionPool, AverageAndAdaptiveAverageSumInF32) {
  Generator gen(4);
  for (DType dtype : kLowDtypes) {
    for (bool channels_last : {false, true}) {
      SCOPED_TRACE(absl::StrCat(dtype_name(dtype), channels_last ? " channels_last" : " nchw"));
      // 7x7 -> 1x1 is the models' global pool (49 values per sum); 9x11 -> 4x3 has unequal bins.
      const Tensor x = random_input({2, 24, 7, 7}, channels_last, gen);
      const Tensor y = random_input({2, 6, 9, 11}, channels_last, gen);
      using Inputs = const std::vector<Tensor>&;
      check_against_f32({x}, dtype, false, [](Inputs in) {
        return adaptive_avg_pool2d(in[0], {1, 1});
      });
      check_against_f32({y}, dtype, false, [](Inputs in) {
        return adaptive_avg_pool2d(in[0], {4, 3});
      });
      check_against_f32({y}, dtype, false, [](Inputs in) { return avg_pool2d(in[0], kUneven); });
    }
  }
}

struct BatchNormInputs {
  Tensor x, residual, weight, bias, running_mean, running_var;
};

// x's values and the running mean lie around `mean` (far from zero against the spread tests that
// the mean is subtracted before scaling).
BatchNormInputs batch_norm_inputs(const Shape& shape, bool channels_last, Generator& gen,
                                  double mean = 3.0) {
  const int64_t channels = shape[1];
  BatchNormInputs in;
  in.x = ops::add(random_input(shape, channels_last, gen), mean);
  in.residual = random_input(shape, channels_last, gen);
  in.weight = randn({channels}, gen);
  in.bias = randn({channels}, gen);
  in.running_mean = ops::add(randn({channels}, gen), mean);
  in.running_var = ops::add(ops::abs(randn({channels}, gen)), 0.5);
  return in;
}

TEST(LowPrecisionBatchNorm, EvalWithResidualAndActivationsIsTheF32Normalization) {
  Generator gen(5);
  for (DType dtype : kLowDtypes) {
    for (bool channels_last : {false, true}) {
      for (NormActivation act :
           {NormActivation::kIdentity, NormActivation::kRelu, NormActivation::kRelu6}) {
        for (bool with_residual : {false, true}) {
          SCOPED_TRACE(absl::StrCat(dtype_name(dtype), channels_last ? " channels_last" : " nchw",
                                    " activation ", static_cast<int>(act),
                                    with_residual ? " residual" : ""));
          const BatchNormInputs b = batch_norm_inputs({3, 8, 5, 6}, channels_last, gen);
          std::vector<Tensor> inputs = {b.x};
          if (with_residual) inputs.push_back(b.residual);
          check_against_f32(inputs, dtype, false, [&](const std::vector<Tensor>& in) {
            return batch_norm_act(in[0], b.weight, b.bias, b.running_mean, b.running_var,
                                  /*training=*/false, act, with_residual ? in[1] : Tensor());
          });
        }
      }
    }
  }
}

TEST(LowPrecisionBatchNorm, TrainingForwardUpdatesTheF32RunningStatistics) {
  Generator gen(6);
  for (DType dtype : kLowDtypes) {
    for (bool channels_last : {false, true}) {
      SCOPED_TRACE(absl::StrCat(dtype_name(dtype), channels_last ? " channels_last" : " nchw"));
      const BatchNormInputs b = batch_norm_inputs({4, 6, 5, 5}, channels_last, gen);
      const Tensor x_low = in_dtype(b.x, dtype);
      Tensor mean_low = b.running_mean.clone(), var_low = b.running_var.clone();
      Tensor mean32 = b.running_mean.clone(), var32 = b.running_var.clone();
      const ops::BatchNormResult low =
          ops::batch_norm(x_low, b.weight, b.bias, mean_low, var_low, true, 0.1, 1e-5);
      const ops::BatchNormResult full = ops::batch_norm(in_dtype(x_low, DType::kF32), b.weight,
                                                        b.bias, mean32, var32, true, 0.1, 1e-5);
      EXPECT_EQ(low.output.dtype(), dtype);
      EXPECT_EQ(low.mean.dtype(), DType::kF32);
      expect_all_close(low.output.to(DType::kF64), full.output.to(DType::kF64),
                       rounding_tolerance(dtype));
      // The statistics come from the same values, summed in f32 and double alike.
      expect_all_close(low.mean, full.mean, 1e-6);
      expect_all_close(low.var, full.var, 1e-6);
      expect_all_close(mean_low, mean32, 1e-6);
      expect_all_close(var_low, var32, 1e-6);
    }
  }
}

TEST(LowPrecisionBatchNorm, RejectsLowPrecisionChannelVectorsAndBackward) {
  Generator gen(7);
  const BatchNormInputs b = batch_norm_inputs({2, 3, 4, 4}, false, gen);
  const Tensor x = b.x.to(DType::kBF16);
  EXPECT_THAT(
      [&] {
        ops::batch_norm(x, b.weight.to(DType::kBF16), b.bias, b.running_mean, b.running_var, false,
                        0.1, 1e-5);
      },
      ThrowsMessage<Error>(
          HasSubstr("batch_norm: weight of dtype bf16 for an input of dtype bf16 (expected f32)")));
  EXPECT_THAT(
      [&] {
        ops::batch_norm(b.x, b.weight, b.bias, b.running_mean.to(DType::kF64), b.running_var, false,
                        0.1, 1e-5);
      },
      ThrowsMessage<Error>(HasSubstr(
          "batch_norm: running_mean of dtype f64 for an input of dtype f32 (expected f32)")));
  EXPECT_THAT(
      [&] {
        ops::batch_norm_backward(x, x, b.weight, b.running_mean, b.running_var, 1e-5, false,
                                 {true, false, false});
      },
      ThrowsMessage<Error>(HasSubstr("batch_norm_backward: input of dtype bf16 and shape "
                                     "[2, 3, 4, 4] (expected f32 or f64: bf16/f16 batch norm is "
                                     "forward only, for inference)")));
}

// A stem-like chain: conv -> batch norm + ReLU -> max pool -> conv + batch norm with the residual
// -> global average pool -> linear.
struct Chain {
  Tensor w1, w2, fc, fc_bias;
  BatchNormInputs bn1, bn2;
  std::vector<DType> dtypes;  // of each activation, in order

  Tensor forward(const Tensor& images) {
    dtypes.clear();
    const Conv2dParams same{{1, 1}, {1, 1}, {1, 1}, 1};
    Tensor h = conv2d(images, w1, Tensor(), same);
    dtypes.push_back(h.dtype());
    h = batch_norm_act(h, bn1.weight, bn1.bias, bn1.running_mean, bn1.running_var, false,
                       NormActivation::kRelu);
    dtypes.push_back(h.dtype());
    h = max_pool2d(h, kStem);
    dtypes.push_back(h.dtype());
    Tensor out = conv2d(h, w2, Tensor(), same);
    dtypes.push_back(out.dtype());
    out = batch_norm_act(out, bn2.weight, bn2.bias, bn2.running_mean, bn2.running_var, false,
                         NormActivation::kRelu, h);
    dtypes.push_back(out.dtype());
    out = adaptive_avg_pool2d(out, {1, 1}).flatten(1);
    dtypes.push_back(out.dtype());
    return linear(out, fc, fc_bias);
  }
};

Chain make_chain(Generator& gen) {
  Chain c;
  c.w1 = ops::mul(randn({8, 3, 3, 3}, gen), 0.3);
  c.w2 = ops::mul(randn({8, 8, 3, 3}, gen), 0.15);
  c.fc = randn({4, 8}, gen);
  c.fc_bias = randn({4}, gen);
  // (Only the per-channel vectors are used; the convolutions' outputs lie around 0.)
  c.bn1 = batch_norm_inputs({1, 8, 1, 1}, false, gen, 0.0);
  c.bn2 = batch_norm_inputs({1, 8, 1, 1}, false, gen, 0.0);
  return c;
}

TEST(LowPrecisionAutocast, InferenceActivationsStayLowPrecisionFromInputToLogits) {
  Generator gen(8);
  Chain chain = make_chain(gen);
  const Tensor images = randn({2, 3, 12, 12}, gen);
  NoGradGuard no_grad;
  const Tensor full = chain.forward(images);
  for (DType dtype : kLowDtypes) {
    SCOPED_TRACE(dtype_name(dtype));
    Tensor logits;
    {
      AutocastGuard autocast(dtype, AutocastActivations::kLowPrecision);
      logits = chain.forward(to_channels_last(images));
    }
    EXPECT_EQ(chain.dtypes, std::vector<DType>(6, dtype));
    EXPECT_EQ(logits.dtype(), DType::kF32);
    expect_all_close(logits, full, dtype == DType::kBF16 ? 5e-2 : 1e-2);
  }
}

TEST(LowPrecisionAutocast, F32ActivationsByDefaultAndWhereGradientsAreRecorded) {
  Generator gen(9);
  Chain chain = make_chain(gen);
  const Tensor images = randn({2, 3, 12, 12}, gen);
  {
    NoGradGuard no_grad;
    AutocastGuard autocast(DType::kBF16);
    chain.forward(images);
    EXPECT_EQ(chain.dtypes, std::vector<DType>(6, DType::kF32));
  }
  // Training: the weights require gradients, so the convolutions return f32 and the chain
  // differentiates as before, with f32 gradients for the f32 master weights.
  chain.w1.set_requires_grad(true);
  chain.w2.set_requires_grad(true);
  Tensor logits;
  {
    AutocastGuard autocast(DType::kBF16, AutocastActivations::kLowPrecision);
    logits = chain.forward(images);
  }
  EXPECT_EQ(chain.dtypes, std::vector<DType>(6, DType::kF32));
  logits.backward(Tensor::ones(logits.shape()));
  ASSERT_TRUE(chain.w1.grad().defined());
  EXPECT_EQ(chain.w1.grad().dtype(), DType::kF32);
  EXPECT_EQ(chain.w2.grad().dtype(), DType::kF32);
}

TEST(LowPrecisionAutocast, GuardRestoresTheActivationsOfTheEnclosingRegion) {
  Generator gen(10);
  const Tensor x = randn({1, 2, 4, 4}, gen), w = randn({2, 2, 1, 1}, gen);
  NoGradGuard no_grad;
  AutocastGuard outer(DType::kBF16, AutocastActivations::kLowPrecision);
  {
    AutocastGuard inner(DType::kBF16);
    EXPECT_EQ(conv2d(x, w, Tensor(), {}).dtype(), DType::kF32);
  }
  EXPECT_EQ(conv2d(x, w, Tensor(), {}).dtype(), DType::kBF16);
  // A bias is rounded to the output's dtype with it.
  EXPECT_EQ(conv2d(x, w, randn({2}, gen), {}).dtype(), DType::kBF16);
}

}  // namespace
}  // namespace ompq
