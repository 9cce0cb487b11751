#include "layers/models/model.h"

#include "core/ops/conv.h"
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

Tensor Model::in_model_layout(const Tensor& x) const {
  if (!channels_last_ || x.dim() != 4 || is_channels_last(x)) return x;
  // Autograd-aware, so that a gradient w.r.t. the input still reaches it.
  return x.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
}

}  // namespace ompq::nn
