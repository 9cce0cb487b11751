#include "layers/graph/graph.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ompq::graph {

const char* op_kind_name(OpKind kind) {
  switch (kind) {
    case OpKind::kInput:
      return "input";
    case OpKind::kConstant:
      return "constant";
    case OpKind::kConv2d:
      return "conv2d";
    case OpKind::kLinear:
      return "linear";
    case OpKind::kBatchNorm:
      return "batch_norm";
    case OpKind::kAdd:
      return "add";
    case OpKind::kSub:
      return "sub";
    case OpKind::kMul:
      return "mul";
    case OpKind::kRelu:
      return "relu";
    case OpKind::kRelu6:
      return "relu6";
    case OpKind::kMaxPool2d:
      return "max_pool2d";
    case OpKind::kAvgPool2d:
      return "avg_pool2d";
    case OpKind::kAdaptiveAvgPool2d:
      return "adaptive_avg_pool2d";
    case OpKind::kReshape:
      return "reshape";
    case OpKind::kDropout:
      return "dropout";
    case OpKind::kConcat:
      return "concat";
  }
  return "unknown";
}

NodeId Graph::sole_consumer(ValueId id) const {
  const std::vector<NodeId>& readers = consumers(id);
  return readers.size() == 1 ? readers.front() : -1;
}

std::vector<Layer> Graph::layers() const {
  std::vector<Layer> out;
  for (NodeId n = 0; n < static_cast<NodeId>(nodes.size()); ++n) {
    const Node& node = nodes[n];
    if (node.kind != OpKind::kConv2d && node.kind != OpKind::kLinear) continue;
    Layer layer;
    layer.name = node.module;
    layer.node = n;
    ValueId result = node.output;
    const NodeId reader = sole_consumer(result);
    if (reader >= 0 && nodes[reader].kind == OpKind::kBatchNorm) {
      layer.batch_norm = reader;
      result = nodes[reader].output;
    }
    const NodeId next = sole_consumer(result);
    if (next >= 0 && (nodes[next].kind == OpKind::kRelu || nodes[next].kind == OpKind::kRelu6)) {
      layer.activation = next;
    }
    out.push_back(layer);
  }
  return out;
}

std::string Graph::to_string() const {
  std::string out;
  for (const Node& node : nodes) {
    std::vector<std::string> operands;
    for (ValueId v : node.inputs) operands.push_back(absl::StrCat("%", v));
    absl::StrAppend(&out, "%", node.output, " = ", op_kind_name(node.kind), "[", node.module, "](",
                    absl::StrJoin(operands, ", "), ") : ", shape_str(value(node.output).shape),
                    "\n");
  }
  return out;
}

}  // namespace ompq::graph
