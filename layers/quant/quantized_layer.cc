#include "layers/quant/quantized_layer.h"

#include "core/functional/conv.h"
#include "core/functional/linalg.h"

namespace ompq::nn {

LayerQuantConfig qat_layer_config(int weight_bits, int act_bits) {
  LayerQuantConfig config;
  config.weight = qat_weight_spec(weight_bits);
  config.weight_range = WeightRange::kMinMax;
  if (act_bits > 0) config.input = qat_activation_spec(act_bits);
  config.input_range = ActRange::kEmaMinMax;
  return config;
}

LayerQuantConfig ptq_layer_config(int weight_bits, int act_bits) {
  LayerQuantConfig config;
  config.weight = ptq_weight_spec(weight_bits);
  config.weight_range = WeightRange::kMse;
  if (act_bits > 0) config.input = ptq_activation_spec(act_bits);
  config.input_range = ActRange::kLearnedStep;
  return config;
}

QuantizedLayer::QuantizedLayer(Tensor weight, Tensor bias, const LayerQuantConfig& config,
                               std::shared_ptr<BatchNorm> bn)
    : weight_(std::move(weight)), bias_(std::move(bias)), bn_(std::move(bn)) {
  OMPQ_CHECK(!config.weight.axis || *config.weight.axis == 0,
             "QuantizedLayer: weights are quantized per output channel (axis 0) or per tensor, "
             "not ",
             config.weight.str());
  if (bn_) {
    OMPQ_CHECK(bn_->num_features() == weight_.size(0), "QuantizedLayer: batch norm of ",
               bn_->num_features(), " channels after a layer of ", weight_.size(0),
               " output channels");
    bn_->set_folded(true);
  }
  weight_quantizer_ =
      register_module("weight_quantizer",
                      std::make_shared<WeightQuantizer>(config.weight, config.weight_range,
                                                        config.weight.axis ? weight_.size(0) : 1));
  if (config.input) {
    input_quantizer_ = register_module(
        "input_quantizer", std::make_shared<ActivationQuantizer>(*config.input, config.input_range,
                                                                 config.input_options));
  }
}

FoldedWeights QuantizedLayer::weight_and_bias() const {
  if (bn_) return fold_batch_norm(weight_, bias_, *bn_);
  return {weight_, bias_};
}

Tensor QuantizedLayer::quantized_weight() {
  return weight_quantizer_->forward(weight_and_bias().weight);
}

Tensor QuantizedLayer::forward(const Tensor& x) {
  if (input_observer_) input_observer_(x);
  const FoldedWeights w = weight_and_bias();
  const Tensor xq = input_quantizer_ ? input_quantizer_->forward(x) : x;
  return apply(xq, weight_quantizer_->forward(w.weight), w.bias);
}

QConv2d::QConv2d(const Conv2d& conv, const LayerQuantConfig& config, std::shared_ptr<BatchNorm> bn)
    : QuantizedLayer(conv.weight(), conv.bias(), config, std::move(bn)), params_(conv.params()) {}

Tensor QConv2d::apply(const Tensor& x, const Tensor& weight, const Tensor& bias) const {
  return conv2d(x, weight, bias, params_);
}

QLinear::QLinear(const Linear& linear, const LayerQuantConfig& config)
    : QuantizedLayer(linear.weight(), linear.bias(), config, nullptr) {}

Tensor QLinear::apply(const Tensor& x, const Tensor& weight, const Tensor& bias) const {
  return linear(x, weight, bias);
}

}  // namespace ompq::nn
