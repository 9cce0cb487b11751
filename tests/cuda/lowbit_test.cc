// Packed low-bit convolution and linear layers (ops::packed_conv2d / packed_linear): the CPU path
// against naive loops, every bad input, and the CUDA kernels against the CPU reference bit for bit
// (int32 accumulators and requantized codes) for every bit width 2..8, signed and unsigned weight
// codes with and without zero points, i8 and u8 activations, at shapes that hit every tile edge:
// M, N, K of 1, odd sizes, non-multiples of the 64 x 64 x 64 tiles, split K, strided, padded and
// dilated convolutions, grouped and depthwise ones, NCHW and channels_last inputs. The CUDA tests
// need a GPU; the others run everywhere.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/ops/conv.h"
#include "core/ops/integer.h"
#include "core/ops/memory_format.h"
#include "cuda_test_util.h"

namespace ompq {
namespace {

using testing::ConvCase;
using testing::expect_equal;
using ::testing::HasSubstr;
using testing::random_integers;
using testing::random_tensor_in;

// A random layer: weight codes of `bits` bits (signed: from -2^(bits-1), else from 0), packed;
// optional per-channel zero points; activation codes of x_dtype with a random zero point; and a
// requantization that spreads the outputs over the 8-bit range with some clipping.
struct Layer {
  Tensor x;
  int64_t x_zero_point = 0;
  Tensor codes;  // unpacked weight codes, for the naive reference
  PackedWeight w;
  Requantization requant;
};

Layer random_layer(const Shape& x_shape, const Shape& w_shape, int bits, bool signed_weights,
                   bool weight_zero_point, DType x_dtype, uint64_t seed) {
  Layer l;
  const int64_t x_lo = x_dtype == DType::kI8 ? -128 : 0;
  l.x = random_integers(x_shape, x_dtype, seed, x_lo, x_lo + 255);
  l.x_zero_point = random_integers({}, DType::kI32, seed + 1, x_lo, x_lo + 255).item<int32_t>();
  const int64_t qmin = signed_weights ? -(int64_t{1} << (bits - 1)) : 0;
  const int64_t qmax = qmin + (int64_t{1} << bits) - 1;
  l.codes =
      random_integers(w_shape, signed_weights ? DType::kI8 : DType::kU8, seed + 2, qmin, qmax);
  l.w.packed = ops::pack_weight_codes(l.codes, bits, qmin);
  l.w.shape = w_shape;
  l.w.bits = bits;
  l.w.qmin = qmin;
  const int64_t out = w_shape[0];
  if (weight_zero_point) {
    l.w.zero_point = random_integers({out}, DType::kI32, seed + 3, qmin, qmax);
  }
  // |acc| is about sqrt(K) * 74 * (2^bits / 3.5): aim the outputs at ~+-100 steps.
  const double k = static_cast<double>(shape_numel(w_shape) / out);
  const double typical = std::sqrt(k) * 74.0 * std::ldexp(1.0, bits) / 3.5;
  l.requant.multiplier =
      random_tensor_in({out}, DType::kF32, seed + 4, 50 / typical, 150 / typical);
  l.requant.offset = random_tensor_in({out}, DType::kF32, seed + 5, -10, 10);
  l.requant.zero_point = x_dtype == DType::kI8 ? 3 : 128;
  l.requant.range = x_dtype == DType::kI8 ? QuantRange{-128, 127} : QuantRange{0, 255};
  return l;
}

PackedWeight on_gpu(const PackedWeight& w) {
  PackedWeight g = w;
  g.packed = w.packed.to(Device::cuda());
  if (w.zero_point.defined()) g.zero_point = w.zero_point.to(Device::cuda());
  return g;
}

Requantization on_gpu(const Requantization& r) {
  Requantization g = r;
  g.multiplier = r.multiplier.to(Device::cuda());
  if (r.offset.defined()) g.offset = r.offset.to(Device::cuda());
  return g;
}

// Implicit GEMM shapes (M = N*OH*OW, N = O/groups, K = kh*kw*C/groups): 1 and odd everywhere,
// tile edges, K split over blocks (few output tiles, K of 18 and 36 k-tiles), stride, padding,
// dilation, groups; then one-channel-per-group layers for the depthwise kernel (also C = 1).
const ConvCase kConvCases[] = {
    {1, 3, 7, 7, 5, 3, 3, 1, 1, 1, 1},      {2, 16, 9, 11, 33, 3, 3, 2, 1, 1, 1},
    {1, 64, 14, 14, 70, 1, 1, 1, 0, 1, 1},  {3, 37, 8, 8, 129, 3, 3, 1, 2, 2, 1},
    {2, 8, 10, 10, 12, 3, 3, 1, 1, 1, 4},   {1, 128, 7, 7, 65, 3, 3, 1, 1, 1, 1},
    {1, 256, 5, 5, 64, 3, 3, 2, 1, 1, 1},   {2, 64, 17, 17, 64, 1, 1, 2, 0, 1, 1},
    {1, 3, 31, 29, 16, 7, 7, 2, 3, 1, 1},   {2, 24, 13, 13, 24, 3, 3, 2, 1, 1, 24},
    {1, 32, 12, 12, 64, 3, 3, 1, 1, 1, 32}, {1, 5, 6, 6, 5, 5, 5, 1, 2, 1, 5},
    {2, 1, 9, 9, 7, 3, 3, 1, 1, 1, 1},
};

struct LinearCase {
  int64_t m, k, o;
};

// M (batch) 1..256, K and O of 1, odd sizes, tile edges and a long K (split).
const LinearCase kLinearCases[] = {{1, 1, 1},      {1, 7, 9},     {3, 64, 64},
                                   {16, 100, 130}, {67, 513, 33}, {1, 2048, 1000},
                                   {256, 96, 200}, {5, 4096, 70}, {64, 65, 63}};

// The variant of a case: signedness, zero points and activation dtype cycle with the case and the
// bit width, so that every combination occurs over the loops.
struct Variant {
  bool signed_weights, weight_zero_point;
  DType x_dtype;
};

Variant variant(int case_index, int bits) {
  const int v = case_index + bits;
  return {v % 2 == 0, (v / 2) % 2 == 1, (case_index / 2 + bits) % 2 == 0 ? DType::kI8 : DType::kU8};
}

std::string describe(const Variant& v, int bits) {
  return absl::StrCat("W", bits, v.signed_weights ? " signed" : " unsigned",
                      v.weight_zero_point ? " with zero points" : "", " x ", dtype_name(v.x_dtype));
}

// ---- the CPU path ----------------------------------------------------------------------------

// acc[n, o, oh, ow] = sum over the window of (x - zx)(w - zw[o]) by direct loops, then
// requantized with requantize_value.
TEST(PackedConv2d, CpuEqualsNaiveLoops) {
  const ConvCase c{2, 4, 6, 5, 6, 3, 2, 2, 1, 1, 2};
  for (int bits : {2, 5, 8}) {
    const Variant v = variant(1, bits);
    SCOPED_TRACE(describe(v, bits));
    const Layer l = random_layer({c.n, c.c, c.h, c.w}, {c.o, c.c / c.groups, c.kh, c.kw}, bits,
                                 v.signed_weights, true, v.x_dtype, 100 + bits);
    const Tensor acc = ops::packed_conv2d(l.x, l.x_zero_point, l.w, c.params());
    const Tensor codes = ops::packed_conv2d(l.x, l.x_zero_point, l.w, c.params(), l.requant);
    const int64_t oh_n = acc.size(2), ow_n = acc.size(3), cg = c.c / c.groups, og = c.o / c.groups;
    const std::vector<int32_t> x = l.x.to(DType::kI32).to_vector<int32_t>();
    const std::vector<int32_t> w = l.codes.to(DType::kI32).to_vector<int32_t>();
    const std::vector<int32_t> zw = l.w.zero_point.to_vector<int32_t>();
    const std::vector<float> mult = l.requant.multiplier.to_vector<float>();
    const std::vector<float> off = l.requant.offset.to_vector<float>();
    std::vector<double> expected_acc, expected_codes;
    for (int64_t n = 0; n < c.n; ++n) {
      for (int64_t o = 0; o < c.o; ++o) {
        for (int64_t oh = 0; oh < oh_n; ++oh) {
          for (int64_t ow = 0; ow < ow_n; ++ow) {
            int64_t sum = 0;
            for (int64_t ci = 0; ci < cg; ++ci) {
              for (int64_t i = 0; i < c.kh; ++i) {
                for (int64_t j = 0; j < c.kw; ++j) {
                  const int64_t ih = oh * c.stride - c.pad + i, iw = ow * c.stride - c.pad + j;
                  if (ih < 0 || ih >= c.h || iw < 0 || iw >= c.w) continue;
                  const int64_t channel = (o / og) * cg + ci;
                  const int64_t xv = x[((n * c.c + channel) * c.h + ih) * c.w + iw];
                  const int64_t wv = w[((o * cg + ci) * c.kh + i) * c.kw + j];
                  sum += (xv - l.x_zero_point) * (wv - zw[o]);
                }
              }
            }
            expected_acc.push_back(static_cast<double>(sum));
            const float real = std::fma(static_cast<float>(sum), mult[o], off[o]);
            const double q = std::rint(real) + static_cast<double>(l.requant.zero_point);
            expected_codes.push_back(
                std::min<double>(std::max<double>(q, static_cast<double>(l.requant.range.qmin)),
                                 static_cast<double>(l.requant.range.qmax)));
          }
        }
      }
    }
    expect_equal(Tensor::from_vector(expected_acc, acc.shape()), acc, "accumulators");
    ASSERT_EQ(codes.dtype(), code_dtype(l.requant.range));
    expect_equal(Tensor::from_vector(expected_codes, codes.shape()), codes, "requantized");
  }
}

TEST(PackedLinear, CpuEqualsIntLinearOfTheUnpackedCodes) {
  const Layer l = random_layer({5, 19}, {7, 19}, 3, false, true, DType::kU8, 200);
  const Tensor expected = ops::int_linear(l.x, l.x_zero_point, l.codes, l.w.zero_point);
  const Tensor acc = ops::packed_linear(l.x, l.x_zero_point, l.w);
  EXPECT_EQ(acc.shape(), (Shape{5, 7}));
  expect_equal(expected, acc, "packed_linear");
}

TEST(PackedConv2d, RejectsBadInputs) {
  const Layer l = random_layer({1, 4, 5, 5}, {3, 4, 3, 3}, 4, true, false, DType::kI8, 300);
  auto expect_error = [&](const PackedWeight& w, int64_t zx, const DType x_dtype,
                          const std::optional<Requantization>& r, const std::string& message) {
    EXPECT_THAT([&] { ops::packed_conv2d(l.x.to(x_dtype), zx, w, {}, r); },
                ::testing::ThrowsMessage<Error>(HasSubstr(message)))
        << message;
  };
  expect_error(l.w, 0, DType::kF32, std::nullopt, "input of dtype f32");
  expect_error(l.w, 200, DType::kI8, std::nullopt, "input zero point 200 is not a code");
  expect_error(l.w, -1, DType::kU8, std::nullopt, "input zero point -1 is not a code");
  PackedWeight w = l.w;
  w.bits = 9;
  expect_error(w, 0, DType::kI8, std::nullopt, "bits = 9 (expected 2..8)");
  w = l.w;
  w.bits = 3;  // the packed rows hold 4-bit codes
  expect_error(w, 0, DType::kI8, std::nullopt, "(expected u8 [3, 14] for 36 codes of 3 bits");
  w = l.w;
  w.qmin = -200;
  expect_error(w, 0, DType::kI8, std::nullopt, "weight codes [-200, -185] fit neither i8 nor u8");
  w = l.w;
  w.shape = {3, 36};
  expect_error(w, 0, DType::kI8, std::nullopt, "(expected [O, C/groups, kh, kw])");
  w = l.w;
  w.zero_point = Tensor::zeros({4}, DType::kI32);
  expect_error(w, 0, DType::kI8, std::nullopt, "weight zero point of shape [4]");
  Requantization r = l.requant;
  r.range = {-300, 300};
  expect_error(l.w, 0, DType::kI8, r, "requantization range [-300, 300]");
  r = l.requant;
  r.multiplier = Tensor::ones({4});
  expect_error(l.w, 0, DType::kI8, r, "requantization multiplier of shape [4]");
  r = l.requant;
  r.offset = Tensor::ones({3}, DType::kF64);
  expect_error(l.w, 0, DType::kI8, r, "requantization offset of shape [3] and dtype f64");
  EXPECT_THAT(
      [&] { ops::packed_linear(l.x, 0, l.w); },
      ::testing::ThrowsMessage<Error>(HasSubstr("packed_linear: input of shape [1, 4, 5, 5]")));
}

// ---- CUDA against the CPU reference ----------------------------------------------------------

void expect_gpu_matches_cpu(const Layer& l, const ConvCase* conv) {
  const Tensor x_gpu = l.x.to(Device::cuda());
  const PackedWeight w_gpu = on_gpu(l.w);
  const Requantization r_gpu = on_gpu(l.requant);
  if (conv != nullptr) {
    const Conv2dParams p = conv->params();
    expect_equal(ops::packed_conv2d(l.x, l.x_zero_point, l.w, p),
                 ops::packed_conv2d(x_gpu, l.x_zero_point, w_gpu, p), "accumulators");
    const Tensor expected = ops::packed_conv2d(l.x, l.x_zero_point, l.w, p, l.requant);
    const Tensor actual = ops::packed_conv2d(x_gpu, l.x_zero_point, w_gpu, p, r_gpu);
    ASSERT_EQ(expected.dtype(), actual.dtype());
    expect_equal(expected, actual, "requantized");
  } else {
    expect_equal(ops::packed_linear(l.x, l.x_zero_point, l.w),
                 ops::packed_linear(x_gpu, l.x_zero_point, w_gpu), "accumulators");
    expect_equal(ops::packed_linear(l.x, l.x_zero_point, l.w, l.requant),
                 ops::packed_linear(x_gpu, l.x_zero_point, w_gpu, r_gpu), "requantized");
  }
}

TEST(CudaPackedConv2d, EveryBitWidthAndShapeMatchesTheCpuBitForBit) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 12000;
  int index = 0;
  for (const ConvCase& c : kConvCases) {
    for (int bits = 2; bits <= 8; ++bits) {
      const Variant v = variant(index, bits);
      SCOPED_TRACE(c.name() + " " + describe(v, bits));
      const Layer l = random_layer({c.n, c.c, c.h, c.w}, {c.o, c.c / c.groups, c.kh, c.kw}, bits,
                                   v.signed_weights, v.weight_zero_point, v.x_dtype, seed += 10);
      expect_gpu_matches_cpu(l, &c);
    }
    ++index;
  }
}

TEST(CudaPackedLinear, EveryBitWidthAndShapeMatchesTheCpuBitForBit) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 13000;
  int index = 0;
  for (const LinearCase& c : kLinearCases) {
    for (int bits = 2; bits <= 8; ++bits) {
      const Variant v = variant(index, bits);
      SCOPED_TRACE(absl::StrCat("M", c.m, "_K", c.k, "_O", c.o, " ", describe(v, bits)));
      const Layer l = random_layer({c.m, c.k}, {c.o, c.k}, bits, v.signed_weights,
                                   v.weight_zero_point, v.x_dtype, seed += 10);
      expect_gpu_matches_cpu(l, nullptr);
    }
    ++index;
  }
}

// channels_last inputs (a tap's channels as 16-, 8- or 4-byte vectors when C and C/groups allow,
// at any kernel size; ragged channels byte by byte; depthwise layers) and channels_last outputs,
// reached here through the dispatch stub. K is split over blocks at C = 1024 and at C = 256 3x3.
TEST(CudaPackedConv2d, ChannelsLastInputsMatchTheCpuBitForBit) {
  OMPQ_REQUIRE_GPU();
  const ConvCase cases[] = {
      {2, 64, 9, 7, 70, 1, 1, 1, 0, 1, 1},    {2, 72, 9, 9, 33, 1, 1, 2, 1, 1, 1},
      {3, 36, 5, 6, 30, 1, 1, 1, 0, 2, 3},    {1, 1024, 3, 3, 64, 1, 1, 1, 0, 1, 1},
      {2, 37, 5, 5, 20, 1, 1, 1, 0, 1, 1},    {2, 16, 9, 11, 33, 3, 3, 2, 1, 1, 1},
      {2, 48, 7, 5, 40, 3, 3, 1, 1, 1, 1},    {1, 24, 9, 9, 17, 5, 5, 2, 2, 1, 1},
      {2, 20, 8, 7, 24, 3, 3, 1, 2, 2, 1},    {1, 64, 8, 8, 48, 3, 3, 2, 1, 1, 2},
      {1, 256, 5, 5, 64, 3, 3, 2, 1, 1, 1},   {1, 3, 31, 29, 16, 7, 7, 2, 3, 1, 1},
      {2, 24, 13, 13, 24, 3, 3, 2, 1, 1, 24},
  };
  uint64_t seed = 15000;
  int index = 0;
  for (const ConvCase& c : cases) {
    for (int bits : {2, 4, 8}) {
      const Variant v = variant(index, bits);
      const bool out_channels_last = (index + bits) % 2 == 1;
      SCOPED_TRACE(absl::StrCat(c.name(), " ", describe(v, bits), ", x NHWC, out ",
                                out_channels_last ? "NHWC" : "NCHW"));
      const Layer l = random_layer({c.n, c.c, c.h, c.w}, {c.o, c.c / c.groups, c.kh, c.kw}, bits,
                                   v.signed_weights, v.weight_zero_point, v.x_dtype, seed += 10);
      const Tensor x_gpu = in_memory_format(l.x.to(Device::cuda()), true);
      ASSERT_TRUE(is_channels_last(x_gpu));
      const PackedWeight w_gpu = on_gpu(l.w);
      const Shape out_shape = ops::conv2d_output_shape(l.x.shape(), l.w.shape, c.params());
      for (const std::optional<Requantization>& r :
           {std::optional<Requantization>(), std::optional(on_gpu(l.requant))}) {
        Tensor out = empty_nchw(out_shape, out_channels_last,
                                r ? code_dtype(r->range) : DType::kI32, x_gpu.device());
        packed_conv2d_stub(x_gpu.device(), out, x_gpu, l.x_zero_point, w_gpu, c.params(), r);
        const std::optional<Requantization> r_cpu =
            r ? std::optional(l.requant) : std::optional<Requantization>();
        expect_equal(ops::packed_conv2d(l.x, l.x_zero_point, l.w, c.params(), r_cpu),
                     out.contiguous(), r ? "requantized" : "accumulators");
      }
    }
    ++index;
  }
}

// Through the op: a channels_last input stays channels_last on the GPU (no NCHW copy), and so
// does the output, with the CPU's values.
TEST(CudaPackedConv2d, TheOpKeepsAChannelsLastInputsLayout) {
  OMPQ_REQUIRE_GPU();
  const ConvCase c{2, 64, 9, 7, 48, 1, 1, 1, 0, 1, 1};
  const Layer l =
      random_layer({c.n, c.c, c.h, c.w}, {c.o, c.c, c.kh, c.kw}, 4, true, false, DType::kU8, 16000);
  const Tensor x_gpu = in_memory_format(l.x.to(Device::cuda()), true);
  const Tensor out = ops::packed_conv2d(x_gpu, l.x_zero_point, on_gpu(l.w), c.params(),
                                        std::optional(on_gpu(l.requant)));
  EXPECT_TRUE(is_channels_last(out));
  expect_equal(ops::packed_conv2d(l.x, l.x_zero_point, l.w, c.params(), std::optional(l.requant)),
               out.contiguous(), "op");
}

// The largest accumulators a layer of 8-bit codes reaches: every product at its extreme, K = 4608
// (512 channels x 3x3), with zero points that make the centred codes -128 and 255 - 0.
TEST(CudaPackedConv2d, ExtremeCodesMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  Layer l = random_layer({1, 512, 4, 4}, {3, 512, 3, 3}, 8, false, false, DType::kI8, 14000);
  l.x = Tensor::full(l.x.shape(), -128, DType::kI8);
  l.x_zero_point = 127;
  l.codes = Tensor::full(l.codes.shape(), 255, DType::kU8);
  l.w.packed = ops::pack_weight_codes(l.codes, 8, 0);
  ConvCase c{1, 512, 4, 4, 3, 3, 3, 1, 1, 1, 1};
  expect_gpu_matches_cpu(l, &c);
}

}  // namespace
}  // namespace ompq
