// Reconstruction units of BRECQ (docs/METHOD.md 4.4): the pieces of a quantized model that PTQ
// reconstructs one at a time, in network order, read off the model's traced graph. A residual
// block is the region between a value and the add that merges it back (both branches), and its
// module is the innermost one that ran all of the region's ops ("layer1.0", "features.3"). Each
// quantized layer belongs to
//   - the module that contains it among the siblings of the residual blocks (the residual blocks
//     themselves, and MobileNetV2's inverted residuals without a shortcut and its conv stages),
//     all of whose quantized layers form one unit, else
//   - the module that holds it when that holds no other quantized layer (MobileNetV2's
//     [Dropout, Linear] classifier), else
//   - itself (a conv or linear layer of the model's own forward: ResNet's stem and fc, FashionCnn).
// A unit's module maps the unit's input to its output; its input is the input of its first layer,
// which every model here feeds the unit's input unchanged (in eval mode).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "layers/models/model.h"
#include "layers/quant/quantize_model.h"

namespace ompq::solver {

struct ReconstructionUnit {
  std::string name;                    // the module's path: "layer1.0", "features.18", "fc"
  std::shared_ptr<nn::Module> module;  // runs the unit
  nn::QuantizedLayers layers;          // its quantized layers, in execution order
};

// The units of `model` holding `layers` (quantize_model's result for it), in network order.
// Throws when a layer is not a quantizable layer of the model.
std::vector<ReconstructionUnit> reconstruction_units(const nn::Model& model,
                                                     const nn::QuantizedLayers& layers);

}  // namespace ompq::solver
