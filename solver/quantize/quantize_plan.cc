#include "solver/quantize/quantize_plan.h"

#include "solver/quantize/ptq.h"
#include "solver/quantize/qat.h"

namespace ompq::solver {

nn::QuantizedLayers quantize_for_plan(nn::Model& model, const LayerBitsPlan& plan, int act_bits) {
  if (plan.mode == QuantMode::kQat) {
    return quantize_for_qat(model, plan.weight_bits, plan.edge_layers, act_bits);
  }
  return nn::quantize_model(model, plan.weight_bits, ptq_quantize_options(model, act_bits));
}

}  // namespace ompq::solver
