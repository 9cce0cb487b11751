#include "solver/quantize/blocks.h"

#include <algorithm>
#include <map>
#include <set>

#include "layers/conv.h"
#include "layers/graph/graph.h"
#include "layers/linear.h"

namespace ompq::solver {
namespace {

using graph::Graph;
using graph::NodeId;
using graph::ValueId;

// The paths of the modules that contain `path`, nearest first ("a.b.c" -> "a.b", "a").
std::vector<std::string> ancestors(const std::string& path) {
  std::vector<std::string> out;
  for (size_t dot = path.rfind('.'); dot != std::string::npos; dot = path.rfind('.', dot - 1)) {
    out.push_back(path.substr(0, dot));
    if (dot == 0) break;
  }
  return out;
}

// "a.b" for "a.b.c", "" for "a".
std::string parent_of(const std::string& path) {
  const size_t dot = path.rfind('.');
  return dot == std::string::npos ? "" : path.substr(0, dot);
}

bool is_prefix_path(const std::string& parent, const std::string& path) {
  return path.size() > parent.size() && path.compare(0, parent.size(), parent) == 0 &&
         path[parent.size()] == '.';
}

// The longest common dotted prefix of two module paths ("" when they share none).
std::string common_path(const std::string& a, const std::string& b) {
  if (a == b || is_prefix_path(a, b)) return a;
  for (const std::string& up : ancestors(a)) {
    if (up == b || is_prefix_path(up, b)) return up;
  }
  return "";
}

// The nodes `value` flows into, directly or not.
std::set<NodeId> descendants(const Graph& g, ValueId value) {
  std::set<NodeId> out;
  std::vector<ValueId> todo = {value};
  while (!todo.empty()) {
    const ValueId v = todo.back();
    todo.pop_back();
    for (NodeId n : g.consumers(v)) {
      if (out.insert(n).second) todo.push_back(g.nodes[n].output);
    }
  }
  return out;
}

// The nodes `node` depends on, itself included.
std::set<NodeId> ancestry(const Graph& g, NodeId node) {
  std::set<NodeId> out = {node};
  std::vector<NodeId> todo = {node};
  while (!todo.empty()) {
    const NodeId n = todo.back();
    todo.pop_back();
    for (ValueId v : g.nodes[n].inputs) {
      const NodeId p = g.value(v).producer;
      if (out.insert(p).second) todo.push_back(p);
    }
  }
  return out;
}

// The module paths of the residual blocks: for every add of two values, the region from the
// latest value both operands depend on (the fork) to the add, named by the innermost module that
// ran all of its ops.
std::set<std::string> residual_blocks(const Graph& g) {
  std::set<std::string> blocks;
  for (NodeId n = 0; n < static_cast<NodeId>(g.nodes.size()); ++n) {
    const graph::Node& add = g.nodes[n];
    if (add.kind != graph::OpKind::kAdd || add.inputs.size() != 2) continue;
    const std::set<NodeId> left = ancestry(g, g.value(add.inputs[0]).producer);
    const std::set<NodeId> right = ancestry(g, g.value(add.inputs[1]).producer);
    NodeId fork = -1;
    for (NodeId a : left) {
      if (right.count(a)) fork = std::max(fork, a);
    }
    if (fork < 0) continue;
    const std::set<NodeId> after_fork = descendants(g, g.nodes[fork].output);
    const std::set<NodeId> before_add = ancestry(g, n);
    std::string module = add.module;
    for (NodeId m : after_fork) {
      if (before_add.count(m)) module = common_path(module, g.nodes[m].module);
    }
    if (!module.empty()) blocks.insert(module);
  }
  return blocks;
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
  for (const auto& [name, layer] : layers) {
    auto it = modules.find(name);
    OMPQ_CHECK(it != modules.end() && layer != nullptr && replacement_of(*it->second) == layer,
               "reconstruction_units: \"", name,
               "\" is not a quantized layer of the model (quantize_model's result for this model "
               "is expected)");
  }
  std::set<std::string> block_level;  // the modules whose children are units
  for (const std::string& block : residual_blocks(graph::trace(model, model.input_shape()))) {
    block_level.insert(parent_of(block));
  }

  std::vector<ReconstructionUnit> units;
  for (const auto& [name, layer] : layers) {
    std::string unit_name = name;
    const std::vector<std::string> parents = ancestors(name);
    auto level = std::find_if(parents.begin(), parents.end(), [&](const std::string& p) {
      return block_level.count(parent_of(p)) > 0;
    });
    if (level != parents.end()) {
      unit_name = *level;
    } else if (!parents.empty()) {
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
