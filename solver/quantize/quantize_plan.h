// A model quantized for a bit config: the step between the search's bits and QAT or PTQ.
#pragma once

#include "layers/models/model.h"
#include "layers/quant/quantize_model.h"
#include "solver/search/bit_config.h"

namespace ompq::solver {

// Replaces the plan's layers of `model` by their quantized form in the plan's mode, with
// activations at `act_bits`: QAT as quantize_for_qat (the edge layers' inputs at 8 bits), PTQ with
// ptq_quantize_options. What the experiment quantizes and a saved quantized model loads into.
nn::QuantizedLayers quantize_for_plan(nn::Model& model, const LayerBitsPlan& plan, int act_bits);

}  // namespace ompq::solver
