// Quantized conv and linear layers: y = op(input_quantizer(x), weight_quantizer(W), b), with the
// weight and bias of a wrapped Conv2d / Linear (shared handles: the wrapped layer keeps owning and
// naming them) and, for a conv followed by a batch norm, the batch norm folded in at every forward
// (bn_fold.h): W and b are then the folded ones, and the folded batch norm passes its input
// through. The quantizers are this module's children "weight_quantizer" and "input_quantizer"; a
// layer whose input stays real-valued (PTQ's first layer) has no input quantizer.
#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "layers/conv.h"
#include "layers/linear.h"
#include "layers/module.h"
#include "layers/norm.h"
#include "layers/quant/act_quantizer.h"
#include "layers/quant/bn_fold.h"
#include "layers/quant/quant_spec.h"
#include "layers/quant/weight_quantizer.h"

namespace ompq::nn {

// How one layer is quantized. The specs are templates (tensors undefined).
struct LayerQuantConfig {
  QuantSpec weight;
  WeightRange weight_range = WeightRange::kMinMax;
  std::optional<QuantSpec> input;  // nullopt: the input is not quantized
  ActRange input_range = ActRange::kEmaMinMax;
  ActQuantOptions input_options;
};

// The reference recipes (docs/METHOD.md 5.2 and 4.3): QAT = HAWQ-V3 (per-channel symmetric min/max
// weights, EMA activation ranges); PTQ = BRECQ (per-channel affine MSE-searched weights, learned
// activation step sizes). act_bits = 0 leaves the input real-valued.
LayerQuantConfig qat_layer_config(int weight_bits, int act_bits);
LayerQuantConfig ptq_layer_config(int weight_bits, int act_bits);

class QuantizedLayer : public Module {
 public:
  Tensor forward(const Tensor& x) override;

  // The real-valued weight and bias the layer quantizes: the wrapped layer's, or with the batch
  // norm folded in. Autograd-aware.
  FoldedWeights weight_and_bias() const;
  // The fake-quantized weight.
  Tensor quantized_weight();

  WeightQuantizer& weight_quantizer() const { return *weight_quantizer_; }
  // Null when the input is not quantized.
  ActivationQuantizer* input_quantizer() const { return input_quantizer_.get(); }
  const std::shared_ptr<BatchNorm>& folded_batch_norm() const { return bn_; }

  // Called with the real-valued input at the start of every forward (PTQ reconstruction caches
  // block inputs with it); an empty function removes it.
  void set_input_observer(std::function<void(const Tensor&)> observer) {
    input_observer_ = std::move(observer);
  }

 protected:
  QuantizedLayer(Tensor weight, Tensor bias, const LayerQuantConfig& config,
                 std::shared_ptr<BatchNorm> bn);
  // The layer's operation on the (quantized) input and weight.
  virtual Tensor apply(const Tensor& x, const Tensor& weight, const Tensor& bias) const = 0;

 private:
  Tensor weight_, bias_;
  std::shared_ptr<BatchNorm> bn_;
  std::shared_ptr<WeightQuantizer> weight_quantizer_;
  std::shared_ptr<ActivationQuantizer> input_quantizer_;
  std::function<void(const Tensor&)> input_observer_;
};

class QConv2d final : public QuantizedLayer {
 public:
  // `bn`: the batch norm that follows the conv, folded in (and set to pass through), or null.
  QConv2d(const Conv2d& conv, const LayerQuantConfig& config,
          std::shared_ptr<BatchNorm> bn = nullptr);
  const Conv2dParams& params() const { return params_; }

 protected:
  Tensor apply(const Tensor& x, const Tensor& weight, const Tensor& bias) const override;

 private:
  Conv2dParams params_;
};

class QLinear final : public QuantizedLayer {
 public:
  QLinear(const Linear& linear, const LayerQuantConfig& config);

 protected:
  Tensor apply(const Tensor& x, const Tensor& weight, const Tensor& bias) const override;
};

}  // namespace ompq::nn
