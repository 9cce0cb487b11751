#include "layers/quant/quantize_model.h"

#include "absl/strings/str_join.h"

namespace ompq::nn {
namespace {

constexpr char kReplacementSuffix[] = ".quant";

// Throws unless every name in `names` has weight bits, naming the first stranger and the option.
void check_has_bits(const std::vector<std::string>& names, const std::map<std::string, int>& bits,
                    const char* option) {
  for (const std::string& name : names) {
    OMPQ_CHECK(bits.count(name) > 0, "quantize_model: ", option, " names layer \"", name,
               "\", which has no weight bits");
  }
}

}  // namespace

QuantizedLayers quantize_model(Model& model, const std::map<std::string, int>& weight_bits,
                               const QuantizeOptions& options) {
  const std::vector<QuantizableLayer> layers = model.quantizable_layers();  // execution order
  std::vector<std::string> available;
  for (const QuantizableLayer& layer : layers) available.push_back(layer.name);
  const std::set<std::string> known(available.begin(), available.end());
  for (const auto& [name, bits] : weight_bits) {
    OMPQ_CHECK(known.count(name) > 0, "quantize_model: \"", name,
               "\" is not a quantizable layer of the model (", available.size(),
               " layers: ", absl::StrJoin(available, ", "), ")");
    OMPQ_CHECK(bits >= 2 && bits <= 8, "quantize_model: layer \"", name, "\" has ", bits,
               " weight bits (expected 2..8)");
  }
  std::vector<std::string> input_bit_names;
  for (const auto& [name, bits] : options.input_bits) input_bit_names.push_back(name);
  check_has_bits(input_bit_names, weight_bits, "input_bits");
  check_has_bits({options.float_inputs.begin(), options.float_inputs.end()}, weight_bits,
                 "float_inputs");

  QuantizedLayers quantized;
  for (const QuantizableLayer& layer : layers) {
    const std::string& name = layer.name;
    const std::shared_ptr<Module>& module = layer.module;
    auto bits = weight_bits.find(name);
    if (bits == weight_bits.end()) continue;
    int act_bits = options.act_bits;
    if (auto it = options.input_bits.find(name); it != options.input_bits.end())
      act_bits = it->second;
    if (options.float_inputs.count(name) > 0) act_bits = 0;
    LayerQuantConfig config = options.scheme == QuantScheme::kQat
                                  ? qat_layer_config(bits->second, act_bits)
                                  : ptq_layer_config(bits->second, act_bits);
    config.input_options = options.input_options;
    std::shared_ptr<QuantizedLayer> q;
    if (auto conv = std::dynamic_pointer_cast<Conv2d>(module)) {
      OMPQ_CHECK(conv->replacement() == nullptr, "quantize_model: layer \"", name,
                 "\" is already replaced");
      std::shared_ptr<BatchNorm> bn =
          options.fold_batch_norm && layer.batch_norm && !layer.batch_norm->folded()
              ? layer.batch_norm
              : nullptr;
      q = std::make_shared<QConv2d>(*conv, config, bn);
      conv->set_replacement(q);
    } else {
      auto fc = std::dynamic_pointer_cast<Linear>(module);
      OMPQ_CHECK(fc->replacement() == nullptr, "quantize_model: layer \"", name,
                 "\" is already replaced");
      q = std::make_shared<QLinear>(*fc, config);
      fc->set_replacement(q);
    }
    quantized.emplace_back(name, q);
  }
  return quantized;
}

QuantizedLayers quantized_layers(const Module& model) {
  QuantizedLayers out;
  const std::string suffix = kReplacementSuffix;
  for (const auto& [name, module] : model.named_modules()) {
    auto q = std::dynamic_pointer_cast<QuantizedLayer>(module);
    if (!q) continue;
    OMPQ_CHECK(name.size() > suffix.size() &&
                   name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0,
               "quantized_layers: quantized layer at \"", name, "\" is not a layer replacement");
    out.emplace_back(name.substr(0, name.size() - suffix.size()), q);
  }
  return out;
}

void set_quantizers_frozen(const Module& model, bool frozen) {
  for (const auto& [name, module] : model.named_modules()) {
    if (auto a = std::dynamic_pointer_cast<ActivationQuantizer>(module)) a->set_frozen(frozen);
  }
}

void set_quantization_enabled(const Module& model, bool weights, bool activations) {
  for (const auto& [name, module] : model.named_modules()) {
    if (auto w = std::dynamic_pointer_cast<WeightQuantizer>(module)) w->set_enabled(weights);
    if (auto a = std::dynamic_pointer_cast<ActivationQuantizer>(module))
      a->set_enabled(activations);
  }
}

}  // namespace ompq::nn
