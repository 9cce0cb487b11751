// Packed integer export of a quantized model: every quantized layer's weight as integer codes
// packed at its bit-width (2..8) with its scales, and the rest of the model's state as is.
//
// File layout (safetensors). For a quantized layer <L>:
//   <L>.weight_packed      u8 [O, ceil(K * bits / 8)]: output channel o's K = weight.numel() / O
//                          codes in packed weight order (a conv weight [O, C/groups, kh, kw] as
//                          [O, kh, kw, C/groups]: ops::pack_weight_codes), each stored as
//                          code - qmin in `bits` bits, as a little-endian bit stream (code j in
//                          stream bits [j*bits, (j+1)*bits), least significant bit first; stream
//                          bit i is bit i % 8 of byte i / 8), each row padded with zero bits to
//                          a whole byte (core/ops/quant_math.h);
//   <L>.weight_scale       f32 [O] (per output channel) or [] (per tensor);
//   <L>.weight_zero_point  f32, like the scale, integer-valued (affine weights only);
//   <L>.bias               f32 [O]: the layer's bias with its batch norm folded in (if any);
//   <L>.input_scale        f32 [] and <L>.input_zero_point f32 [] (affine inputs only): the
//                          per-tensor input quantizer (absent when the input stays real-valued).
// Every other parameter and buffer keeps its model name; the folded batch norms' and the packed
// layers' own float tensors are left out. Metadata "ompq.format" = "packed-v2" and "ompq.layers"
// = a JSON array, in execution order, of {"name", "kind" ("conv2d"|"linear"), "weight_shape",
// "stride", "padding", "dilation", "groups" (conv2d), "weight": {"bits", "signed", "symmetric",
// "per_channel"}, "input": {"bits", "signed", "symmetric"} or null, "folded_batch_norm" (name or
// "")}.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/ops/conv.h"
#include "core/safetensors.h"
#include "layers/models/model.h"
#include "layers/quant/quant_spec.h"

namespace ompq::nn {

struct PackedLayer {
  std::string name;  // the model's layer name, e.g. "layer1.0.conv1"
  QuantizableLayer::Kind kind = QuantizableLayer::Kind::kConv2d;
  Shape weight_shape;
  Conv2dParams params;             // conv2d only
  QuantSpec weight;                // axis 0 or per tensor; f32 scale (and zero point)
  Tensor packed_weight;            // u8 [O, ceil(K * bits / 8)]
  Tensor bias;                     // f32 [O] or undefined
  std::optional<QuantSpec> input;  // per tensor; nullopt: the input is real-valued
  std::string folded_batch_norm;   // the batch norm folded into the weights, or ""

  // The weight's integer codes, of the weight's shape (i8 for signed, u8 for unsigned specs).
  Tensor weight_codes() const;
  // The dequantized weight (what the fake-quantized layer multiplies by), f32.
  Tensor dequantized_weight() const;
};

struct PackedModel {
  std::vector<PackedLayer> layers;  // execution order
  TensorMap float_state;            // every other parameter and buffer
};

// Whether state_dict entry `name` belongs to a packed layer (its own weight and bias, its
// quantizers) or to a batch norm folded into one: what the packed model does not keep as float
// state.
bool is_packed_state(const std::string& name, const std::vector<PackedLayer>& layers);

// The packed form of a model whose layers quantize_model() replaced: weights pass through their
// weight quantizer (so a min/max quantizer takes the current weights' range) and are stored as
// codes. Input quantizers must have seen data. Throws an Error naming the layer otherwise, or when
// the model has no quantized layer.
PackedModel pack_model(const Model& model);

absl::Status save_packed(const std::string& path, const PackedModel& packed);
// Every problem (missing tensor, a size that disagrees with the metadata, malformed metadata)
// is an error status naming the file and the layer.
absl::StatusOr<PackedModel> load_packed(const std::string& path);

}  // namespace ompq::nn
