// QuantSpec: the one description of a uniform quantizer that fake quantization (training), PTQ
// reconstruction, export and the integer kernels all use. A value x maps to the integer code
//   q = clamp(round(x / scale) + zero_point, qmin, qmax)   (round half to even)
// and back to (q - zero_point) * scale, with [qmin, qmax] the signed or unsigned `bits`-bit range.
// The spec's tensors belong to the quantizer that computes them; a spec with undefined tensors is
// a template (bits, signedness, symmetry, granularity) that a quantizer fills in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/ops/quant.h"
#include "core/tensor.h"

namespace ompq::nn {

struct QuantSpec {
  int bits = 8;           // 2..8
  bool is_signed = true;  // codes in [-2^(bits-1), 2^(bits-1) - 1], else [0, 2^bits - 1]
  bool symmetric = true;  // zero point 0 (not stored); else affine with a zero point
  std::optional<int64_t>
      axis;           // per-channel along this dim of the quantized tensor, else per tensor
  Tensor scale;       // [C] per channel, 0-dim per tensor; positive
  Tensor zero_point;  // like scale, integer-valued; undefined when symmetric

  int64_t qmin() const;
  int64_t qmax() const;
  QuantRange range() const { return {qmin(), qmax()}; }
  // "4-bit unsigned affine per-channel(axis 0)".
  std::string str() const;
};

// Throws an Error naming `who` unless the description is valid: bits in 2..8, and when the
// tensors are defined, a scale of the granularity's shape and a zero point exactly when affine.
void check_spec(const QuantSpec& spec, const char* who);

// The reference method's quantizers (docs/METHOD.md sections 4.3 and 5.2); tensors undefined.
// QAT (HAWQ-V3) weights: signed, symmetric, per output channel.
QuantSpec qat_weight_spec(int bits);
// QAT activations: 8 bits signed symmetric; any other width unsigned without zero point (OMPQ's
// "asymmetric" mode, which HAWQ uses only at 4 bits).
QuantSpec qat_activation_spec(int bits);
// PTQ (BRECQ) weights: unsigned affine per output channel.
QuantSpec ptq_weight_spec(int bits);
// PTQ activations: unsigned affine per tensor.
QuantSpec ptq_activation_spec(int bits);

// Scale and zero point (zero point only when affine) for per-channel or per-tensor ranges
// [min, max] (vectors of one entry per tensor), computed in double:
//   symmetric signed:   scale = max(|min|, |max|) / qmax                       (HAWQ-V3)
//   symmetric unsigned: scale = (max - min) / (2^bits - 1)                     (HAWQ-V3/OMPQ)
//   affine:             scale = (max - min) / (2^bits - 1), zero = round(-min / scale)  (BRECQ)
// Scales are floored at 1e-8 (HAWQ's guard against an all-zero channel).
struct RangeParams {
  std::vector<double> scale;
  std::vector<double> zero_point;  // empty when symmetric
};
RangeParams params_from_range(const std::vector<double>& min, const std::vector<double>& max,
                              const QuantSpec& spec);

// The spec with its tensors converted to `dtype` (a no-op when they already have it): quantizers
// keep f32 parameters while gradient checks run in f64.
QuantSpec spec_in_dtype(const QuantSpec& spec, DType dtype);
// Copies per-channel values (one per channel, or one for a per-tensor spec) into the spec's scale
// and zero point without autograd.
void write_range_params(const QuantSpec& spec, const RangeParams& params);

// Fake quantization of x with the spec's tensors (ompq::fake_quantize: straight-through
// gradients, LSQ gradient to a scale that requires grad).
Tensor fake_quantize(const Tensor& x, const QuantSpec& spec, bool clip_gradient = true);
// Integer codes of x (i8 or u8: code_dtype of the range).
Tensor quantize(const Tensor& x, const QuantSpec& spec);
// Real values of codes.
Tensor dequantize(const Tensor& codes, const QuantSpec& spec);

}  // namespace ompq::nn
