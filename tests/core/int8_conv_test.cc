// Int8Conv2d (oneDNN int8) against the integer reference (ops::int_conv2d + ops::requantize /
// ops::dequantize) at many shapes: dense, strided, padded, dilated, grouped, depthwise, odd sizes,
// 1x1 and linear-as-1x1; u8 and s8 activations with zero points; symmetric signed and affine
// unsigned weights of 3, 7 and 8 bits (8-bit ones exercise the split path on CPUs without VNNI);
// codes in full, ReLU and ReLU6 ranges and real outputs. Codes are equal without a bias and
// differ by at most one step (rarely) with one; every bad input is refused. Residual adds (u8 and
// s8 shortcuts, through oneDNN's sum post-op and through the combining pass) at the same shapes
// against requantize_add_value.
#include "core/ops/int8_conv.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/ops/conv.h"
#include "core/ops/integer.h"
#include "core/ops/memory_format.h"
#include "core/ops/quant.h"
#include "tests/conv_params.h"

namespace ompq {
namespace {

using ::testing::HasSubstr;
using testing::square_conv;
using ::testing::ThrowsMessage;

struct Case {
  std::string name;
  int64_t n, c, h, w, o, k;
  Conv2dParams p;
};

std::vector<Case> cases() {
  return {
      {"3x3", 2, 16, 9, 9, 24, 3, square_conv(1, 1)},
      {"3x3_stride2_odd", 1, 13, 11, 7, 9, 3, square_conv(2, 1)},
      {"stem_7x7", 2, 3, 17, 15, 8, 7, square_conv(2, 3)},
      {"1x1", 3, 40, 5, 5, 33, 1, square_conv(1, 0)},
      {"1x1_stride2", 2, 24, 8, 8, 48, 1, square_conv(2, 0)},
      {"depthwise", 2, 32, 10, 10, 32, 3, square_conv(1, 1, 1, 32)},
      {"depthwise_stride2_odd", 1, 17, 9, 11, 17, 3, square_conv(2, 1, 1, 17)},
      {"grouped", 1, 12, 6, 6, 8, 3, square_conv(1, 1, 1, 4)},
      {"dilated", 1, 8, 12, 12, 8, 3, square_conv(1, 2, 2)},
      {"linear", 5, 300, 1, 1, 10, 1, square_conv(1, 0)},
  };
}

struct Weights {
  Tensor codes, zero_point;  // zero_point undefined for symmetric weights
};

// Codes of `bits` bits: signed symmetric, or unsigned affine with a per-channel zero point.
Weights random_weights(const Shape& shape, int bits, bool affine, std::mt19937& rng) {
  const int64_t out = shape[0], row = shape_numel(shape) / out;
  Weights w;
  if (!affine) {
    const int lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
    std::vector<int8_t> v(shape_numel(shape));
    for (auto& c : v) c = static_cast<int8_t>(std::uniform_int_distribution<int>(lo, hi)(rng));
    w.codes = Tensor::from_vector(v, shape);
    return w;
  }
  const int hi = (1 << bits) - 1;
  std::vector<uint8_t> v(shape_numel(shape));
  std::vector<int32_t> zp(out);
  for (int64_t o = 0; o < out; ++o) {
    zp[o] = std::uniform_int_distribution<int>(0, hi)(rng);
    for (int64_t k = 0; k < row; ++k) {
      v[o * row + k] = static_cast<uint8_t>(std::uniform_int_distribution<int>(0, hi)(rng));
    }
  }
  w.codes = Tensor::from_vector(v, shape);
  w.zero_point = Tensor::from_vector(zp, {out});
  return w;
}

Tensor random_codes(const Shape& shape, DType dtype, std::mt19937& rng) {
  std::vector<int32_t> v(shape_numel(shape));
  const int lo = dtype == DType::kU8 ? 0 : -128;
  for (auto& c : v) c = std::uniform_int_distribution<int>(lo, lo + 255)(rng);
  return Tensor::from_vector(v, shape).to(dtype);
}

// Multipliers that map the accumulators onto a few hundred codes.
Tensor random_multipliers(int64_t out, int64_t window, std::mt19937& rng) {
  std::vector<float> m(out);
  for (auto& v : m) {
    v = std::uniform_real_distribution<float>(0.5f, 2.0f)(rng) /
        (40.0f * std::sqrt(static_cast<float>(window)));
  }
  return Tensor::from_vector(m, {out});
}

Tensor random_offsets(int64_t out, std::mt19937& rng) {
  std::vector<float> b(out);
  for (auto& v : b) v = std::uniform_real_distribution<float>(-60.0f, 60.0f)(rng);
  return Tensor::from_vector(b, {out});
}

struct Output {
  const char* name;
  std::optional<Int8OutputCodes> codes;
};

std::vector<Output> outputs() {
  return {{"u8_full", Int8OutputCodes{3, {0, 255}}},  {"u8_relu", Int8OutputCodes{0, {0, 255}}},
          {"u8_relu6", Int8OutputCodes{0, {0, 90}}},  {"s8_full", Int8OutputCodes{-5, {-128, 127}}},
          {"u4_affine", Int8OutputCodes{4, {0, 15}}}, {"real", std::nullopt}};
}

// Compares every element: real outputs within float roundings, codes within one step (asserted
// once per call, at the first element outside). Returns how many codes differ.
int64_t compare(const Tensor& got, const Tensor& want, bool real, const std::string& where) {
  const std::vector<float> g = got.contiguous().to(DType::kF32).to_vector<float>();
  const std::vector<float> w = want.contiguous().to(DType::kF32).to_vector<float>();
  EXPECT_EQ(g.size(), w.size()) << where;
  float largest = 0;
  for (float v : w) largest = std::max(largest, std::fabs(v));
  const float tolerance = real ? 2e-6f * largest + 1e-6f : 1.0f;
  int64_t differing = 0;
  for (size_t i = 0; i < g.size() && i < w.size(); ++i) {
    if (g[i] == w[i]) continue;
    ++differing;
    if (std::fabs(g[i] - w[i]) > tolerance) {
      ADD_FAILURE() << where << ": element " << i << " is " << g[i] << ", expected " << w[i];
      return differing;
    }
  }
  return real ? 0 : differing;
}

TEST(Int8Conv2d, MatchesTheIntegerReferenceAtEveryShapeWidthAndOutput) {
  std::mt19937 rng(7);
  int64_t compared = 0, differing = 0, combination = 0;
  for (const Case& c : cases()) {
    const Shape w_shape = {c.o, c.c / c.p.groups, c.k, c.k};
    const int64_t window = (c.c / c.p.groups) * c.k * c.k;
    for (int bits : {3, 7, 8}) {
      for (bool affine : {false, true}) {
        for (DType x_dtype : {DType::kU8, DType::kI8}) {
          const Weights w = random_weights(w_shape, bits, affine, rng);
          const Tensor x = random_codes({c.n, c.c, c.h, c.w}, x_dtype, rng);
          const int64_t x_zp = x_dtype == DType::kU8 ? 17 : -9;
          const Tensor acc = ops::int_conv2d(x, x_zp, w.codes, w.zero_point, c.p);
          for (const Output& out : outputs()) {
            // Every other combination with an offset (halves the primitives to build).
            const bool with_offset = ++combination % 2 == 0;
            {
              Int8Conv2dSpec spec;
              spec.weight_codes = w.codes;
              spec.weight_zero_point = w.zero_point;
              spec.params = c.p;
              spec.multiplier = random_multipliers(c.o, window, rng);
              if (with_offset) spec.offset = random_offsets(c.o, rng);
              spec.output = out.codes;
              const Int8Conv2d conv(spec);
              const std::string where =
                  c.name + " W" + std::to_string(bits) + (affine ? " affine " : " symmetric ") +
                  dtype_name(x_dtype) + " -> " + out.name + (with_offset ? " with offset" : "");
              const Tensor got = conv.forward(x, x_zp);
              EXPECT_TRUE(is_channels_last(got) || got.size(2) * got.size(3) == 1) << where;
              const Tensor want =
                  out.codes ? ops::requantize(acc, spec.multiplier, spec.offset,
                                              out.codes->zero_point, 1, out.codes->range)
                            : ops::dequantize(acc, spec.multiplier, Tensor(), 1, spec.offset);
              ASSERT_EQ(got.shape(), want.shape()) << where;
              ASSERT_EQ(got.dtype(), want.dtype()) << where;
              const int64_t diff = compare(got, want, !out.codes, where);
              // Without an offset the epilogue rounds exactly as the reference does, but for
              // exact ties under an odd output zero point (oneDNN adds it before rounding half to
              // even).
              const bool even_zero_point = !out.codes || out.codes->zero_point % 2 == 0;
              if (!with_offset && even_zero_point) EXPECT_EQ(diff, 0) << where;
              compared += got.numel();
              differing += diff;
            }
          }
        }
      }
    }
  }
  // Off-by-one codes need an exact value within a float rounding of a code boundary.
  EXPECT_LT(static_cast<double>(differing), 1e-3 * static_cast<double>(compared));
}

// The reference of a convolution adding a shortcut: requantize_add_value per element, or for real
// outputs acc * multiplier + offset + the shortcut's real value. acc and shortcut: NCHW.
Tensor reference_with_residual(const Tensor& acc, const Int8Conv2dSpec& spec,
                               const Tensor& shortcut) {
  const std::vector<int32_t> a = acc.contiguous().to_vector<int32_t>();
  const std::vector<float> r = shortcut.contiguous().to(DType::kF32).to_vector<float>();
  const std::vector<float> m = spec.multiplier.to_vector<float>();
  const std::vector<float> off =
      spec.offset.defined() ? spec.offset.to_vector<float>() : std::vector<float>(m.size(), 0.0f);
  const int64_t channels = acc.size(1), plane = acc.size(2) * acc.size(3);
  const float rs = spec.residual->scale, rz = static_cast<float>(spec.residual->zero_point);
  std::vector<float> out(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    const int64_t o = (static_cast<int64_t>(i) / plane) % channels;
    const float added = dequantize_value(r[i], rs, rz);
    if (!spec.output) {
      out[i] = dequantize_value(static_cast<float>(a[i]), m[o], 0.0f) + off[o] + added;
      continue;
    }
    const QuantRange range = spec.output->range;
    out[i] =
        requantize_add_value(a[i], m[o], off[o], added, static_cast<float>(spec.output->zero_point),
                             static_cast<float>(range.qmin), static_cast<float>(range.qmax));
  }
  const Tensor result = Tensor::from_vector(out, acc.shape());
  return spec.output ? result.to(code_dtype(spec.output->range)) : result;
}

TEST(Int8Conv2d, AddsResidualsLikeTheReferenceAtEveryShape) {
  std::mt19937 rng(11);
  int64_t compared = 0, differing = 0, combination = 0;
  for (const Case& c : cases()) {
    const Shape w_shape = {c.o, c.c / c.p.groups, c.k, c.k};
    const int64_t window = (c.c / c.p.groups) * c.k * c.k;
    // 4 bits: the whole form, its epilogue with oneDNN's sum post-op on this CPU; 8 bits with u8
    // inputs up to 255: the split form on CPUs without VNNI, the shortcut added when combining.
    for (int bits : {4, 8}) {
      for (DType x_dtype : {DType::kU8, DType::kI8}) {
        const Weights w = random_weights(w_shape, bits, bits == 8, rng);
        const Tensor x = random_codes({c.n, c.c, c.h, c.w}, x_dtype, rng);
        const int64_t x_zp = x_dtype == DType::kU8 ? 17 : -9;
        const Tensor acc = ops::int_conv2d(x, x_zp, w.codes, w.zero_point, c.p);
        for (const Output& out : outputs()) {
          ++combination;
          Int8Conv2dSpec spec;
          spec.weight_codes = w.codes;
          spec.weight_zero_point = w.zero_point;
          spec.params = c.p;
          spec.multiplier = random_multipliers(c.o, window, rng);
          const bool with_offset = combination % 2 == 0;
          if (with_offset) spec.offset = random_offsets(c.o, rng);
          spec.output = out.codes;
          Int8Residual residual;
          residual.dtype = combination % 3 == 0 ? DType::kI8 : DType::kU8;
          residual.zero_point = residual.dtype == DType::kU8 ? 6 : -3;
          // Shortcuts of up to about a hundred output steps (codes) or real units.
          residual.scale = std::uniform_real_distribution<float>(0.2f, 0.6f)(rng);
          spec.residual = residual;
          const Int8Conv2d conv(spec);
          const Tensor shortcut = random_codes(acc.shape(), residual.dtype, rng);
          const std::string where = c.name + " W" + std::to_string(bits) + " " +
                                    dtype_name(x_dtype) + " + " + dtype_name(residual.dtype) +
                                    " shortcut -> " + out.name +
                                    (with_offset ? " with offset" : "");
          // The shortcut in either layout: NCHW as made, channels_last as a layer writes it.
          const Tensor got = conv.forward(
              x, x_zp, combination % 2 == 0 ? shortcut : in_memory_format(shortcut, true));
          const Tensor want = reference_with_residual(acc, spec, shortcut);
          ASSERT_EQ(got.shape(), want.shape()) << where;
          ASSERT_EQ(got.dtype(), want.dtype()) << where;
          // The sum post-op rounds the products and the shortcut separately where the reference
          // rounds one fused multiply-add: one step at most, at a code boundary.
          differing += compare(got, want, !out.codes, where);
          compared += got.numel();
        }
      }
    }
  }
  EXPECT_LT(static_cast<double>(differing), 1e-3 * static_cast<double>(compared));
}

TEST(Int8Conv2d, EightBitWeightsAreSplitOnlyWhereTheCpuWouldSaturate) {
  std::mt19937 rng(3);
  Int8Conv2dSpec spec;
  spec.multiplier = Tensor::full({4}, 0.01);
  spec.weight_codes = random_weights({4, 8, 3, 3}, 7, false, rng).codes;
  EXPECT_FALSE(Int8Conv2d(spec).splits(255));
  // All-extreme 8-bit weights against the largest inputs: the largest int16 pair sums there are.
  spec.weight_codes = Tensor::full({4, 8, 3, 3}, -128, DType::kI8);
  const Int8Conv2d conv(spec);
  EXPECT_FALSE(conv.splits(127));
  for (const auto& [dtype, code] : {std::pair{DType::kU8, 255}, std::pair{DType::kU8, 127},
                                    std::pair{DType::kI8, 127}, std::pair{DType::kI8, -128}}) {
    const Tensor x = Tensor::full({1, 8, 3, 3}, code, dtype);
    const Tensor acc = ops::int_conv2d(x, 0, spec.weight_codes, Tensor(), {});
    EXPECT_EQ(acc.to_vector<int32_t>()[0], -128 * code * 72);
    EXPECT_EQ(compare(conv.forward(x, 0), ops::dequantize(acc, spec.multiplier, Tensor(), 1), true,
                      dtype_name(dtype) + std::to_string(code)),
              0);
  }
}

TEST(Int8Conv2d, ReusesItsPrimitivesAcrossCallsAndShapes) {
  std::mt19937 rng(5);
  Int8Conv2dSpec spec;
  spec.weight_codes = random_weights({6, 4, 3, 3}, 4, false, rng).codes;
  spec.params = square_conv(1, 1);
  spec.multiplier = Tensor::full({6}, 0.02);
  spec.output = Int8OutputCodes{0, {0, 255}};
  const Int8Conv2d conv(spec);
  for (const Shape& shape : {Shape{1, 4, 5, 5}, Shape{3, 4, 8, 6}, Shape{1, 4, 5, 5}}) {
    const Tensor x = random_codes(shape, DType::kU8, rng);
    const Tensor want =
        ops::requantize(ops::int_conv2d(x, 11, spec.weight_codes, Tensor(), spec.params),
                        spec.multiplier, Tensor(), 0, 1, {0, 255});
    EXPECT_EQ(compare(conv.forward(x, 11), want, false, shape_str(shape)), 0);
    // An NCHW-contiguous input gives the same result.
    EXPECT_EQ(compare(conv.forward(x.contiguous(), 11), want, false, shape_str(shape)), 0);
  }
}

TEST(Int8Conv2d, RefusesBadSpecsAndInputs) {
  Int8Conv2dSpec spec;
  spec.weight_codes = Tensor::zeros({4, 2, 3, 3}, DType::kI8);
  spec.multiplier = Tensor::full({4}, 0.1);
  EXPECT_THAT([&] { Int8Conv2d{Int8Conv2dSpec{}}; },
              ThrowsMessage<Error>(HasSubstr("weight codes of undefined")));
  Int8Conv2dSpec bad = spec;
  bad.weight_codes = Tensor::zeros({4, 2, 3, 3});
  EXPECT_THAT([&] { Int8Conv2d{bad}; }, ThrowsMessage<Error>(HasSubstr("weight codes of f32")));
  bad = spec;
  bad.multiplier = Tensor::full({3}, 0.1);
  EXPECT_THAT([&] { Int8Conv2d{bad}; }, ThrowsMessage<Error>(HasSubstr("multiplier of f32 [3]")));
  bad = spec;
  bad.multiplier = Tensor::full({4}, -1.0);
  EXPECT_THAT([&] { Int8Conv2d{bad}; }, ThrowsMessage<Error>(HasSubstr("multiplier -1")));
  bad = spec;
  bad.offset = Tensor::zeros({4}, DType::kF64);
  EXPECT_THAT([&] { Int8Conv2d{bad}; }, ThrowsMessage<Error>(HasSubstr("offset of f64 [4]")));
  bad = spec;
  bad.output = Int8OutputCodes{20, {0, 15}};
  EXPECT_THAT([&] { Int8Conv2d{bad}; }, ThrowsMessage<Error>(HasSubstr("zero point 20")));
  bad = spec;
  bad.params.groups = 3;
  EXPECT_THAT([&] { Int8Conv2d{bad}; }, ThrowsMessage<Error>(HasSubstr("in 3 groups")));
  bad = spec;
  bad.weight_codes = Tensor::zeros({4, 2, 3, 3}, DType::kU8);
  bad.weight_zero_point = Tensor::full({4}, -30000, DType::kI32);
  EXPECT_THAT([&] { Int8Conv2d{bad}; }, ThrowsMessage<Error>(HasSubstr("magnitude 30000")));

  const Int8Conv2d conv(spec);
  EXPECT_THAT(
      [&] {
        conv.forward(Tensor::zeros({1, 2, 5, 5}), 0);
      },
      ThrowsMessage<Error>(HasSubstr("input of f32")));
  EXPECT_THAT(
      [&] {
        conv.forward(Tensor::zeros({1, 2, 5, 5}, DType::kU8), -1);
      },
      ThrowsMessage<Error>(HasSubstr("input zero point -1")));
  EXPECT_THROW(conv.forward(Tensor::zeros({1, 3, 5, 5}, DType::kU8), 0), Error);
  EXPECT_THAT(
      [&] {
        conv.forward(Tensor::zeros({1, 2, 5, 5}, DType::kU8), 0,
                     Tensor::zeros({1, 4, 3, 3}, DType::kU8));
      },
      ThrowsMessage<Error>(HasSubstr("a residual given to a convolution without one")));

  bad = spec;
  bad.residual = Int8Residual{DType::kU8, 0.5f, -1};
  EXPECT_THAT([&] { Int8Conv2d{bad}; },
              ThrowsMessage<Error>(HasSubstr("residual of u8 codes with zero point -1")));
  bad.residual = Int8Residual{DType::kF32, 0.5f, 0};
  EXPECT_THAT([&] { Int8Conv2d{bad}; }, ThrowsMessage<Error>(HasSubstr("residual of f32")));
  bad.residual = Int8Residual{DType::kI8, 0.0f, 0};
  EXPECT_THAT([&] { Int8Conv2d{bad}; }, ThrowsMessage<Error>(HasSubstr("and scale 0")));
  spec.residual = Int8Residual{DType::kI8, 0.5f, 0};
  spec.output = Int8OutputCodes{0, {0, 255}};
  const Int8Conv2d adding(spec);
  const Tensor x = Tensor::zeros({1, 2, 5, 5}, DType::kU8);
  EXPECT_THAT([&] { adding.forward(x, 0); },
              ThrowsMessage<Error>(HasSubstr("no residual given to a convolution that adds one")));
  EXPECT_THAT(
      [&] {
        adding.forward(x, 0, Tensor::zeros({1, 4, 3, 3}, DType::kU8));
      },
      ThrowsMessage<Error>(HasSubstr("residual of u8 [1, 4, 3, 3] (expected CPU i8")));
  EXPECT_THAT(
      [&] {
        adding.forward(x, 0, Tensor::zeros({1, 4, 5, 5}, DType::kI8));
      },
      ThrowsMessage<Error>(HasSubstr("residual of i8 [1, 4, 5, 5]")));
}

}  // namespace
}  // namespace ompq
