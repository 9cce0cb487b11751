// CUDA quantization kernels against the CPU kernels on fresh random inputs: fake quantization per
// tensor and per channel (axis 0, 1 and last), its straight-through gradients with and without
// clipping, the candidates' range-search errors, quantize, dequantize and requantize, in f32 and
// f64, on odd shapes and on sizes large enough that the per-channel sums are split over blocks.
// Both devices run core/ops/quant_math.h with IEEE division and rint, so codes, fake-quantized
// values and input gradients are bit-exact; sums accumulate in double in different orders (scale
// gradient: rtol 1e-6 f32, 1e-12 f64); dequantize's (q - z) * s + b and the f32 power polynomial
// may be contracted differently (rtol 1e-6 / 1e-5). The QAT activation quantizer (EMA min/max
// ranges) on CUDA tracks the very ranges, scales and outputs of a CPU run, batch after batch.
// Needs a GPU (but for the bad-input test).
#include "core/ops/quant.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <vector>

#include "core/autograd.h"
#include "core/functional/concat.h"
#include "core/functional/elementwise.h"
#include "core/functional/reduce.h"
#include "cuda_test_util.h"
#include "layers/quant/act_quantizer.h"

namespace ompq {
namespace {

using testing::expect_close;
using testing::expect_equal;
using testing::on_gpu;
using testing::random_integers;
using testing::random_tensor_in;

struct QuantCase {
  const char* name;
  Shape shape;
  std::optional<int64_t> axis;
  QuantRange range;
  bool affine;
};

// Odd shapes on every axis kind, signed and unsigned ranges of 2..8 bits; the last two are large
// enough (>= 8192 elements per channel) that the per-channel sums split over blocks.
const QuantCase kCases[] = {
    {"per-tensor 8-bit signed", {3, 5, 7}, std::nullopt, {-128, 127}, false},
    {"per-tensor 4-bit unsigned affine", {2, 9, 11, 3}, std::nullopt, {0, 15}, true},
    {"axis 0 3-bit signed", {13, 3, 3, 3}, 0, {-4, 3}, false},
    {"axis 0 2-bit unsigned affine", {7, 21}, 0, {0, 3}, true},
    {"axis 1 5-bit signed affine", {4, 6, 5, 5}, 1, {-16, 15}, true},
    {"last axis 6-bit unsigned", {9, 4, 11}, -1, {0, 63}, false},
    {"per-tensor 8-bit unsigned affine, split", {3, 4, 97, 101}, std::nullopt, {0, 255}, true},
    {"axis 1 7-bit signed, split", {8, 3, 61, 67}, 1, {-64, 63}, false},
};

struct Params {
  Tensor scale, zero_point;
};

// Scales chosen so that a share of the inputs (in [-8, 8)) clips: the clipped branch of the
// gradients is covered too.
Params random_params(const QuantCase& c, DType dtype, uint64_t seed) {
  const int64_t channels = c.axis ? c.shape[(*c.axis + c.shape.size()) % c.shape.size()] : 1;
  const Shape shape = c.axis ? Shape{channels} : Shape{};
  const double levels = static_cast<double>(c.range.qmax - c.range.qmin);
  Params p;
  p.scale = random_tensor_in(shape, dtype, seed, 6.0 / levels, 14.0 / levels);
  if (c.affine) {
    p.zero_point = random_integers(shape, dtype, seed + 1, c.range.qmin, c.range.qmax);
  }
  return p;
}

TEST(CudaQuant, FakeQuantizeMatchesTheCpuBitForBit) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 9100;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const QuantCase& c : kCases) {
      SCOPED_TRACE(std::string(c.name) + " " + dtype_name(dtype));
      const Tensor x = random_tensor_in(c.shape, dtype, seed++, -8, 8);
      const Params p = random_params(c, dtype, seed++);
      expect_equal(
          ops::fake_quantize(x, p.scale, p.zero_point, c.axis, c.range),
          ops::fake_quantize(on_gpu(x), on_gpu(p.scale), on_gpu(p.zero_point), c.axis, c.range),
          "fake_quantize");
    }
  }
}

TEST(CudaQuant, FakeQuantizeGradientsMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 9200;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    const double rtol = dtype == DType::kF32 ? 1e-6 : 1e-12;
    for (const QuantCase& c : kCases) {
      for (bool clip : {true, false}) {
        SCOPED_TRACE(std::string(c.name) + " " + dtype_name(dtype) + (clip ? " clip" : ""));
        const Tensor x = random_tensor_in(c.shape, dtype, seed++, -8, 8);
        const Tensor grad = random_tensor_in(c.shape, dtype, seed++, -1, 1);
        const Params p = random_params(c, dtype, seed++);
        const ops::FakeQuantGradients cpu = ops::fake_quantize_backward(
            grad, x, p.scale, p.zero_point, c.axis, c.range, clip, true, true);
        const ops::FakeQuantGradients gpu =
            ops::fake_quantize_backward(on_gpu(grad), on_gpu(x), on_gpu(p.scale),
                                        on_gpu(p.zero_point), c.axis, c.range, clip, true, true);
        expect_equal(cpu.input, gpu.input, "grad input");
        expect_close(cpu.scale, gpu.scale, rtol, rtol, "grad scale");
        // Each gradient alone takes its own path through the kernel.
        expect_equal(
            cpu.input,
            ops::fake_quantize_backward(on_gpu(grad), on_gpu(x), on_gpu(p.scale),
                                        on_gpu(p.zero_point), c.axis, c.range, clip, true, false)
                .input,
            "grad input alone");
        expect_close(
            cpu.scale,
            ops::fake_quantize_backward(on_gpu(grad), on_gpu(x), on_gpu(p.scale),
                                        on_gpu(p.zero_point), c.axis, c.range, clip, false, true)
                .scale,
            rtol, rtol, "grad scale alone");
      }
    }
  }
}

TEST(CudaQuant, RangeSearchErrorsMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 9300;
  constexpr int64_t kCandidates = 5;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    const double rtol = dtype == DType::kF32 ? 1e-5 : 1e-12;
    for (const QuantCase& c : kCases) {
      SCOPED_TRACE(std::string(c.name) + " " + dtype_name(dtype));
      const Tensor x = random_tensor_in(c.shape, dtype, seed++, -8, 8);
      std::vector<Tensor> scales, zero_points;
      for (int64_t k = 0; k < kCandidates; ++k) {
        const Params p = random_params(c, dtype, seed++);
        scales.push_back(p.scale.reshape({1, -1}));
        if (c.affine) zero_points.push_back(p.zero_point.reshape({1, -1}));
      }
      Tensor s = cat(scales, 0), z = c.affine ? cat(zero_points, 0) : Tensor();
      if (!c.axis) {
        s = s.view({kCandidates});
        if (z.defined()) z = z.view({kCandidates});
      }
      expect_close(ops::fake_quantize_error(x, s, z, c.axis, c.range, 2.4),
                   ops::fake_quantize_error(on_gpu(x), on_gpu(s), on_gpu(z), c.axis, c.range, 2.4),
                   rtol, 0, "fake_quantize_error");
    }
  }
}

TEST(CudaQuant, QuantizeAndDequantizeMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 9400;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const QuantCase& c : kCases) {
      SCOPED_TRACE(std::string(c.name) + " " + dtype_name(dtype));
      const Tensor x = random_tensor_in(c.shape, dtype, seed++, -8, 8);
      const Params p = random_params(c, dtype, seed++);
      const Tensor codes = ops::quantize(x, p.scale, p.zero_point, c.axis, c.range);
      const Tensor codes_gpu =
          ops::quantize(on_gpu(x), on_gpu(p.scale), on_gpu(p.zero_point), c.axis, c.range);
      ASSERT_EQ(codes.dtype(), codes_gpu.dtype());
      expect_equal(codes, codes_gpu, "quantize");
      const int64_t channels = p.scale.numel();
      const Tensor bias = c.axis ? random_tensor_in({channels}, dtype, seed++, -1, 1) : Tensor();
      const double rtol = dtype == DType::kF32 ? 1e-6 : 1e-14;
      expect_close(
          ops::dequantize(codes, p.scale, p.zero_point, c.axis, bias),
          ops::dequantize(codes_gpu, on_gpu(p.scale), on_gpu(p.zero_point), c.axis, on_gpu(bias)),
          rtol, rtol, "dequantize");
    }
  }
}

TEST(CudaQuant, QuantizeToInt32CodesMatchesTheCpu) {
  OMPQ_REQUIRE_GPU();
  const QuantRange range{-40000, 40000};  // wider than 16 bits: i32 codes
  const Tensor x = random_tensor_in({5, 77}, DType::kF64, 9450, -1, 1);
  const Tensor scale = Tensor::scalar(3e-5, DType::kF64);
  expect_equal(ops::quantize(x, scale, Tensor(), std::nullopt, range),
               ops::quantize(on_gpu(x), on_gpu(scale), Tensor(), std::nullopt, range), "quantize");
}

TEST(CudaQuant, RequantizeMatchesTheCpuBitForBit) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 9500;
  const Shape shape{3, 17, 9, 13};
  for (QuantRange range : {QuantRange{-128, 127}, QuantRange{0, 255}, QuantRange{0, 15}}) {
    for (bool with_offset : {false, true}) {
      const Tensor acc = random_integers(shape, DType::kI32, seed++, -200000, 200000);
      const Tensor multiplier = random_tensor_in({17}, DType::kF32, seed++, 1e-4, 1e-3);
      const Tensor offset =
          with_offset ? random_tensor_in({17}, DType::kF32, seed++, -20, 20) : Tensor();
      for (int64_t zero_point : {int64_t{0}, int64_t{7}}) {
        expect_equal(
            ops::requantize(acc, multiplier, offset, zero_point, 1, range),
            ops::requantize(on_gpu(acc), on_gpu(multiplier), on_gpu(offset), zero_point, 1, range),
            "requantize");
      }
    }
  }
}

// HAWQ-V3's QuantAct over batches of changing ranges: the min/max reduce on the device, the EMA
// and the scale are computed on the host in double (act_quantizer.cc), so the running range, the
// scale and zero point, the fake-quantized outputs and their clipped straight-through gradients
// equal the CPU's exactly; frozen, both keep the range.
TEST(CudaQuant, EmaActivationQuantizerTracksTheCpuRanges) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 9600;
  // QAT's signed symmetric 8 bits and unsigned 4 bits without zero point; an affine 4-bit spec.
  for (const nn::QuantSpec& spec :
       {nn::qat_activation_spec(8), nn::qat_activation_spec(4), nn::ptq_activation_spec(4)}) {
    SCOPED_TRACE(spec.str());
    nn::ActivationQuantizer cpu(spec, nn::ActRange::kEmaMinMax);
    nn::ActivationQuantizer gpu(spec, nn::ActRange::kEmaMinMax);
    gpu.to(Device::cuda());
    for (int batch = 0; batch < 6; ++batch) {
      SCOPED_TRACE("batch " + std::to_string(batch));
      if (batch == 4) {
        cpu.set_frozen(true);
        gpu.set_frozen(true);
      }
      const double lo = -1.0 - 0.7 * batch, hi = 2.0 + 0.9 * (batch % 3);
      const Tensor x = random_tensor_in({5, 3, 7, 9}, DType::kF32, seed++, lo, hi);
      Tensor x_cpu = x.clone().set_requires_grad(true);
      Tensor x_gpu = on_gpu(x).set_requires_grad(true);
      const Tensor y_cpu = cpu.forward(x_cpu), y_gpu = gpu.forward(x_gpu);
      ASSERT_TRUE(y_gpu.device().is_cuda());
      for (const auto& [name, value] : cpu.state_dict()) {
        ASSERT_TRUE(gpu.state_dict().at(name).device().is_cuda()) << name;
        expect_equal(value, gpu.state_dict().at(name), name);
      }
      expect_equal(y_cpu, y_gpu, "output");
      const Tensor grad = random_tensor_in(x.shape(), DType::kF32, seed++, -1, 1);
      sum(mul(y_cpu, grad)).backward();
      sum(mul(y_gpu, on_gpu(grad))).backward();
      expect_equal(x_cpu.grad(), x_gpu.grad(), "grad input");
    }
  }
}

TEST(ActivationQuantizer, EmptyBatchIsAnError) {
  nn::ActivationQuantizer q(nn::qat_activation_spec(8), nn::ActRange::kEmaMinMax);
  EXPECT_THAT(
      [&] {
        q.forward(Tensor::zeros({0, 3}));
      },
      ::testing::ThrowsMessage<Error>(
          ::testing::HasSubstr("ActivationQuantizer: an empty batch of shape [0, 3]")));
}

}  // namespace
}  // namespace ompq
