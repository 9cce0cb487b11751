// The model graph: the dataflow of one forward pass, recorded at ompq's op entry points
// (core/trace.h) in the spirit of torch.fx. Every pass that needs a model's structure reads it (the
// quantizable layer order, BN folding, the search space, feature capture, PTQ blocks, export), so
// no pass knows an architecture by name.
//
// A graph is a list of nodes in execution order (a topological order), each one op with its module
// path, attributes and parameter names, reading values and writing one value. Values are the
// tensors that flow between ops, identified by a ValueId (an index into Graph::values), with their
// traced shapes. A fused batch_norm_act call (BatchNorm::forward_act) appears as the ops it fuses:
// a batch_norm node, then an add node when it adds a residual, then a relu/relu6 node; the values
// between them exist only inside the fused kernel (Value::materialized is false). So a residual add
// is always an add node with two inputs, and the batch norm after a conv is always a batch_norm
// node reading the conv's output.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/shape.h"
#include "core/tensor.h"
#include "core/trace.h"

namespace ompq::nn {
class Model;
}

namespace ompq::graph {

enum class OpKind : uint8_t {
  kInput,      // the model's input (node 0); reads nothing
  kConstant,   // a tensor that the forward read but no traced op wrote: a registered parameter or
               // buffer used as data (its name in Node::parameters), or a tensor made in forward()
  kConv2d,     // inputs {x}; parameters {weight, bias}; attributes.conv
  kLinear,     // inputs {x}; parameters {weight, bias}
  kBatchNorm,  // inputs {x}; parameters {weight, bias, running_mean, running_var}; attributes.eps,
               // attributes.momentum
  kAdd,    // inputs {a, b}: elementwise a + b (a residual add reads the branch, then the shortcut)
  kSub,    // inputs {a, b}
  kMul,    // inputs {a, b}
  kRelu,   // inputs {x}
  kRelu6,  // inputs {x}
  kMaxPool2d,          // inputs {x}; attributes.pool
  kAvgPool2d,          // inputs {x}; attributes.pool
  kAdaptiveAvgPool2d,  // inputs {x}; attributes.output_size
  kReshape,            // inputs {x}: view / reshape / flatten to the output value's shape
  kDropout,            // inputs {x}; attributes.dropout_p (the identity in eval mode)
  kConcat,             // inputs: the tensors concatenated along attributes.dim
};
const char* op_kind_name(OpKind kind);  // "conv2d", "batch_norm", ...

using ValueId = int;  // index into Graph::values
using NodeId = int;   // index into Graph::nodes

struct Value {
  Shape shape;  // as traced (batch size included)
  DType dtype = DType::kF32;
  NodeId producer = -1;           // the node that writes it
  std::vector<NodeId> consumers;  // the nodes that read it, in execution order, each once
  // False for the values inside a fused batch norm call (its output before the residual add and
  // the activation): they have a shape but no tensor is ever made for them.
  bool materialized = true;
};

struct Node {
  OpKind kind = OpKind::kInput;
  // Dotted path of the module that ran the op. A conv, linear or batch norm node: the module that
  // owns its parameters ("layer1.0.conv1"). Any other node: the innermost module called through
  // Module::operator() while it ran ("layer1.0" for a block's residual add and ReLU), "" for the
  // model's own forward.
  std::string module;
  std::vector<ValueId> inputs;  // in the order documented per OpKind
  ValueId output = -1;
  // The parameter operands in the order documented per OpKind, as dotted state_dict names
  // ("layer1.0.bn1.running_mean"); "" for an absent one (a conv without bias) or for a tensor that
  // is not registered in the model (a quantized layer's computed weight).
  std::vector<std::string> parameters;
  // The shapes of those operands, in the same order ({} for an absent one): a conv's weight is
  // [C_out, C_in / groups, kh, kw], a linear's [out, in].
  std::vector<Shape> parameter_shapes;
  trace::OpAttributes attributes;  // the fields of this kind (see OpKind); activation is unused
  // Index of the traced op call that made this node. The nodes of one fused batch norm call share
  // it; the last of them writes the tensor the call returned.
  int64_t call = -1;
};

// A conv or linear layer with the ops that directly follow it.
struct Layer {
  std::string name;  // its module path, e.g. "layer1.0.conv1"; its weight is name + ".weight"
  NodeId node = -1;  // its kConv2d / kLinear node
  // The batch norm node that is the only reader of the layer's output, else -1.
  NodeId batch_norm = -1;
  // The relu/relu6 node that is the only reader of the batch norm's output (of the layer's output
  // when there is no batch norm), else -1 (also when a residual add comes first).
  NodeId activation = -1;
};

struct Graph {
  std::vector<Node> nodes;  // execution order; nodes[0] is the kInput node
  std::vector<Value> values;
  ValueId input = -1;   // the model's input
  ValueId output = -1;  // what forward() returned

  const Value& value(ValueId id) const { return values.at(id); }
  const Node& producer(ValueId id) const { return nodes.at(values.at(id).producer); }
  const std::vector<NodeId>& consumers(ValueId id) const { return values.at(id).consumers; }
  // The only reader of `id`, or -1 when none or several read it.
  NodeId sole_consumer(ValueId id) const;
  // The conv and linear layers in execution order.
  std::vector<Layer> layers() const;
  // One line per node, as torch.fx prints a graph: "%5 = batch_norm[bn1](%4) : [1, 64, 112, 112]".
  std::string to_string() const;
};

// Traces one forward pass of `model` on a zero batch of shape [1, ...input_shape] ([C, H, W] for
// the models here). The forward runs without autograd, in eval mode, in NCHW layout, and layers
// that quantization replaced run as their float selves (nn::FloatLayers); every training flag,
// layout setting and buffer is restored afterwards, also when the forward throws, so the model is
// observably unchanged (hence const). A forward that fails (a wrong input shape) throws an Error
// that names the shape and the model's input_shape().
Graph trace(const nn::Model& model, const Shape& input_shape);

// Runs model.forward(input) in whatever modes the model is in, calling `visit` with the tensor of
// each materialized value of `graph` (which trace() made for this model) as soon as the op that
// returns it has run. Throws when the forward runs other ops than the graph records.
using ValueVisitor = std::function<void(ValueId value, const Tensor& tensor)>;
Tensor forward_with_values(nn::Model& model, const Graph& graph, const Tensor& input,
                           const ValueVisitor& visit);

}  // namespace ompq::graph
