#include "layers/models/model.h"

#include "layers/conv.h"
#include "layers/linear.h"

namespace ompq::nn {

std::vector<QuantizableLayer> Model::quantizable_layers() const {
  std::vector<QuantizableLayer> layers;
  for (const auto& [name, module] : named_modules()) {
    if (auto conv = std::dynamic_pointer_cast<Conv2d>(module)) {
      layers.push_back({name, QuantizableLayer::Kind::kConv2d, conv->weight().shape(), module});
    } else if (auto fc = std::dynamic_pointer_cast<Linear>(module)) {
      layers.push_back({name, QuantizableLayer::Kind::kLinear, fc->weight().shape(), module});
    }
  }
  return layers;
}

}  // namespace ompq::nn
