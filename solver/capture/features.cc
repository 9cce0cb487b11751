#include "solver/capture/features.h"

#include <map>

#include "core/autograd.h"
#include "layers/graph/graph.h"
#include "layers/norm.h"

namespace ompq::solver {

void capture_features(nn::Model& model, const Tensor& images, QuantMode mode,
                      const FeatureVisitor& visit) {
  OMPQ_CHECK(images.dim() == 4 && images.size(0) >= 2,
             "capture_features: expected images [N, C, H, W] with N >= 2, got shape ",
             shape_str(images.shape()));
  OMPQ_CHECK(model.flop_counting() != nn::FlopCounting::kNotSearched,
             "capture_features: the model takes no part in the OMPQ search (its flop_counting() "
             "is kNotSearched); the search supports ResNets and mobilenet_v2 and every model that "
             "declares how its FLOPs are counted");
  const graph::Graph graph = graph::trace(model, {images.size(1), images.size(2), images.size(3)});
  const std::vector<UnitFeature> units = unit_features(model, graph);
  std::map<graph::ValueId, size_t> unit_of;
  for (size_t i = 0; i < units.size(); ++i) {
    // QAT searches neither the stem nor the classifier.
    if (mode == QuantMode::kQat && (i == 0 || i + 1 == units.size())) continue;
    unit_of.emplace(units[i].value, i);
  }
  NoGradGuard no_grad;
  nn::ModuleStateGuard restore(model);
  model.eval();
  for (const auto& [name, module] : model.named_modules()) {
    if (dynamic_cast<nn::BatchNorm*>(module.get())) module->train(true);
  }
  graph::forward_with_values(model, graph, images, [&](graph::ValueId v, const Tensor& t) {
    auto it = unit_of.find(v);
    if (it != unit_of.end()) visit(units[it->second].unit, t);
  });
}

}  // namespace ompq::solver
