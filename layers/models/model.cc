#include "layers/models/model.h"

#include <map>

#include "core/ops/conv.h"
#include "layers/conv.h"
#include "layers/graph/graph.h"
#include "layers/linear.h"

namespace ompq::nn {

namespace {

QuantizableLayer describe_layer(const std::string& name, const std::shared_ptr<Module>& module,
                                std::shared_ptr<BatchNorm> batch_norm) {
  if (auto conv = std::dynamic_pointer_cast<Conv2d>(module)) {
    return {name, QuantizableLayer::Kind::kConv2d, conv->weight().shape(), conv,
            std::move(batch_norm)};
  }
  auto fc = std::dynamic_pointer_cast<Linear>(module);
  OMPQ_CHECK(fc != nullptr, "quantizable_layers: the conv/linear op at \"", name,
             "\" is run by a module that is neither a Conv2d nor a Linear");
  return {name, QuantizableLayer::Kind::kLinear, fc->weight().shape(), fc, std::move(batch_norm)};
}

bool is_layer(const Module& m) {
  return dynamic_cast<const Conv2d*>(&m) != nullptr || dynamic_cast<const Linear*>(&m) != nullptr;
}

}  // namespace

std::vector<QuantizableLayer> Model::quantizable_layers() const {
  const NamedModules named = named_modules();
  std::vector<QuantizableLayer> layers;
  if (input_shape().empty()) {
    for (size_t i = 0; i < named.size(); ++i) {
      if (!is_layer(*named[i].second)) continue;
      std::shared_ptr<BatchNorm> bn =
          i + 1 < named.size() ? std::dynamic_pointer_cast<BatchNorm>(named[i + 1].second)
                               : nullptr;
      const auto conv = std::dynamic_pointer_cast<Conv2d>(named[i].second);
      if (bn && (!conv || bn->num_features() != conv->out_channels())) bn = nullptr;
      layers.push_back(describe_layer(named[i].first, named[i].second, bn));
    }
    return layers;
  }
  std::map<std::string, std::shared_ptr<Module>> modules(named.begin(), named.end());
  const graph::Graph graph = graph::trace(*this, input_shape());
  for (const graph::Layer& layer : graph.layers()) {
    auto it = modules.find(layer.name);
    OMPQ_CHECK(it != modules.end(), "quantizable_layers: the traced conv/linear at \"", layer.name,
               "\" is not a module of the model (a layer must own its weight)");
    std::shared_ptr<BatchNorm> bn;
    if (layer.batch_norm >= 0) {
      auto found = modules.find(graph.nodes[layer.batch_norm].module);
      if (found != modules.end()) bn = std::dynamic_pointer_cast<BatchNorm>(found->second);
    }
    layers.push_back(describe_layer(layer.name, it->second, bn));
  }
  return layers;
}

Tensor Model::in_model_layout(const Tensor& x) const {
  if (!channels_last_ || x.dim() != 4 || is_channels_last(x)) return x;
  // Autograd-aware, so that a gradient w.r.t. the input still reaches it.
  return x.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
}

}  // namespace ompq::nn
