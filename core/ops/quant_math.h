// Per-element quantization math shared by the CPU and CUDA kernels, so that the CPU tests cover
// exactly what the GPU runs.
//
// A real value x maps to the integer code q = clamp(round(x / scale) + zero_point, qmin, qmax) and
// back to x^ = (q - zero_point) * scale; fake quantization is the round trip. Rounding is half to
// even (torch.round, which both reference implementations use: BRECQ's round_ste and HAWQ-V3's
// linear_quantize), i.e. rint() in the default rounding mode, not std::round (half away from zero).
// The code is formed by dividing by the scale, as BRECQ does. Scales must be positive; zero points
// are integer-valued and held in the compute type.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/dtype.h"
#include "core/ops/softmax_math.h"

namespace ompq {

// The code range of a `bits`-bit integer: [-2^(bits-1), 2^(bits-1) - 1] or [0, 2^bits - 1].
OMPQ_HD constexpr int64_t quant_qmin(int bits, bool is_signed) {
  return is_signed ? -(int64_t{1} << (bits - 1)) : 0;
}
OMPQ_HD constexpr int64_t quant_qmax(int bits, bool is_signed) {
  return is_signed ? (int64_t{1} << (bits - 1)) - 1 : (int64_t{1} << bits) - 1;
}

template <typename T>
OMPQ_HD inline T quant_clamp(T q, T qmin, T qmax) {
  return q < qmin ? qmin : (q > qmax ? qmax : q);
}

// The code of x, as a value of T (exact: codes are small integers).
template <typename T>
OMPQ_HD inline T quantize_value(T x, T scale, T zero_point, T qmin, T qmax) {
  return quant_clamp(std::rint(x / scale) + zero_point, qmin, qmax);
}

template <typename T>
OMPQ_HD inline T dequantize_value(T q, T scale, T zero_point) {
  return (q - zero_point) * scale;
}

template <typename T>
OMPQ_HD inline T fake_quantize_value(T x, T scale, T zero_point, T qmin, T qmax) {
  return dequantize_value(quantize_value(x, scale, zero_point, qmin, qmax), scale, zero_point);
}

// Gradients of fake quantization with rounding treated as the identity (the straight-through
// estimator) and clamping differentiated as clamp, which is what BRECQ's
// clamp(round_ste(x / scale) + zero_point, qmin, qmax) gets from autograd:
//   d x^ / d x     = 1 inside the range (qmin <= round(x / s) + z <= qmax, bounds included, as
//                    torch.clamp passes the gradient at its bounds), 0 outside ("clipped");
//                    with clip == false, 1 everywhere (HAWQ-V3's unclipped STE);
//   d x^ / d scale = round(x / s) - x / s inside the range (LSQ's step-size gradient, without its
//                    gradient scaling, as BRECQ learns activation step sizes), and the clamped code
//                    minus the zero point outside it.
// The zero point gets no gradient: BRECQ keeps it fixed while the step size is learned.
template <typename T>
struct FakeQuantElementGrads {
  T input;
  T scale;
};

template <typename T>
OMPQ_HD inline FakeQuantElementGrads<T> fake_quantize_grads(T grad, T x, T scale, T zero_point,
                                                            T qmin, T qmax, bool clip) {
  const T v = x / scale;
  const T rounded = std::rint(v);
  const T q = rounded + zero_point;
  const bool inside = q >= qmin && q <= qmax;
  const T dscale = inside ? rounded - v : quant_clamp(q, qmin, qmax) - zero_point;
  return {(inside || !clip) ? grad : T(0), grad * dscale};
}

// Requantization of an int32 accumulator of products of zero-point-centred codes: the code, in the
// next quantizer's range, of the real value acc * multiplier + offset expressed in output steps
// (multiplier = input scale * weight scale / output scale, offset = bias / output scale).
// One explicit fused multiply-add: compilers may or may not contract a * b + c (GCC by
// -ffp-contract, nvcc by --fmad), and the CPU and GPU codes must round the same value.
OMPQ_HD inline float requantize_value(int32_t acc, float multiplier, float offset, float zero_point,
                                      float qmin, float qmax) {
  return quant_clamp(std::rint(std::fma(static_cast<float>(acc), multiplier, offset)) + zero_point,
                     qmin, qmax);
}

// ---- range search ---------------------------------------------------------------------------
// BRECQ scores a candidate range by mean |x - fake_quantize(x)|^p (p = 2.4). f32 evaluates the
// power as exp(p * ln a) with branch-free polynomials (Cephes logf, relative error ~1e-7, and
// softmax_expf), which vectorize where powf is a scalar libm call per element and candidate; f64
// keeps std::pow.
OMPQ_HD inline float quant_logf(float x) {  // x > 0, finite, normal
  int32_t bits;
  memcpy(&bits, &x, sizeof(bits));
  int32_t e = ((bits >> 23) & 0xff) - 126;  // x = m * 2^e, m in [0.5, 1)
  bits = (bits & 0x807fffff) | 0x3f000000;
  float m;
  memcpy(&m, &bits, sizeof(m));
  const bool below = m < 0.707106781186547524f;  // keep m - 1 in [sqrt(0.5) - 1, sqrt(2) - 1)
  e = below ? e - 1 : e;
  m = below ? m + m - 1.0f : m - 1.0f;
  const float z = m * m;
  float y = 7.0376836292e-2f;
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  const float fe = static_cast<float>(e);
  y += -2.12194440e-4f * fe;  // ln 2 in two parts, as in softmax_expf
  y += -0.5f * z;
  return m + y + 0.693359375f * fe;
}

template <typename T>
OMPQ_HD inline T quant_lp_power(T a, T p) {  // a >= 0
  if constexpr (sizeof(T) == sizeof(float)) {
    return a > 0.0f ? softmax_expf(p * quant_logf(a)) : 0.0f;
  } else {
    return std::pow(a, p);
  }
}

// |x - fake_quantize(x)|^p for one candidate scale and zero point.
template <typename T>
OMPQ_HD inline T fake_quantize_lp_error(T x, T scale, T zero_point, T qmin, T qmax, T p) {
  return quant_lp_power(std::fabs(x - fake_quantize_value(x, scale, zero_point, qmin, qmax)), p);
}

// ---- packed storage -----------------------------------------------------------------------------
// A row of `count` codes of `bits` bits (2..8) is one little-endian bit stream: code j occupies
// stream bits [j * bits, (j + 1) * bits), least significant bit first, and stream bit i is bit
// (i % 8) of byte i / 8. So 4-bit codes a, b share byte a | b << 4, and a 3-bit code may straddle
// two bytes. A row takes ceil(count * bits / 8) bytes; the unused high bits of its last byte are 0.
// Stored values are unsigned: code - qmin.

OMPQ_HD constexpr int64_t packed_row_bytes(int64_t count, int bits) {
  return (count * bits + 7) / 8;
}

// ORs the stored value `value` (< 2^bits) of code `index` into a zero-initialized packed row.
OMPQ_HD inline void pack_value(uint8_t* row, int64_t index, int bits, uint32_t value) {
  const int64_t bit = index * bits;
  const int64_t byte = bit >> 3;
  const int shift = static_cast<int>(bit & 7);
  row[byte] |= static_cast<uint8_t>(value << shift);
  if (shift + bits > 8) row[byte + 1] |= static_cast<uint8_t>(value >> (8 - shift));
}

// The stored value of code `index` of a packed row.
OMPQ_HD inline uint32_t unpack_value(const uint8_t* row, int64_t row_bytes, int64_t index,
                                     int bits) {
  const int64_t bit = index * bits;
  const int64_t byte = bit >> 3;
  uint32_t word = row[byte];
  if (byte + 1 < row_bytes) word |= static_cast<uint32_t>(row[byte + 1]) << 8;
  return (word >> (bit & 7)) & ((1u << bits) - 1u);
}

}  // namespace ompq
