// trace() and forward_with_values(): observers of core's op reports (core/trace.h) that turn one
// forward pass into a Graph, and map a later forward's op calls back onto it.
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/autograd.h"
#include "layers/graph/graph.h"
#include "layers/models/model.h"

namespace ompq::graph {
namespace {

OpKind kind_of(trace::Op op) {
  switch (op) {
    case trace::Op::kConv2d:
      return OpKind::kConv2d;
    case trace::Op::kLinear:
      return OpKind::kLinear;
    case trace::Op::kBatchNorm:
      return OpKind::kBatchNorm;
    case trace::Op::kAdd:
      return OpKind::kAdd;
    case trace::Op::kSub:
      return OpKind::kSub;
    case trace::Op::kMul:
      return OpKind::kMul;
    case trace::Op::kRelu:
      return OpKind::kRelu;
    case trace::Op::kRelu6:
      return OpKind::kRelu6;
    case trace::Op::kMaxPool2d:
      return OpKind::kMaxPool2d;
    case trace::Op::kAvgPool2d:
      return OpKind::kAvgPool2d;
    case trace::Op::kAdaptiveAvgPool2d:
      return OpKind::kAdaptiveAvgPool2d;
    case trace::Op::kReshape:
      return OpKind::kReshape;
    case trace::Op::kDropout:
      return OpKind::kDropout;
    case trace::Op::kConcat:
      return OpKind::kConcat;
  }
  OMPQ_CHECK(false, "trace: op ", trace::op_name(op), " has no graph node kind");
}

// "layer1.0.conv1" for "layer1.0.conv1.weight".
std::string owner_of(const std::string& tensor_name) {
  const size_t dot = tensor_name.rfind('.');
  return dot == std::string::npos ? "" : tensor_name.substr(0, dot);
}

// Builds the graph from the op reports of one forward pass.
class GraphBuilder : public trace::Observer {
 public:
  GraphBuilder(const nn::Model& model, const Tensor& input) {
    for (const auto& [name, t] : model.named_parameters())
      tensor_names_.emplace(t.unsafe_impl(), name);
    for (const auto& [name, t] : model.named_buffers())
      tensor_names_.emplace(t.unsafe_impl(), name);
    module_paths_.emplace(&model, "");
    for (const auto& [path, module] : model.named_modules())
      module_paths_.emplace(module.get(), path);
    Node node;
    node.kind = OpKind::kInput;
    graph_.input = add_node(std::move(node), input);
  }

  void on_op(const trace::OpCall& call) override {
    const int64_t call_index = calls_++;
    std::vector<ValueId> inputs;
    for (const Tensor& t : call.inputs) inputs.push_back(value_of(t));
    std::vector<std::string> parameters;
    std::vector<Shape> parameter_shapes;
    std::string module;
    for (const Tensor& p : call.parameters) {
      parameter_shapes.push_back(p.defined() ? p.shape() : Shape{});
      auto it = p.defined() ? tensor_names_.find(p.unsafe_impl()) : tensor_names_.end();
      parameters.push_back(it == tensor_names_.end() ? "" : it->second);
      if (module.empty() && !parameters.back().empty()) module = owner_of(parameters.back());
    }
    const std::string scope = calling_scope();
    if (module.empty()) module = scope;

    Node node;
    node.kind = kind_of(call.op);
    node.module = module;
    node.parameters = std::move(parameters);
    node.parameter_shapes = std::move(parameter_shapes);
    node.attributes = call.attributes;
    node.call = call_index;
    if (call.op != trace::Op::kBatchNorm) {
      node.inputs = std::move(inputs);
      add_node(std::move(node), call.output);
      return;
    }
    // A fused batch_norm_act call: batch_norm, [add of the residual], [activation]. The add and
    // the activation belong to the module that called the batch norm (a block's forward).
    const NormActivation activation = call.attributes.activation;
    const bool residual = inputs.size() == 2;
    const bool activated = activation != NormActivation::kIdentity;
    node.attributes.activation = NormActivation::kIdentity;
    node.inputs = {inputs[0]};
    ValueId v = add_node(std::move(node), call.output, /*materialized=*/!residual && !activated);
    if (residual) {
      Node add;
      add.kind = OpKind::kAdd;
      add.module = scope;
      add.inputs = {v, inputs[1]};
      add.call = call_index;
      v = add_node(std::move(add), call.output, /*materialized=*/!activated);
    }
    if (activated) {
      Node act;
      act.kind = activation == NormActivation::kRelu ? OpKind::kRelu : OpKind::kRelu6;
      act.module = scope;
      act.inputs = {v};
      act.call = call_index;
      add_node(std::move(act), call.output);
    }
  }

  Graph finish(const Tensor& output) {
    graph_.output = value_of(output);
    return std::move(graph_);
  }

 private:
  // The innermost module on the calling stack that belongs to the model.
  std::string calling_scope() const {
    const std::vector<const nn::Module*>& stack = nn::calling_modules();
    for (auto it = stack.rbegin(); it != stack.rend(); ++it) {
      auto found = module_paths_.find(*it);
      if (found != module_paths_.end()) return found->second;
    }
    return "";
  }

  // The value a tensor operand holds; a tensor no traced op wrote becomes a constant node.
  ValueId value_of(const Tensor& t) {
    auto it = values_.find(t.unsafe_impl());
    if (it != values_.end()) return it->second;
    Node node;
    node.kind = OpKind::kConstant;
    auto name = tensor_names_.find(t.unsafe_impl());
    node.parameters = {name == tensor_names_.end() ? "" : name->second};
    node.module = name == tensor_names_.end() ? calling_scope() : owner_of(name->second);
    return add_node(std::move(node), t);
  }

  // Appends `node` writing a new value with `tensor`'s shape; a materialized value becomes the one
  // `tensor` stands for (an op that returns its input, as dropout in eval mode, makes a new value).
  ValueId add_node(Node node, const Tensor& tensor, bool materialized = true) {
    const NodeId id = static_cast<NodeId>(graph_.nodes.size());
    const ValueId v = static_cast<ValueId>(graph_.values.size());
    Value value;
    value.shape = tensor.shape();
    value.dtype = tensor.dtype();
    value.producer = id;
    value.materialized = materialized;
    graph_.values.push_back(std::move(value));
    for (ValueId in : node.inputs) {
      std::vector<NodeId>& readers = graph_.values[in].consumers;
      if (readers.empty() || readers.back() != id) readers.push_back(id);
    }
    node.output = v;
    graph_.nodes.push_back(std::move(node));
    if (materialized) {
      values_[tensor.unsafe_impl()] = v;
      alive_.push_back(tensor);  // its address must not be reused by a later tensor
    }
    return v;
  }

  std::unordered_map<const TensorImpl*, std::string> tensor_names_;
  std::unordered_map<const nn::Module*, std::string> module_paths_;
  std::unordered_map<const TensorImpl*, ValueId> values_;
  std::vector<Tensor> alive_;
  int64_t calls_ = 0;
  Graph graph_;
};

class ChannelsLastOff {
 public:
  explicit ChannelsLastOff(nn::Model& model) : model_(model), was_(model.channels_last()) {
    model.set_channels_last(false);
  }
  ~ChannelsLastOff() { model_.set_channels_last(was_); }
  ChannelsLastOff(const ChannelsLastOff&) = delete;
  ChannelsLastOff& operator=(const ChannelsLastOff&) = delete;

 private:
  nn::Model& model_;
  bool was_;
};

// Maps a forward's op calls onto the nodes of a graph traced before.
class ValueReporter : public trace::Observer {
 public:
  ValueReporter(const Graph& graph, const ValueVisitor& visit) : visit_(visit) {
    for (const Node& node : graph.nodes) {
      if (node.call < 0) continue;
      if (static_cast<size_t>(node.call) >= calls_.size()) calls_.resize(node.call + 1);
      calls_[node.call].kind = calls_[node.call].kind.value_or(node.kind);
      calls_[node.call].result = node.output;
    }
  }

  void on_op(const trace::OpCall& call) override {
    const size_t index = next_++;
    OMPQ_CHECK(index < calls_.size() && calls_[index].kind == kind_of(call.op),
               "forward_with_values: op call ", index, " is ", trace::op_name(call.op),
               ", but the traced graph has ",
               index < calls_.size() ? op_kind_name(*calls_[index].kind) : "no more calls",
               " there (the forward differs from the traced one)");
    visit_(calls_[index].result, call.output);
  }

  void finish() const {
    OMPQ_CHECK(next_ == calls_.size(), "forward_with_values: the forward ran ", next_,
               " op calls, the traced graph has ", calls_.size());
  }

 private:
  struct Call {
    std::optional<OpKind> kind;  // of its first node
    ValueId result = -1;         // the value of the tensor the call returns
  };
  const ValueVisitor& visit_;
  std::vector<Call> calls_;
  size_t next_ = 0;
};

}  // namespace

Graph trace(const nn::Model& const_model, const Shape& input_shape) {
  // The forward is a non-const member; everything it could change is put back below.
  nn::Model& model = const_cast<nn::Model&>(const_model);
  Shape batch_shape = {1};
  batch_shape.insert(batch_shape.end(), input_shape.begin(), input_shape.end());
  // In the parameters' dtype and on their device, as a caller's batch would be.
  const nn::NamedTensors parameters = model.named_parameters();
  const Tensor input = parameters.empty() ? Tensor::zeros(batch_shape)
                                          : Tensor::zeros(batch_shape, parameters[0].second.dtype(),
                                                          parameters[0].second.device());
  NoGradGuard no_grad;
  nn::ModuleStateGuard state(model);
  nn::FloatLayers float_layers;
  ChannelsLastOff nchw(model);
  model.eval();
  GraphBuilder builder(model, input);
  Tensor output;
  {
    trace::ObserverScope observing(&builder);
    try {
      output = model(input);
    } catch (const Error& e) {
      throw Error(absl::StrCat("trace: the forward of an input of shape ", shape_str(batch_shape),
                               " failed (the model is built for inputs [N, ",
                               absl::StrJoin(model.input_shape(), ", "), "]): ", e.what()));
    }
  }
  return builder.finish(output);
}

Tensor forward_with_values(nn::Model& model, const Graph& graph, const Tensor& input,
                           const ValueVisitor& visit) {
  ValueReporter reporter(graph, visit);
  Tensor output;
  {
    trace::ObserverScope observing(&reporter);
    output = model(input);
  }
  reporter.finish();
  return output;
}

}  // namespace ompq::graph
