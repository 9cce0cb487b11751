// CPU integer inference from a packed model: each packed layer runs as
//   input codes (i8/u8, the layer's input quantizer)  x  unpacked weight codes
//   -> int32 accumulators of zero-point-centred products (ops::int_conv2d / ops::int_linear)
//   -> real output = acc * (input scale * weight scale[o]) + bias[o]   (ops::dequantize)
// which is the fake-quantized layer's output computed exactly up to the final float rounding. On
// the CPU the three steps run as one oneDNN int8 convolution (Int8Conv2d, core/ops/int8_conv.h:
// the same accumulators, the rescaling and bias fused, channels_last in and out); elsewhere as
// the integer reference ops. A layer whose input is real-valued (PTQ's first layer) multiplies by
// its dequantized weights.
// Everything between layers (ReLU, residual adds, pooling) stays real-valued, as in the model.
#pragma once

#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "core/ops/int8_conv.h"
#include "layers/models/model.h"
#include "layers/module.h"
#include "layers/quant/packed_model.h"

namespace ompq::nn {

// kFastest: the CPU's oneDNN int8 path where the weights are on the CPU; kReference: the integer
// reference ops everywhere (what the fast path is tested against).
enum class IntegerKernels { kFastest, kReference };

class IntegerLayer : public Module {
 public:
  explicit IntegerLayer(const PackedLayer& layer,
                        IntegerKernels kernels = IntegerKernels::kFastest);
  // x: the layer's real-valued input (conv: [N, C, H, W]; linear: [..., K]).
  Tensor forward(const Tensor& x) override;

 private:
  QuantizableLayer::Kind kind_;
  Conv2dParams params_;
  Tensor codes_;        // i8/u8 weight codes, the weight's shape ([O, K] for linear)
  Tensor zero_points_;  // i32 [O], undefined for symmetric weights
  Tensor bias_;         // f32 [O] or undefined
  std::optional<QuantSpec> input_;
  Tensor multiplier_;   // f32 [O]: input scale * weight scale (quantized input only)
  Tensor real_weight_;  // dequantized weights (real-valued input only)
  std::optional<Int8Conv2d> cpu_conv_;  // the CPU path (quantized input only)
  int64_t x_zero_point_ = 0;
};

// Puts `packed` into `model`, an instance of the architecture it was exported from: every packed
// layer's Conv2d / Linear is replaced by an IntegerLayer, its folded batch norm passes through, and
// the other parameters and buffers are loaded from packed.float_state, which must hold exactly
// them. Checks everything (names, kinds, shapes, conv geometry, the float state) before changing
// the model; on error nothing is modified.
absl::Status load_integer_model(Model& model, const PackedModel& packed,
                                IntegerKernels kernels = IntegerKernels::kFastest);

}  // namespace ompq::nn
