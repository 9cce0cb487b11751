// Swapping a model's quantizable layers (Model::quantizable_layers(), by dotted name) for quantized
// ones in place, with per-layer weight bits (the searched bit config), and model-wide quantizer
// switches.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "layers/models/model.h"
#include "layers/quant/quantized_layer.h"

namespace ompq::nn {

enum class QuantScheme { kQat, kPtq };  // qat_layer_config / ptq_layer_config

struct QuantizeOptions {
  QuantScheme scheme = QuantScheme::kQat;
  int act_bits = 8;  // input bits of every quantized layer (one global setting)
  std::map<std::string, int> input_bits;  // per-layer exceptions (e.g. 8 for the classifier)
  std::set<std::string> float_inputs;     // layers whose input stays real-valued (PTQ: the stem)
  // Momentum of the EMA ranges (QAT) and whether the input's straight-through gradient is clipped
  // (false: HAWQ-V3's unclipped estimator).
  ActQuantOptions input_options;
  // Fold the batch norm that follows a conv into it: the one that reads the conv's output, and
  // nothing else does, in the model's traced graph (QuantizableLayer::batch_norm).
  bool fold_batch_norm = true;
};

using QuantizedLayers = std::vector<std::pair<std::string, std::shared_ptr<QuantizedLayer>>>;

// Replaces every layer named in `weight_bits` (its weight bits, 2..8) by a QConv2d / QLinear; the
// others stay real-valued. Names must be quantizable layers of the model and not already replaced;
// every name of input_bits and float_inputs must also be in weight_bits. Returns the quantized
// layers in execution order. The quantizers' state joins the model's state_dict under
// "<layer>.quant.".
QuantizedLayers quantize_model(Model& model, const std::map<std::string, int>& weight_bits,
                               const QuantizeOptions& options = {});

// The model's quantized layers in execution order, by layer name.
QuantizedLayers quantized_layers(const Module& model);

// Freezes (evaluation) or resumes the activation ranges of every EMA quantizer.
void set_quantizers_frozen(const Module& model, bool frozen);
// Turns weight and activation quantization on or off model-wide (BRECQ's set_quant_state).
void set_quantization_enabled(const Module& model, bool weights, bool activations);

}  // namespace ompq::nn
