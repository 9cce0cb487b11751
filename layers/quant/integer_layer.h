// CPU integer inference from a packed model: each packed layer runs as
//   input codes (i8/u8, the layer's input quantizer)  x  unpacked weight codes
//   -> int32 accumulators of zero-point-centred products (ops::int_conv2d / ops::int_linear)
//   -> real output = acc * (input scale * weight scale[o]) + bias[o]   (ops::dequantize)
// which is the fake-quantized layer's output computed exactly up to the final float rounding. On
// the CPU the three steps run as one oneDNN int8 convolution (Int8Conv2d, core/ops/int8_conv.h:
// the same accumulators, the rescaling and bias fused, channels_last in and out); elsewhere as
// the integer reference ops. A layer whose input is real-valued (PTQ's first layer) multiplies by
// its dequantized weights.
// Between layers the values stay real-valued (ReLU, residual adds, pooling, as in the model),
// except where load_integer_model finds, in the traced graph:
// - a residual add (its folded batch norm's fused add) whose shortcut a packed conv earlier in the
//   forward pass quantizes as its input (a block's first conv, for an identity shortcut): the conv
//   before the add adds that conv's input codes itself, in its int8 epilogue, and the batch norm
//   skips the add. The shortcut enters as those codes, i.e. quantized by the activation quantizer
//   that quantizes it for its other reader in the fake-quantized model too (the model adds it
//   unquantized: the difference is at most half a step of that quantizer);
// - a conv whose output goes through its folded batch norm's ReLU/ReLU6 (or none, and its residual
//   add when the conv adds it) into packed convs' input quantizers, all of the same
//   quantization, and into nothing else but residual adds that their producers add: that conv
//   then writes those input codes itself (requantized, the activation a clip on the codes), and
//   the readers take them without an f32 round trip.
#pragma once

#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "core/ops/int8_conv.h"
#include "core/ops/norm_math.h"
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
  // x: the layer's real-valued input (conv: [N, C, H, W]; linear: [..., K]), or, for a layer with
  // a quantized input on the CPU path, that input's codes (i8/u8, as a layer that
  // writes_next_input_codes() returns them).
  Tensor forward(const Tensor& x) override;

  // Whether write_next_input_codes() applies: a conv with a quantized input on the CPU int8 path.
  bool can_write_codes() const;
  // From now on forward() returns the codes of quantize(activation(output), next_input) instead
  // of the real output: the int8 convolution requantizes with multiplier / next scale and bias /
  // next scale, and clips the codes at the activation's bounds. It equals the real path up to
  // rounding: where activation(output) / next scale lies within a float rounding of a code
  // boundary, a code may differ by one. Throws unless can_write_codes().
  void write_next_input_codes(const QuantSpec& next_input, NormActivation activation);
  bool writes_codes() const { return next_input_.has_value(); }
  // From now on forward() adds, before the output's activation and rounding, the shortcut
  // `source` quantized as its input earlier in the same forward pass (its input codes, worth
  // source's input scale per step). Both layers must can_write_codes(); throws otherwise.
  void add_shortcut_of(IntegerLayer& source);
  bool adds_shortcut() const { return shortcut_.has_value(); }

 private:
  // The CPU path's convolution with what write_next_input_codes and add_shortcut_of set.
  Int8Conv2dSpec int8_spec() const;

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
  std::optional<QuantSpec> next_input_;  // the codes forward() writes, if it writes codes
  NormActivation next_activation_ = NormActivation::kIdentity;
  std::optional<QuantSpec> shortcut_;  // the quantization of the shortcut forward() adds
  // Where forward() leaves its input codes for a later layer's shortcut (set by add_shortcut_of on
  // the source), and where this layer takes its shortcut from (the source's).
  std::shared_ptr<Tensor> input_codes_out_;
  std::shared_ptr<Tensor> shortcut_in_;
};

// Puts `packed` into `model`, an instance of the architecture it was exported from: every packed
// layer's Conv2d / Linear is replaced by an IntegerLayer, its folded batch norm passes through, and
// the other parameters and buffers are loaded from packed.float_state, which must hold exactly
// them. Checks everything (names, kinds, shapes, conv geometry, the float state) before changing
// the model; on error nothing is modified.
absl::Status load_integer_model(Model& model, const PackedModel& packed,
                                IntegerKernels kernels = IntegerKernels::kFastest);

}  // namespace ompq::nn
