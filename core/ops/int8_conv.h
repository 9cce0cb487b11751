// Int8 convolution for inference on the CPU through oneDNN's int8 primitives: a quantized layer's
// weights prepared once (zero-point-centred codes as s8, reordered into oneDNN's layout per input
// shape, primitives cached per shape), run on u8/s8 activation codes with a zero point, int32
// accumulation, and a fused per-output-channel epilogue that writes either requantized codes for
// the next layer or real values.
//
// It computes what ops::packed_conv2d / ops::int_conv2d followed by ops::requantize or
// ops::dequantize compute (core/ops/integer.h), with one difference in rounding: oneDNN 2.6 adds
// the bias before scaling, so the epilogue evaluates multiplier * (acc + offset / multiplier)
// where the reference evaluates fma(acc, multiplier, offset). Without an offset both are the
// single rounding of acc * multiplier; with one, the two differ by at most one code where the
// exact value lies within a rounding error of a code boundary (real outputs: by a float
// rounding). oneDNN also adds the output zero point before rounding half to even, so an exact tie
// under an odd zero point lands one code from the reference's.
//
// Without VNNI (AVX2), oneDNN multiplies u8 by s8 with vpmaddubsw, which saturates the int16 sum
// of two adjacent products: exact while largest input code * 2 * largest |centred weight| <=
// 32767, i.e. always for weights within +-64 (up to 7 bits), and for 8-bit weights when the
// input's codes stay below 128 (e.g. signed symmetric activations after a ReLU). Each call
// measures its input's largest code where that decides; otherwise the weights run split as
// w = 64 * high + low (|high|, |low| <= 64): two convolutions into int32, combined exactly
// (acc = 64 * acc_high + acc_low) before the epilogue, which then is the reference's formula.
//
// A residual block's add runs in the epilogue too: the shortcut, codes of its own per-tensor
// quantizer, is added before the activation's clip and the rounding (requantize_add_value below).
// With code outputs this is oneDNN's sum post-op (the shortcut copied into the output buffer, read
// back with its scale and zero point), rounding like the bias above: within one code of the
// reference at a code boundary. Real outputs, and the split form, add it in the combining pass,
// which is the reference's formula.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>

#include "core/ops/conv.h"
#include "core/ops/quant.h"
#include "core/ops/quant_math.h"
#include "core/tensor.h"

namespace ompq {

// requantize_value (core/ops/quant_math.h) of a residual block's output, the reference for codes
// written with a residual: `shortcut`, the shortcut's dequantize_value in output steps, is added
// to the convolution's value before the rounding.
inline float requantize_add_value(int32_t acc, float multiplier, float offset, float shortcut,
                                  float zero_point, float qmin, float qmax) {
  return quant_clamp(
      std::rint(std::fma(static_cast<float>(acc), multiplier, offset) + shortcut) + zero_point,
      qmin, qmax);
}

// The codes an int8 convolution writes: requantize_value(acc, multiplier[o], offset[o],
// zero_point, range) of dtype code_dtype(range) (i8 or u8).
struct Int8OutputCodes {
  int64_t zero_point = 0;
  QuantRange range;
};

// The shortcut a residual block adds to the convolution's output: codes (u8 or i8) of a per-tensor
// quantizer, worth scale * (code - zero_point) in the output's units (output steps for code
// outputs, real values for real ones).
struct Int8Residual {
  DType dtype = DType::kU8;
  float scale = 1.0f;
  int64_t zero_point = 0;  // a code of dtype
};

struct Int8Conv2dSpec {
  Tensor weight_codes;       // i8 or u8 [O, C/groups, kh, kw], CPU
  Tensor weight_zero_point;  // i32 [O], or undefined (0)
  Conv2dParams params;
  Tensor multiplier;  // f32 [O]: input scale * weight scale[o]
  Tensor offset;      // f32 [O] or undefined: the folded bias, in output units
  // nullopt: real f32 outputs acc * multiplier[o] + offset[o].
  std::optional<Int8OutputCodes> output;
  // Set: forward() takes the shortcut codes and adds them before the output's rounding and clip.
  std::optional<Int8Residual> residual;
};

class Int8Conv2d {
 public:
  // Validates the spec and prepares the weights; throws an Error naming the bad value.
  explicit Int8Conv2d(const Int8Conv2dSpec& spec);

  // x: [N, C, H, W] codes (u8 or s8) with zero point x_zero_point (a code of x's dtype), NCHW or
  // channels_last (computed in channels_last; an NCHW input is copied once). Returns [N, O, OH, OW]
  // channels_last, codes or f32 as the spec says. residual: the shortcut codes, [N, O, OH, OW] of
  // the spec's residual dtype in either layout, given exactly when the spec has a residual.
  Tensor forward(const Tensor& x, int64_t x_zero_point, const Tensor& residual = Tensor()) const;

  // Whether an input whose largest code (as u8; s8 codes count + 128 where one is negative) is
  // `largest_input_code` runs the split form (see above).
  bool splits(int32_t largest_input_code) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace ompq
