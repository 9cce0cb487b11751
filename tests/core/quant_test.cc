// Quantization ops: fake quantization (per tensor and per channel on every axis, symmetric and
// affine, signed and unsigned) against hand-computed values and an independent loop; the
// straight-through gradients with exact expected values; codes, dequantization, requantization;
// bit packing (documented layout, round trips for every width and odd sizes); the integer
// convolution against a naive loop; and every bad input.
#include "core/functional/quant.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cfenv>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/autograd.h"
#include "core/functional/conv.h"
#include "core/ops/elementwise.h"
#include "core/ops/integer.h"
#include "core/ops/pack.h"
#include "core/ops/quant.h"
#include "core/ops/quant_math.h"
#include "core/random.h"

namespace ompq {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

Tensor scalar64(double v) { return Tensor::scalar(v, DType::kF64); }
Tensor vec64(const std::vector<double>& v) { return Tensor::from_vector(v, {(int64_t)v.size()}); }

// Independent reference: the textbook formula with nearbyint (the default mode rounds half to
// even) over explicit [outer, C, inner] indices.
std::vector<double> reference_fake_quant(const std::vector<double>& x, const Shape& shape,
                                         int64_t axis, const std::vector<double>& scale,
                                         const std::vector<double>& zero, int64_t qmin,
                                         int64_t qmax) {
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= shape[d];
  for (size_t d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
  const int64_t channels = shape[axis];
  std::vector<double> y(x.size());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < channels; ++c) {
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t idx = (o * channels + c) * inner + i;
        double q = std::nearbyint(x[idx] / scale[c]) + zero[c];
        q = std::min<double>(std::max<double>(q, qmin), qmax);
        y[idx] = (q - zero[c]) * scale[c];
      }
    }
  }
  return y;
}

TEST(QuantMath, CodeRanges) {
  EXPECT_EQ(quant_qmin(2, true), -2);
  EXPECT_EQ(quant_qmax(2, true), 1);
  EXPECT_EQ(quant_qmin(8, true), -128);
  EXPECT_EQ(quant_qmax(8, true), 127);
  EXPECT_EQ(quant_qmin(4, false), 0);
  EXPECT_EQ(quant_qmax(4, false), 15);
  EXPECT_EQ(quant_qmax(8, false), 255);
  EXPECT_EQ(code_dtype({-128, 127}), DType::kI8);
  EXPECT_EQ(code_dtype({0, 255}), DType::kU8);
  EXPECT_EQ(code_dtype({0, 65535}), DType::kI32);
}

TEST(FakeQuantize, PerTensorRoundsHalfToEvenAndClamps) {
  // scale 0.5, signed 4-bit [-8, 7]: x / s = 0.5, 1.5, 2.5, -0.5, -2.5 are ties.
  Tensor x = vec64({0.25, 0.75, 1.25, -0.25, -1.25, 0.3, 3.6, 100.0, -4.0, -4.3});
  Tensor y = ops::fake_quantize(x, scalar64(0.5), Tensor(), std::nullopt, {-8, 7});
  EXPECT_EQ(y.to_vector<double>(),
            (std::vector<double>{0.0, 1.0, 1.0, -0.0, -1.0, 0.5, 3.5, 3.5, -4.0, -4.0}));
  // f32 takes the same path.
  Tensor y32 =
      ops::fake_quantize(x.to(DType::kF32), Tensor::scalar(0.5), Tensor(), std::nullopt, {-8, 7});
  EXPECT_EQ(y32.to_vector<double>(), y.to_vector<double>());
}

TEST(FakeQuantize, AffineUnsignedWithZeroPoint) {
  // Unsigned 2-bit [0, 3] with zero point 1: representable values (q - 1) * 0.25 = -0.25 .. 0.5.
  Tensor x = vec64({-1.0, -0.25, 0.0, 0.1, 0.2, 0.4, 2.0});
  Tensor y = ops::fake_quantize(x, scalar64(0.25), scalar64(1.0), std::nullopt, {0, 3});
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{-0.25, -0.25, 0.0, 0.0, 0.25, 0.5, 0.5}));
}

TEST(FakeQuantize, PerChannelOnEveryAxisMatchesReferenceLoop) {
  Generator gen(5);
  const Shape shape = {3, 4, 5, 2};
  Tensor x = randn(shape, gen, DType::kF64);
  const std::vector<double> xv = x.to_vector<double>();
  for (int64_t axis = 0; axis < 4; ++axis) {
    for (bool affine : {false, true}) {
      const int64_t c = shape[axis];
      std::vector<double> scale(c), zero(c, 0.0);
      for (int64_t i = 0; i < c; ++i) {
        scale[i] = 0.05 + 0.1 * i;
        if (affine) zero[i] = static_cast<double>(i + 2);
      }
      const int64_t qmin = affine ? 0 : -4, qmax = affine ? 7 : 3;
      // The negative spelling of the axis selects the same dim.
      for (int64_t a : {axis, axis - 4}) {
        Tensor y =
            ops::fake_quantize(x, vec64(scale), affine ? vec64(zero) : Tensor(), a, {qmin, qmax});
        EXPECT_EQ(y.to_vector<double>(),
                  reference_fake_quant(xv, shape, axis, scale, zero, qmin, qmax))
            << "axis " << a << (affine ? " affine" : " symmetric");
      }
    }
  }
}

TEST(FakeQuantize, LongRowsSplitAcrossSegmentsAndNonContiguousInput) {
  Generator gen(8);
  Tensor x = randn({2, 20000}, gen, DType::kF64).t();  // [20000, 2], per-channel on dim 1
  Tensor scale = vec64({0.1, 0.3});
  Tensor y = ops::fake_quantize(x, scale, Tensor(), 1, {-128, 127});
  EXPECT_EQ(y.to_vector<double>(),
            reference_fake_quant(x.contiguous().to_vector<double>(), {20000, 2}, 1, {0.1, 0.3},
                                 {0.0, 0.0}, -128, 127));
}

TEST(FakeQuantize, StraightThroughGradientsExactValues) {
  // scale 0.5, signed 2-bit [-2, 1]:
  //   x = 0.3:  x/s = 0.6, code 1 (inside): dx = g, ds = 1 - 0.6 = 0.4
  //   x = -0.8: x/s = -1.6, code -2 (inside: the bound counts): ds = -2 + 1.6 = -0.4
  //   x = 2.0:  code 4 -> clamped to 1 (outside): dx = 0, ds = 1
  //   x = -3.0: code -6 -> clamped to -2: dx = 0, ds = -2
  Tensor x = vec64({0.3, -0.8, 2.0, -3.0}).set_requires_grad(true);
  Tensor scale = scalar64(0.5).set_requires_grad(true);
  Tensor y = fake_quantize(x, scale, Tensor(), std::nullopt, {-2, 1});
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{0.5, -1.0, 0.5, -1.0}));
  y.backward(vec64({1, 2, 3, 4}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1, 2, 0, 0}));
  // 1 * 0.4 + 2 * (-0.4) + 3 * 1 + 4 * (-2)
  EXPECT_NEAR(scale.grad().item<double>(), -5.4, 1e-12);
}

TEST(FakeQuantize, UnclippedStraightThroughPassesEverything) {
  Tensor x = vec64({0.3, -0.8, 2.0, -3.0}).set_requires_grad(true);
  Tensor y = fake_quantize(x, scalar64(0.5), Tensor(), std::nullopt, {-2, 1},
                           /*clip_gradient=*/false);
  y.backward(vec64({1, 2, 3, 4}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1, 2, 3, 4}));
}

TEST(FakeQuantize, AffineScaleGradientUsesClampedCodeMinusZeroPoint) {
  // Unsigned 2-bit [0, 3], zero point 1, scale 0.25:
  //   x = 0.1: x/s = 0.4, code 0 + 1 = 1 inside, ds = 0 - 0.4 = -0.4
  //   x = 2.0: code 8 + 1 -> 3 (outside), ds = 3 - 1 = 2
  //   x = -1.0: code -4 + 1 -> 0 (outside), ds = 0 - 1 = -1
  Tensor x = vec64({0.1, 2.0, -1.0}).set_requires_grad(true);
  Tensor scale = scalar64(0.25).set_requires_grad(true);
  Tensor zero = scalar64(1.0).set_requires_grad(true);  // never gets a gradient
  Tensor y = fake_quantize(x, scale, zero, std::nullopt, {0, 3});
  y.backward(vec64({1, 1, 1}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1, 0, 0}));
  EXPECT_NEAR(scale.grad().item<double>(), -0.4 + 2 - 1, 1e-12);
  EXPECT_FALSE(zero.grad().defined());
}

TEST(FakeQuantize, PerChannelScaleGradientSumsEachChannel) {
  Generator gen(11);
  const Shape shape = {2, 3, 4};  // channels on axis 1; values reach outside the range
  Tensor x = ops::mul(randn(shape, gen, DType::kF64), 3.0).set_requires_grad(true);
  const std::vector<double> scale_values = {0.2, 0.5, 0.9}, zero_values = {1, 0, 2};
  Tensor scale = vec64(scale_values).set_requires_grad(true);
  Tensor g = randn(shape, gen, DType::kF64);
  fake_quantize(x, scale, vec64(zero_values), 1, {0, 3}).backward(g);
  const std::vector<double> xv = x.to_vector<double>(), gv = g.to_vector<double>();
  std::vector<double> expected_scale(3, 0.0), expected_x(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) {
    const int64_t c = (i / 4) % 3;
    const double v = xv[i] / scale_values[c], r = std::nearbyint(v), q = r + zero_values[c];
    const bool inside = q >= 0 && q <= 3;
    const double clamped = std::min(std::max(q, 0.0), 3.0);
    expected_x[i] = inside ? gv[i] : 0.0;
    expected_scale[c] += gv[i] * (inside ? r - v : clamped - zero_values[c]);
  }
  EXPECT_EQ(x.grad().to_vector<double>(), expected_x);
  const std::vector<double> gs = scale.grad().to_vector<double>();
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(gs[c], expected_scale[c], 1e-12) << "channel " << c;
}

TEST(FakeQuantize, ScaleGradientDoesNotDependOnSegmentation) {
  // A per-tensor scale over 3 segments of 8192 elements: the fixed-order double sum equals a
  // plain double loop to rounding.
  Generator gen(12);
  Tensor x = randn({20000}, gen, DType::kF64);
  Tensor scale = scalar64(0.01).set_requires_grad(true);
  fake_quantize(x, scale, Tensor(), std::nullopt, {-128, 127})
      .backward(Tensor::ones({20000}, DType::kF64));
  double expected = 0;
  for (double v : x.to_vector<double>()) {
    const double r = std::nearbyint(v / 0.01);
    expected += (r >= -128 && r <= 127) ? r - v / 0.01 : std::min(std::max(r, -128.0), 127.0);
  }
  EXPECT_NEAR(scale.grad().item<double>(), expected, 1e-9);
}

TEST(FakeQuantize, FloatGradientsMatchDouble) {
  Generator gen(13);
  Tensor x64 = randn({4, 6}, gen, DType::kF64);
  Tensor g64 = randn({4, 6}, gen, DType::kF64);
  Tensor s64 = vec64({0.1, 0.2, 0.3, 0.4});
  ops::FakeQuantGradients a =
      ops::fake_quantize_backward(g64, x64, s64, Tensor(), 0, {-8, 7}, true, true, true);
  ops::FakeQuantGradients b =
      ops::fake_quantize_backward(g64.to(DType::kF32), x64.to(DType::kF32), s64.to(DType::kF32),
                                  Tensor(), 0, {-8, 7}, true, true, true);
  EXPECT_EQ(a.input.to_vector<float>(), b.input.to_vector<float>());
  const std::vector<double> sa = a.scale.to_vector<double>(), sb = b.scale.to_vector<double>();
  for (int c = 0; c < 4; ++c) EXPECT_NEAR(sa[c], sb[c], 1e-5);
}

TEST(FakeQuantizeError, ScoresEveryCandidatePerChannel) {
  // mean over each channel of |x - fake_quantize(x)|^2.4, for 3 candidates on axis 1; f32 uses
  // the polynomial power (relative error ~1e-6), f64 std::pow.
  Generator gen(14);
  const Shape shape = {3, 2, 10000};  // rows longer than one segment
  Tensor x = randn(shape, gen, DType::kF64);
  const std::vector<double> scales = {0.1, 0.2, 0.05, 0.3, 0.02, 0.5};  // [K = 3, C = 2]
  const std::vector<double> zeros = {3, 1, 0, 7, 2, 2};
  const std::vector<double> xv = x.to_vector<double>();
  std::vector<double> expected(6, 0.0);
  for (int64_t k = 0; k < 3; ++k) {
    for (size_t i = 0; i < xv.size(); ++i) {
      const int64_t c = (i / 10000) % 2;
      const double s = scales[k * 2 + c], z = zeros[k * 2 + c];
      const double q = std::min(std::max(std::nearbyint(xv[i] / s) + z, 0.0), 15.0);
      expected[k * 2 + c] += std::pow(std::fabs(xv[i] - (q - z) * s), 2.4) / 30000;
    }
  }
  for (DType dtype : {DType::kF64, DType::kF32}) {
    Tensor errors =
        ops::fake_quantize_error(x.to(dtype), Tensor::from_vector(scales, {3, 2}).to(dtype),
                                 Tensor::from_vector(zeros, {3, 2}).to(dtype), 1, {0, 15}, 2.4);
    ASSERT_EQ(errors.shape(), (Shape{3, 2}));
    ASSERT_EQ(errors.dtype(), DType::kF64);
    const std::vector<double> got = errors.to_vector<double>();
    const double tol = dtype == DType::kF64 ? 1e-12 : 2e-6;
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(got[i], expected[i], tol * expected[i]) << i;
  }
  // Per tensor: [K] candidates, no zero point.
  Tensor per_tensor =
      ops::fake_quantize_error(x, vec64({0.1, 0.2}), Tensor(), std::nullopt, {-8, 7}, 2.0);
  EXPECT_EQ(per_tensor.shape(), (Shape{2}));
  Tensor direct = ops::fake_quantize(x, scalar64(0.2), Tensor(), std::nullopt, {-8, 7});
  double mse = 0;
  const std::vector<double> dv = direct.to_vector<double>();
  for (size_t i = 0; i < xv.size(); ++i) mse += (xv[i] - dv[i]) * (xv[i] - dv[i]) / xv.size();
  EXPECT_NEAR(per_tensor.to_vector<double>()[1], mse, 1e-12 * mse);
  EXPECT_THAT(
      [&] {
        ops::fake_quantize_error(x, vec64({0.1}), Tensor(), 1, {0, 15}, 2.4);
      },
      ThrowsMessage<Error>(HasSubstr("fake_quantize_error: candidate scales of shape [1] "
                                     "(expected [K, C])")));
  EXPECT_THAT(
      [&] {
        ops::fake_quantize_error(x, Tensor::ones({2, 3}, DType::kF64), Tensor(), 1, {0, 15}, 2.4);
      },
      ThrowsMessage<Error>(HasSubstr("per-channel scale of shape [3] for axis 1")));
}

TEST(Quantize, CodesRoundTripThroughDequantize) {
  Generator gen(21);
  Tensor x = randn({5, 3, 7}, gen);
  Tensor scale = Tensor::from_vector<float>({0.05f, 0.02f, 0.1f}, {3});
  Tensor zero = Tensor::from_vector<float>({3.f, 0.f, 7.f}, {3});
  struct Case {
    QuantRange range;
    DType dtype;
  };
  for (const Case& c : {Case{{-8, 7}, DType::kI8}, Case{{0, 255}, DType::kU8},
                        Case{{-32768, 32767}, DType::kI32}}) {
    Tensor codes = ops::quantize(x, scale, zero, 1, c.range);
    EXPECT_EQ(codes.dtype(), c.dtype);
    std::vector<int32_t> q = codes.to_vector<int32_t>();
    for (int32_t v : q) {
      EXPECT_GE(v, c.range.qmin);
      EXPECT_LE(v, c.range.qmax);
    }
    EXPECT_EQ(ops::dequantize(codes, scale, zero, 1).to_vector<float>(),
              ops::fake_quantize(x, scale, zero, 1, c.range).to_vector<float>());
  }
}

TEST(Quantize, DequantizeAddsPerChannelBias) {
  Tensor codes = Tensor::from_vector<int32_t>({10, -4, 7, 0}, {2, 2});  // channels on axis 1
  Tensor y = ops::dequantize(codes, Tensor::from_vector<float>({0.5f, 0.25f}, {2}), Tensor(), 1,
                             Tensor::from_vector<float>({1.f, -1.f}, {2}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{6.f, -2.f, 4.5f, -1.f}));
}

TEST(Quantize, RequantizeAccumulators) {
  // acc * m + offset, rounded half to even, plus the zero point, clamped to [0, 255].
  Tensor acc = Tensor::from_vector<int32_t>({10, 3, -100, 1000, 5, 7}, {1, 2, 3});
  Tensor m = Tensor::from_vector<float>({0.5f, 0.25f}, {2});
  Tensor offset = Tensor::from_vector<float>({0.f, 1.f}, {2});
  Tensor codes = ops::requantize(acc, m, offset, 10, 1, {0, 255});
  EXPECT_EQ(codes.dtype(), DType::kU8);
  // channel 0: 5 + 10, 1.5 -> 2 + 10, -50 + 10 -> 0; channel 1: 251 + 10 -> 255, 2.25 -> 2 + 10,
  // 2.75 -> 3 + 10.
  EXPECT_EQ(codes.to_vector<int32_t>(), (std::vector<int32_t>{15, 12, 0, 255, 12, 13}));
}

TEST(QuantOps, BadInputsNameTheOpAndTheShapes) {
  Tensor x = Tensor::zeros({2, 3});
  Tensor s = Tensor::scalar(0.1f);
  EXPECT_THAT(
      [&] {
        ops::fake_quantize(x, Tensor::ones({3}), Tensor(), std::nullopt, {0, 3});
      },
      ThrowsMessage<Error>(HasSubstr("per-tensor quantization needs a 0-dim scale")));
  EXPECT_THAT(
      [&] {
        ops::fake_quantize(x, Tensor::ones({2}), Tensor(), 1, {0, 3});
      },
      ThrowsMessage<Error>(HasSubstr("fake_quantize: per-channel scale of shape [2] for "
                                     "axis 1 of a tensor of shape [2, 3] (expected [3])")));
  EXPECT_THAT(
      [&] {
        ops::fake_quantize(x, Tensor::ones({3}), Tensor(), 2, {0, 3});
      },
      ThrowsMessage<Error>(HasSubstr("dim 2 out of range")));
  EXPECT_THAT(
      [&] {
        ops::fake_quantize(x, s, Tensor(), std::nullopt, {3, 3});
      },
      ThrowsMessage<Error>(HasSubstr("empty code range [3, 3]")));
  EXPECT_THAT(
      [&] {
        ops::fake_quantize(x, Tensor::scalar(0.1, DType::kF64), Tensor(), std::nullopt, {0, 3});
      },
      ThrowsMessage<Error>(HasSubstr("fake_quantize")));
  EXPECT_THAT(
      [&] {
        ops::fake_quantize(x, s, Tensor::ones({3}), std::nullopt, {0, 3});
      },
      ThrowsMessage<Error>(HasSubstr("zero_point of shape [3] (expected [])")));
  EXPECT_THAT(
      [&] {
        ops::fake_quantize(x, Tensor::scalar(1, DType::kI32), Tensor(), std::nullopt, {0, 3});
      },
      ThrowsMessage<Error>(HasSubstr("scale of dtype i32 (expected f32 or f64)")));
  EXPECT_THAT(
      [&] {
        ops::fake_quantize_backward(Tensor::zeros({3, 2}), x, s, Tensor(), std::nullopt, {0, 3},
                                    true, true, true);
      },
      ThrowsMessage<Error>(HasSubstr("grad_output of shape [3, 2] for an input of shape "
                                     "[2, 3]")));
  EXPECT_THAT([&] { ops::dequantize(x, s, Tensor(), std::nullopt); },
              ThrowsMessage<Error>(HasSubstr("dequantize: codes of dtype f32")));
  EXPECT_THAT(
      [&] {
        ops::dequantize(Tensor::zeros({2, 3}, DType::kI8), Tensor::ones({3}), Tensor(), 1,
                        Tensor::ones({2}));
      },
      ThrowsMessage<Error>(HasSubstr("dequantize: bias of shape [2] (expected [3])")));
  Tensor acc = Tensor::zeros({2, 3}, DType::kI32);
  EXPECT_THAT(
      [&] {
        ops::requantize(acc, Tensor::ones({3}), Tensor(), 0, 1, {0, 1023});
      },
      ThrowsMessage<Error>(HasSubstr("does not fit in 8 bits")));
  EXPECT_THAT(
      [&] {
        ops::requantize(x, Tensor::ones({3}), Tensor(), 0, 1, {0, 255});
      },
      ThrowsMessage<Error>(HasSubstr("accumulators of dtype f32 (expected i32)")));
  EXPECT_THAT(
      [&] {
        ops::requantize(acc, Tensor::ones({3}, DType::kF64), Tensor(), 0, 1, {0, 255});
      },
      ThrowsMessage<Error>(HasSubstr("expected a 1-dim f32 tensor")));
  EXPECT_THAT(
      [&] {
        ops::requantize(acc, Tensor::ones({3}), Tensor::ones({2}), 0, 1, {0, 255});
      },
      ThrowsMessage<Error>(HasSubstr("offset of shape [2] (expected [3])")));
}

// ---- packing -----------------------------------------------------------------------------------

std::vector<int32_t> packed_bytes(const Tensor& packed) { return packed.to_vector<int32_t>(); }

TEST(Pack, DocumentedLittleEndianLayout) {
  // 3-bit codes 1..5: 001 010 011 100 101 from bit 0 up -> 0xD1, 0x58.
  Tensor three = Tensor::from_vector<int32_t>({1, 2, 3, 4, 5}, {1, 5});
  EXPECT_EQ(packed_bytes(ops::pack_codes(three, 3, 0)), (std::vector<int32_t>{0xD1, 0x58}));
  // 4-bit codes: two per byte, the first in the low nibble.
  Tensor four = Tensor::from_vector<int32_t>({1, 2, 3}, {1, 3});
  EXPECT_EQ(packed_bytes(ops::pack_codes(four, 4, 0)), (std::vector<int32_t>{0x21, 0x03}));
  // 6-bit codes 5, 0, 63 straddle bytes.
  Tensor six = Tensor::from_vector<int32_t>({5, 0, 63}, {1, 3});
  EXPECT_EQ(packed_bytes(ops::pack_codes(six, 6, 0)), (std::vector<int32_t>{0x05, 0xF0, 0x03}));
  // Signed codes are stored as code - qmin: 3-bit -4, -1, 3 -> 0, 3, 7.
  Tensor signed3 = Tensor::from_vector<int8_t>({-4, -1, 3}, {1, 3});
  EXPECT_EQ(packed_bytes(ops::pack_codes(signed3, 3, -4)), (std::vector<int32_t>{0xD8, 0x01}));
  // Each row starts on a byte boundary: 2 rows of 3 codes of 2 bits -> 1 byte each.
  Tensor rows = Tensor::from_vector<uint8_t>({1, 2, 3, 3, 2, 1}, {2, 3});
  EXPECT_EQ(packed_bytes(ops::pack_codes(rows, 2, 0)), (std::vector<int32_t>{0x39, 0x1B}));
}

TEST(Pack, RoundTripForEveryWidthAndOddSizes) {
  Generator gen(31);
  for (int bits = 2; bits <= 8; ++bits) {
    for (bool is_signed : {true, false}) {
      const int64_t qmin = quant_qmin(bits, is_signed), qmax = quant_qmax(bits, is_signed);
      for (const Shape& shape : {Shape{1, 1}, Shape{3, 7}, Shape{5, 13}, Shape{4, 3, 3, 3},
                                 Shape{2, 33}, Shape{1, 1001}}) {
        // Uniform codes over the whole range, both ends included.
        Tensor u = rand(shape, gen, DType::kF64);
        std::vector<double> uv = u.to_vector<double>();
        std::vector<int32_t> codes(uv.size());
        for (size_t i = 0; i < uv.size(); ++i) {
          codes[i] = static_cast<int32_t>(qmin + std::floor(uv[i] * (qmax - qmin + 1)));
        }
        codes.front() = static_cast<int32_t>(qmin);
        codes.back() = static_cast<int32_t>(qmax);
        Tensor c = Tensor::from_vector(codes, shape);
        const int64_t count = c.numel() / shape[0];
        Tensor packed = ops::pack_codes(c, bits, qmin);
        ASSERT_EQ(packed.shape(), (Shape{shape[0], (count * bits + 7) / 8}));
        const DType dtype = is_signed ? DType::kI8 : DType::kU8;
        Tensor back = ops::unpack_codes(packed, count, bits, qmin, dtype);
        EXPECT_EQ(back.dtype(), dtype);
        EXPECT_EQ(back.to_vector<int32_t>(), codes)
            << bits << " bits, " << (is_signed ? "signed" : "unsigned") << ", shape "
            << shape_str(shape);
        // The padding bits of every row are zero.
        const int64_t used = count * bits % 8;
        if (used != 0) {
          std::vector<int32_t> bytes = packed_bytes(packed);
          for (int64_t r = 0; r < shape[0]; ++r) {
            EXPECT_EQ(bytes[(r + 1) * packed.size(1) - 1] >> used, 0);
          }
        }
      }
    }
  }
}

TEST(Pack, ConvWeightRowsRunOverTapsWithChannelsInnermost) {
  // [O = 2, C = 3, kh = 1, kw = 2]: code 10 * c + j (+ 100 for o = 1); packed row order (j, c).
  std::vector<int32_t> codes;
  for (int o = 0; o < 2; ++o) {
    for (int c = 0; c < 3; ++c) {
      for (int j = 0; j < 2; ++j) codes.push_back(100 * o + 10 * c + j);
    }
  }
  const Tensor weight = Tensor::from_vector(codes, {2, 3, 1, 2});
  const Tensor packed = ops::pack_weight_codes(weight, 8, 0);
  EXPECT_EQ(packed_bytes(packed),
            (std::vector<int32_t>{0, 10, 20, 1, 11, 21, 100, 110, 120, 101, 111, 121}));
  const Tensor back = ops::unpack_weight_codes(packed, {2, 3, 1, 2}, 8, 0, DType::kU8);
  EXPECT_EQ(back.shape(), (Shape{2, 3, 1, 2}));
  EXPECT_EQ(back.to_vector<int32_t>(), codes);
  // A linear weight keeps its order.
  const Tensor linear = Tensor::from_vector<int32_t>({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(packed_bytes(ops::pack_weight_codes(linear, 4, 0)),
            (std::vector<int32_t>{0x21, 0x03, 0x54, 0x06}));
  EXPECT_EQ(ops::unpack_weight_codes(ops::pack_weight_codes(linear, 4, 0), {2, 3}, 4, 0, DType::kU8)
                .to_vector<int32_t>(),
            linear.to_vector<int32_t>());
  EXPECT_THAT(
      [&] {
        ops::pack_weight_codes(Tensor::zeros({2, 3, 4}, DType::kU8), 4, 0);
      },
      ThrowsMessage<Error>(HasSubstr("pack_weight_codes: weight of shape [2, 3, 4] "
                                     "(expected [O, K] or [O, C/groups, kh, kw])")));
}

TEST(Pack, BadInputs) {
  Tensor codes = Tensor::from_vector<int32_t>({0, 4, 9}, {1, 3});
  EXPECT_THAT([&] { ops::pack_codes(codes, 3, 0); },
              ThrowsMessage<Error>(HasSubstr("pack_codes: 1 of 3 codes of shape [1, 3] lie "
                                             "outside the 3-bit range [0, 7]")));
  EXPECT_THAT([&] { ops::pack_codes(codes, 1, 0); },
              ThrowsMessage<Error>(HasSubstr("bits = 1 (expected 2..8)")));
  EXPECT_THAT([&] { ops::pack_codes(codes, 9, 0); },
              ThrowsMessage<Error>(HasSubstr("bits = 9 (expected 2..8)")));
  EXPECT_THAT([&] { ops::pack_codes(Tensor::zeros({3}), 4, 0); },
              ThrowsMessage<Error>(HasSubstr("codes of dtype f32")));
  Tensor packed = Tensor::zeros({2, 2}, DType::kU8);
  EXPECT_THAT([&] { ops::unpack_codes(packed, 5, 4, 0, DType::kU8); },
              ThrowsMessage<Error>(HasSubstr("packed tensor of shape [2, 2] and dtype u8 "
                                             "(expected u8 [rows, 3] for 5 codes of 4 bits")));
  EXPECT_THAT([&] { ops::unpack_codes(packed, 2, 8, 0, DType::kI8); },
              ThrowsMessage<Error>(HasSubstr("dtype i8 cannot hold the 8-bit codes from 0")));
  EXPECT_THAT([&] { ops::unpack_codes(packed, 2, 8, 0, DType::kF32); },
              ThrowsMessage<Error>(HasSubstr("dtype f32 cannot hold")));
}

// ---- integer convolution ---------------------------------------------------------------------

Tensor random_codes(const Shape& shape, int64_t qmin, int64_t qmax, DType dtype, Generator& gen) {
  std::vector<double> u = rand(shape, gen, DType::kF64).to_vector<double>();
  std::vector<int32_t> codes(u.size());
  for (size_t i = 0; i < u.size(); ++i) {
    codes[i] = static_cast<int32_t>(qmin + std::floor(u[i] * (qmax - qmin + 1)));
  }
  return Tensor::from_vector(codes, shape).to(dtype);
}

// Naive direct convolution of centred codes in int64.
std::vector<int32_t> reference_int_conv(const Tensor& x, int64_t xz, const Tensor& w,
                                        const std::vector<int32_t>& wz, const Conv2dParams& p,
                                        const Shape& out_shape) {
  std::vector<int32_t> xv = x.to_vector<int32_t>(), wv = w.to_vector<int32_t>();
  const int64_t n_ = x.size(0), c_ = x.size(1), h_ = x.size(2), w_ = x.size(3);
  const int64_t o_ = w.size(0), cg = w.size(1), kh = w.size(2), kw = w.size(3);
  const int64_t og = o_ / p.groups, oh_ = out_shape[2], ow_ = out_shape[3];
  std::vector<int32_t> out(n_ * o_ * oh_ * ow_);
  for (int64_t n = 0; n < n_; ++n)
    for (int64_t o = 0; o < o_; ++o)
      for (int64_t oh = 0; oh < oh_; ++oh)
        for (int64_t ow = 0; ow < ow_; ++ow) {
          int64_t sum = 0;
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t ih = oh * p.stride[0] - p.padding[0] + i * p.dilation[0];
                const int64_t iw = ow * p.stride[1] - p.padding[1] + j * p.dilation[1];
                if (ih < 0 || ih >= h_ || iw < 0 || iw >= w_) continue;
                const int64_t ci = (o / og) * cg + c;
                sum += (int64_t{xv[((n * c_ + ci) * h_ + ih) * w_ + iw]} - xz) *
                       (int64_t{wv[((o * cg + c) * kh + i) * kw + j]} - wz[o]);
              }
          out[((n * o_ + o) * oh_ + oh) * ow_ + ow] = static_cast<int32_t>(sum);
        }
  return out;
}

TEST(IntConv2d, MatchesNaiveLoopForEveryGeometry) {
  Generator gen(41);
  struct Case {
    Shape x, w;
    Conv2dParams p;
    DType x_dtype, w_dtype;
    int64_t xz;
  };
  Conv2dParams strided;
  strided.stride = {2, 1};
  strided.padding = {1, 2};
  Conv2dParams dilated;
  dilated.dilation = {2, 2};
  dilated.padding = {2, 2};
  Conv2dParams grouped;
  grouped.groups = 3;
  grouped.padding = {1, 1};
  Conv2dParams depthwise;
  depthwise.groups = 6;
  depthwise.stride = {2, 2};
  depthwise.padding = {1, 1};
  for (const Case& c : {Case{{2, 3, 7, 6}, {5, 3, 3, 3}, strided, DType::kU8, DType::kI8, 128},
                        Case{{1, 4, 9, 9}, {3, 4, 3, 3}, dilated, DType::kI8, DType::kU8, -3},
                        Case{{2, 6, 5, 5}, {9, 2, 3, 3}, grouped, DType::kU8, DType::kU8, 7},
                        Case{{1, 6, 8, 8}, {6, 1, 3, 3}, depthwise, DType::kI8, DType::kI8, 0},
                        Case{{3, 8, 11, 10}, {4, 8, 1, 1}, {}, DType::kU8, DType::kI8, 255}}) {
    const bool xs = c.x_dtype == DType::kI8, ws = c.w_dtype == DType::kI8;
    Tensor x = random_codes(c.x, xs ? -128 : 0, xs ? 127 : 255, c.x_dtype, gen);
    Tensor w = random_codes(c.w, ws ? -128 : 0, ws ? 127 : 255, c.w_dtype, gen);
    std::vector<int32_t> wz(c.w[0]);
    for (int64_t o = 0; o < c.w[0]; ++o)
      wz[o] = ws ? static_cast<int32_t>(o % 3) - 1 : 100 + static_cast<int32_t>(o);
    Tensor out = ops::int_conv2d(x, c.xz, w, Tensor::from_vector(wz, {c.w[0]}), c.p);
    ASSERT_EQ(out.dtype(), DType::kI32);
    EXPECT_EQ(out.to_vector<int32_t>(), reference_int_conv(x, c.xz, w, wz, c.p, out.shape()))
        << "x " << shape_str(c.x) << " w " << shape_str(c.w);
  }
}

TEST(IntConv2d, EqualsTheFloatConvolutionOfDequantizedCodes) {
  // conv(dequantize(x), dequantize(w)) = acc * s_x * s_w[o] up to the float sums' rounding.
  Generator gen(42);
  Tensor x = random_codes({2, 16, 6, 6}, 0, 255, DType::kU8, gen);
  Tensor w = random_codes({8, 16, 3, 3}, -8, 7, DType::kI8, gen);
  const float sx = 0.02f;
  Tensor sw = ops::add(ops::mul(rand({8}, gen), 0.01), 0.005);
  Conv2dParams p;
  p.padding = {1, 1};
  Tensor acc = ops::int_conv2d(x, 3, w, Tensor(), p);
  Tensor real = conv2d(ops::dequantize(x, Tensor::scalar(sx), Tensor::scalar(3.f), std::nullopt),
                       ops::dequantize(w, sw, Tensor(), 0), Tensor(), p);
  Tensor from_acc = ops::dequantize(acc, ops::mul(sw, static_cast<double>(sx)), Tensor(), 1);
  std::vector<float> a = real.to_vector<float>(), b = from_acc.to_vector<float>();
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5f * (1 + std::fabs(a[i])));
}

TEST(IntLinear, MatchesNaiveDotProducts) {
  Generator gen(43);
  Tensor x = random_codes({5, 37}, 0, 255, DType::kU8, gen);
  Tensor w = random_codes({7, 37}, -2, 1, DType::kI8, gen);
  std::vector<int32_t> xv = x.to_vector<int32_t>(), wv = w.to_vector<int32_t>();
  Tensor out = ops::int_linear(x, 9, w, Tensor());
  ASSERT_EQ(out.shape(), (Shape{5, 7}));
  std::vector<int32_t> ov = out.to_vector<int32_t>();
  for (int m = 0; m < 5; ++m) {
    for (int o = 0; o < 7; ++o) {
      int32_t sum = 0;
      for (int k = 0; k < 37; ++k) sum += (xv[m * 37 + k] - 9) * wv[o * 37 + k];
      EXPECT_EQ(ov[m * 7 + o], sum);
    }
  }
}

TEST(IntConv2d, BadInputs) {
  Tensor x = Tensor::zeros({1, 2, 4, 4}, DType::kU8);
  Tensor w = Tensor::zeros({3, 2, 3, 3}, DType::kI8);
  EXPECT_THAT([&] { ops::int_conv2d(x.to(DType::kF32), 0, w, Tensor(), {}); },
              ThrowsMessage<Error>(HasSubstr("int_conv2d: input of dtype f32")));
  EXPECT_THAT([&] { ops::int_conv2d(x, 0, w.to(DType::kI32), Tensor(), {}); },
              ThrowsMessage<Error>(HasSubstr("int_conv2d: weight of dtype i32")));
  EXPECT_THAT([&] { ops::int_conv2d(x, 40000, w, Tensor(), {}); },
              ThrowsMessage<Error>(HasSubstr("input zero point 40000 outside")));
  EXPECT_THAT([&] { ops::int_conv2d(x, 0, w, Tensor::zeros({2}, DType::kI32), {}); },
              ThrowsMessage<Error>(HasSubstr("weight zero point of shape [2] and dtype i32 "
                                             "(expected i32 [3])")));
  EXPECT_THAT(
      [&] {
        ops::int_conv2d(x, 0, Tensor::zeros({3, 1, 3, 3}, DType::kI8), Tensor(), {});
      },
      ThrowsMessage<Error>(HasSubstr("has 2 channels")));
  EXPECT_THAT(
      [&] {
        ops::int_linear(Tensor::zeros({2, 5}, DType::kU8), 0, Tensor::zeros({3, 4}, DType::kI8),
                        Tensor());
      },
      ThrowsMessage<Error>(HasSubstr("int_linear: input of shape [2, 5] and weight of "
                                     "shape [3, 4]")));
}

}  // namespace
}  // namespace ompq
