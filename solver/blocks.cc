#include "solver/blocks.h"

#include <map>

#include "layers/conv.h"
#include "layers/linear.h"
#include "layers/models/mobilenet_v2.h"
#include "layers/models/resnet.h"
#include "layers/sequential.h"

namespace ompq::solver {
namespace {

bool is_residual_block(const nn::Module& m) {
  return dynamic_cast<const nn::BasicBlock*>(&m) || dynamic_cast<const nn::Bottleneck*>(&m) ||
         dynamic_cast<const nn::InvertedResidual*>(&m);
}

// The paths of the modules that contain `path`, nearest first ("a.b.c" -> "a.b", "a").
std::vector<std::string> ancestors(const std::string& path) {
  std::vector<std::string> out;
  for (size_t dot = path.rfind('.'); dot != std::string::npos; dot = path.rfind('.', dot - 1)) {
    out.push_back(path.substr(0, dot));
    if (dot == 0) break;
  }
  return out;
}

bool is_prefix_path(const std::string& parent, const std::string& path) {
  return path.size() > parent.size() && path.compare(0, parent.size(), parent) == 0 &&
         path[parent.size()] == '.';
}

// The quantized layer a Conv2d or Linear runs instead of itself (null for other modules).
std::shared_ptr<nn::Module> replacement_of(const nn::Module& layer) {
  if (auto conv = dynamic_cast<const nn::Conv2d*>(&layer)) return conv->replacement();
  if (auto fc = dynamic_cast<const nn::Linear*>(&layer)) return fc->replacement();
  return nullptr;
}

}  // namespace

std::vector<ReconstructionUnit> reconstruction_units(const nn::Model& model,
                                                     const nn::QuantizedLayers& layers) {
  std::map<std::string, std::shared_ptr<nn::Module>> modules;
  for (const auto& [path, module] : model.named_modules()) modules.emplace(path, module);

  std::vector<ReconstructionUnit> units;
  for (const auto& [name, layer] : layers) {
    auto it = modules.find(name);
    OMPQ_CHECK(it != modules.end() && layer != nullptr && replacement_of(*it->second) == layer,
               "reconstruction_units: \"", name,
               "\" is not a quantized layer of the model (quantize_model's result for this model "
               "is expected)");
    std::string unit_name = name;
    const std::vector<std::string> parents = ancestors(name);
    bool in_block = false;
    for (const std::string& parent : parents) {
      if (is_residual_block(*modules.at(parent))) {
        unit_name = parent;
        in_block = true;
        break;
      }
    }
    if (!in_block && !parents.empty() &&
        dynamic_cast<const nn::Sequential*>(modules.at(parents[0]).get())) {
      int quantized_inside = 0;
      for (const auto& [other, unused] : layers)
        quantized_inside += is_prefix_path(parents[0], other);
      if (quantized_inside == 1) unit_name = parents[0];
    }
    if (units.empty() || units.back().name != unit_name) {
      for (const ReconstructionUnit& u : units) {
        OMPQ_CHECK(u.name != unit_name, "reconstruction_units: the layers of \"", unit_name,
                   "\" are not consecutive in the layer list (at \"", name, "\")");
      }
      units.push_back({unit_name, modules.at(unit_name), {}});
    }
    units.back().layers.emplace_back(name, layer);
  }
  return units;
}

}  // namespace ompq::solver
