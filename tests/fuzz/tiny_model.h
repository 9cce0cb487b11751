// The model of the fuzz targets that load a model's state (checkpoints, bit configs) and of the
// seeds made for them: a ResNet as small as one can be with every kind of search unit (stem,
// a block with and one without a projection shortcut, classifier), so that a checkpoint of it
// holds every kind of entry in a few kilobytes.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core/random.h"
#include "core/tensor.h"
#include "layers/models/resnet.h"

namespace ompq::fuzz {

inline std::shared_ptr<nn::ResNet> tiny_resnet() {
  nn::ResNetConfig config;
  config.blocks = {1, 1};
  config.planes = {2, 4};
  config.stem_channels = 2;
  config.small_stem = true;
  config.num_classes = 3;
  Generator gen(1);
  return std::make_shared<nn::ResNet>(config, gen);
}

// `bits` for every conv and linear of `model`.
inline std::map<std::string, int> uniform_bits(const nn::Model& model, int bits) {
  std::map<std::string, int> out;
  for (const nn::QuantizableLayer& layer : model.quantizable_layers()) out[layer.name] = bits;
  return out;
}

// The bytes of every tensor of a state_dict, to check that a load which failed changed nothing.
inline std::map<std::string, std::string> state_bytes(const TensorMap& state) {
  std::map<std::string, std::string> out;
  for (const auto& [name, tensor] : state) {
    const Tensor t = tensor.contiguous();
    out[name].assign(static_cast<const char*>(t.data_ptr()), t.nbytes());
  }
  return out;
}

}  // namespace ompq::fuzz
