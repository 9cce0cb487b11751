#include "layers/export/onnx_export.h"

#include <fstream>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/autograd.h"
#include "core/error.h"
#include "layers/export/onnx_builder.h"
#include "layers/export/qdq.h"
#include "layers/quant/bn_fold.h"

namespace ompq::nn {
namespace {

using graph::Graph;
using graph::Node;
using graph::NodeId;
using graph::OpKind;
using graph::ValueId;
using onnx_export::OnnxGraphBuilder;

constexpr char kInputName[] = "input";
constexpr char kOutputName[] = "logits";

// "layer1.0.conv1 (conv2d)": how errors name a node.
std::string describe(const Node& node) {
  return absl::StrCat(node.module.empty() ? "<model>" : node.module, " (",
                      graph::op_kind_name(node.kind), ")");
}

// Dimensions after the batch.
std::vector<int64_t> feature_dims(const Shape& shape) {
  return std::vector<int64_t>(shape.begin() + 1, shape.end());
}

// Writes one graph as ONNX: FP32 nodes, and QDQ for the layers of `packed` when it is given.
class Exporter {
 public:
  Exporter(const Graph& graph, const TensorMap& parameters, const PackedModel* packed,
           bool fold_batch_norm, QdqActivationCodes activation_codes)
      : graph_(graph),
        parameters_(parameters),
        fold_batch_norm_(fold_batch_norm),
        activation_codes_(activation_codes),
        builder_("ompq", kInputName, feature_dims(graph.value(graph.input).shape)) {
    for (const graph::Layer& layer : graph.layers()) {
      layer_of_node_[layer.node] = layer;
      node_of_layer_[layer.name] = layer.node;
    }
    if (packed == nullptr) return;
    for (const PackedLayer& layer : packed->layers) {
      OMPQ_CHECK(node_of_layer_.count(layer.name), "ONNX export: packed layer \"", layer.name,
                 "\" is no conv or linear node of the model's graph (a packed model of another "
                 "architecture?)");
      packed_[layer.name] = &layer;
    }
    for (const PackedLayer& layer : packed->layers) plan_output_pair(layer);
  }

  onnx::ModelProto run(const std::string& doc) && {
    for (NodeId n = 0; n < static_cast<NodeId>(graph_.nodes.size()); ++n) emit(n);
    const std::string& output = names_.at(graph_.output);
    OMPQ_CHECK(output != kInputName && graph_.producer(graph_.output).kind != OpKind::kConstant,
               "ONNX export: the model's output is its input or a constant");
    rename_output(output, kOutputName);
    builder_.set_output(kOutputName, feature_dims(graph_.value(graph_.output).shape));
    return std::move(builder_).finish(doc);
  }

  int64_t quantized_layers() const { return static_cast<int64_t>(exported_.size()); }
  const std::vector<std::string>& saturated() const { return saturated_; }
  // The traced shape (after the batch) of every tensor named for a graph value, for comparison
  // with what ONNX's shape inference finds.
  const std::map<std::string, std::vector<int64_t>>& expected_dims() const {
    return expected_dims_;
  }

 private:
  void emit(NodeId n) {
    const Node& node = graph_.nodes[n];
    std::string out;
    switch (node.kind) {
      case OpKind::kInput:
        out = kInputName;
        break;
      case OpKind::kConstant:
        OMPQ_CHECK(!node.parameters.empty() && !node.parameters[0].empty(), "ONNX export: node ",
                   describe(node), " is a tensor made inside forward(), which is not exported");
        out = parameter_initializer(node, node.parameters[0]);
        break;
      case OpKind::kConv2d:
      case OpKind::kLinear:
        out = emit_layer(n);
        break;
      case OpKind::kBatchNorm:
        out = folded_.count(n) ? input(node, 0) : emit_batch_norm(node);
        break;
      case OpKind::kAdd:
      case OpKind::kSub:
      case OpKind::kMul: {
        const char* op = node.kind == OpKind::kAdd   ? "Add"
                         : node.kind == OpKind::kSub ? "Sub"
                                                     : "Mul";
        out = output(builder_.add_node(op, node_name(node), {input(node, 0), input(node, 1)}));
        break;
      }
      case OpKind::kRelu:
        out = output(builder_.add_node("Relu", node_name(node), {input(node, 0)}));
        break;
      case OpKind::kRelu6:
        out = output(builder_.add_node("Clip", node_name(node),
                                       {input(node, 0), scalar(node.module + ".relu6_min", 0.0f),
                                        scalar(node.module + ".relu6_max", 6.0f)}));
        break;
      case OpKind::kMaxPool2d:
      case OpKind::kAvgPool2d:
        out = emit_pool(node);
        break;
      case OpKind::kAdaptiveAvgPool2d:
        out = emit_adaptive_pool(node);
        break;
      case OpKind::kReshape:
        out = emit_reshape(node);
        break;
      case OpKind::kDropout:  // the identity in eval mode
        out = input(node, 0);
        break;
      case OpKind::kConcat: {
        std::vector<std::string> inputs;
        for (size_t i = 0; i < node.inputs.size(); ++i) inputs.push_back(input(node, i));
        onnx::NodeProto& concat = builder_.add_node("Concat", node_name(node), inputs);
        const int64_t rank = static_cast<int64_t>(graph_.value(node.output).shape.size());
        const int64_t dim =
            node.attributes.dim < 0 ? node.attributes.dim + rank : node.attributes.dim;
        OMPQ_CHECK(dim != 0, "ONNX export: node ", describe(node),
                   " concatenates along the batch dimension");
        OnnxGraphBuilder::set_int(concat, "axis", dim);
        out = output(concat);
        break;
      }
    }
    names_[node.output] = out;
    // Batched values only: the input is declared, a constant is an initializer.
    if (node.kind != OpKind::kInput && node.kind != OpKind::kConstant) {
      expected_dims_[out] = feature_dims(graph_.value(node.output).shape);
    }
  }

  static const std::string& output(const onnx::NodeProto& node) {
    return OnnxGraphBuilder::output(node);
  }

  std::string node_name(const Node& node) const {
    return absl::StrCat(node.module.empty() ? "model" : node.module, "/",
                        graph::op_kind_name(node.kind));
  }

  // The ONNX name of the node's i-th input value.
  const std::string& input(const Node& node, size_t i) const {
    return names_.at(node.inputs.at(i));
  }

  const Tensor& parameter(const Node& node, const std::string& name) const {
    auto it = parameters_.find(name);
    OMPQ_CHECK(it != parameters_.end(), "ONNX export: node ", describe(node), " reads parameter \"",
               name, "\", which the weights do not hold");
    return it->second;
  }

  std::string parameter_initializer(const Node& node, const std::string& name) {
    return builder_.add_initializer(name, parameter(node, name).to(DType::kF32));
  }

  std::string scalar(const std::string& name, float value) {
    return builder_.add_initializer(name, Tensor::scalar(value));
  }

  // ONNX Runtime and OpenVINO run DequantizeLinear -> Conv -> QuantizeLinear as an integer
  // convolution (ORT's QLinearConv) only where a QuantizeLinear reads the conv's output; without
  // one the conv runs in float on dequantized weights. A conv whose output (its batch norm folded)
  // reaches nothing but a ReLU or ReLU6, whose output in turn reaches nothing but the input
  // quantizer of one packed layer, gets that quantizer's pair on its output too when the pair
  // has zero point 0 and no Clip (8-bit codes):
  //   signed symmetric (QAT): Conv -> Q/DQ (int8) -> Relu -> Q/DQ (same scale, uint8, zero 0)
  //   unsigned (PTQ):         Conv -> Q/DQ (uint8) -> Relu -> Q/DQ (the layer's own pair)
  // (ReLU6: Clip(0, 6) in place of Relu). This is ompq's arithmetic exactly: rounding is monotonic
  // and zero rounds to zero, so the activation of the quantized value, quantized again with the
  // same scale, is the quantized activation (for ReLU6 too: a code above 6 / s clips to 6, which
  // rounds to the code 6 rounds to); codes stay within [0, qmax] (127 as int8 saturates), which
  // the uint8 pair passes unchanged. ORT drops a Relu before a QuantizeLinear whose zero point is
  // its type's lowest value, then the repeated pair, and fuses the conv. Other patterns (a
  // residual add, a shortcut reading the same ReLU, a Clip below 8 bits, affine pairs) keep the
  // pair on the layer's input only.
  void plan_output_pair(const PackedLayer& producer) {
    if (producer.kind != QuantizableLayer::Kind::kConv2d) return;
    const graph::Layer& layer = layer_of_node_.at(node_of_layer_.at(producer.name));
    ValueId y = graph_.nodes[layer.node].output;
    if (!producer.folded_batch_norm.empty()) {
      if (layer.batch_norm < 0) return;  // check_packed_layer reports the mismatch
      y = graph_.nodes[layer.batch_norm].output;
    }
    const NodeId activation = graph_.sole_consumer(y);
    if (activation < 0 || (graph_.nodes[activation].kind != OpKind::kRelu &&
                           graph_.nodes[activation].kind != OpKind::kRelu6)) {
      return;
    }
    const NodeId reader = graph_.sole_consumer(graph_.nodes[activation].output);
    if (reader < 0 || !layer_of_node_.count(reader)) return;
    auto consumer = packed_.find(graph_.nodes[reader].module);
    if (consumer == packed_.end() || !consumer->second->input) return;
    const ActivationQdq qdq = activation_qdq(*consumer->second->input, consumer->second->name);
    if (qdq.zero_point != 0 || qdq.clip || qdq.saturated_levels > 0) return;
    output_pair_[producer.name] = qdq;
    if (qdq.type != QdqType::kInt8) return;  // uint8: the layer's own input pair follows as is
    ActivationQdq after_activation = qdq;
    if (activation_codes_ == QdqActivationCodes::kUnsignedWhereNonNegative) {
      after_activation.type = QdqType::kUint8;
    }
    input_pair_after_activation_[consumer->second->name] = after_activation;
  }

  // Whether every element of `value` is >= 0: a ReLU's (or ReLU6's) output, or such a value
  // passed on by pooling, reshaping or dropout.
  bool non_negative(ValueId value) const {
    const Node& producer = graph_.producer(value);
    switch (producer.kind) {
      case OpKind::kRelu:
      case OpKind::kRelu6:
        return true;
      case OpKind::kMaxPool2d:
      case OpKind::kAvgPool2d:
      case OpKind::kAdaptiveAvgPool2d:
      case OpKind::kReshape:
      case OpKind::kDropout:
        return non_negative(producer.inputs.at(0));
      default:
        return false;
    }
  }

  // The pair on packed layer `p`'s input (`node`'s first input): the uint8 one plan_output_pair
  // chose, or its quantizer's, unsigned where the input cannot be negative.
  ActivationQdq input_pair(const Node& node, const PackedLayer& p) const {
    auto after_activation = input_pair_after_activation_.find(p.name);
    if (after_activation != input_pair_after_activation_.end()) return after_activation->second;
    const ActivationQdq qdq = activation_qdq(*p.input, p.name);
    const bool unsigned_codes = activation_codes_ == QdqActivationCodes::kUnsignedWhereNonNegative;
    return unsigned_codes && non_negative(node.inputs[0]) ? unsigned_for_non_negative(qdq) : qdq;
  }

  // A conv or linear node: FP32 (its batch norm folded in when asked) or, for a packed layer, QDQ.
  std::string emit_layer(NodeId n) {
    const Node& node = graph_.nodes[n];
    const graph::Layer& layer = layer_of_node_.at(n);
    auto packed = packed_.find(node.module);
    std::string x = input(node, 0), weight, bias;
    Shape weight_shape;
    if (packed != packed_.end()) {
      const PackedLayer& p = *packed->second;
      check_packed_layer(node, layer, p);
      if (p.input) {
        const ActivationQdq qdq = input_pair(node, p);
        if (qdq.saturated_levels > 0) {
          saturated_.push_back(
              absl::StrCat(p.name, " input: up to ", qdq.saturated_levels, " steps"));
        }
        x = quantize_dequantize(x, qdq, p.name + ".input");
      }
      weight = dequantized_weight(p);
      if (p.bias.defined()) bias = builder_.add_initializer(p.name + ".bias", p.bias);
      weight_shape = p.weight_shape;
      exported_.insert(p.name);
    } else {
      Tensor w = parameter(node, node.parameters.at(0)).to(DType::kF32);
      Tensor b = node.parameters.at(1).empty()
                     ? Tensor()
                     : parameter(node, node.parameters[1]).to(DType::kF32);
      if (fold_batch_norm_ && layer.batch_norm >= 0) {
        const Node& bn = graph_.nodes[layer.batch_norm];
        NoGradGuard no_grad;
        FoldedWeights folded =
            fold_batch_norm(w, b, optional_parameter(bn, 0), optional_parameter(bn, 1),
                            parameter(bn, bn.parameters.at(2)), parameter(bn, bn.parameters.at(3)),
                            bn.attributes.eps);
        w = folded.weight;
        b = folded.bias;
        folded_.insert(layer.batch_norm);
      }
      weight = builder_.add_initializer(node.module + ".weight", w);
      if (b.defined()) bias = builder_.add_initializer(node.module + ".bias", b);
      weight_shape = w.shape();
    }
    std::vector<std::string> inputs = {x, weight};
    if (!bias.empty()) inputs.push_back(bias);
    if (node.kind == OpKind::kLinear) {
      OMPQ_CHECK(graph_.value(node.inputs[0]).shape.size() == 2, "ONNX export: node ",
                 describe(node), " multiplies a ", shape_str(graph_.value(node.inputs[0]).shape),
                 " input (Gemm takes [batch, features])");
      onnx::NodeProto& gemm = builder_.add_node("Gemm", node_name(node), inputs);
      OnnxGraphBuilder::set_int(gemm, "transB", 1);  // weight [out, in], as torch.nn.Linear
      return output(gemm);
    }
    const Conv2dParams& p = node.attributes.conv;
    onnx::NodeProto& conv = builder_.add_node("Conv", node_name(node), inputs);
    OnnxGraphBuilder::set_ints(conv, "kernel_shape", {weight_shape[2], weight_shape[3]});
    OnnxGraphBuilder::set_ints(conv, "strides", {p.stride[0], p.stride[1]});
    OnnxGraphBuilder::set_ints(conv, "pads",
                               {p.padding[0], p.padding[1], p.padding[0], p.padding[1]});
    OnnxGraphBuilder::set_ints(conv, "dilations", {p.dilation[0], p.dilation[1]});
    OnnxGraphBuilder::set_int(conv, "group", p.groups);
    auto pair = output_pair_.find(node.module);
    if (pair == output_pair_.end()) return output(conv);
    return quantize_dequantize(output(conv), pair->second, node.module + ".output");
  }

  // A batch norm's scale or shift ("" in the graph: none, i.e. ones / zeros).
  Tensor optional_parameter(const Node& bn, size_t i) const {
    const std::string& name = bn.parameters.at(i);
    return name.empty() ? Tensor() : parameter(bn, name).to(DType::kF32);
  }

  void check_packed_layer(const Node& node, const graph::Layer& layer, const PackedLayer& p) {
    const bool conv = node.kind == OpKind::kConv2d;
    OMPQ_CHECK(conv == (p.kind == QuantizableLayer::Kind::kConv2d), "ONNX export: packed layer \"",
               p.name, "\" is a ", conv ? "linear layer" : "conv", " but the graph's node is ",
               describe(node));
    if (p.folded_batch_norm.empty()) return;
    OMPQ_CHECK(
        layer.batch_norm >= 0 && graph_.nodes[layer.batch_norm].module == p.folded_batch_norm,
        "ONNX export: packed layer \"", p.name, "\" folded batch norm \"", p.folded_batch_norm,
        "\", but in the graph ",
        layer.batch_norm >= 0
            ? absl::StrCat("\"", graph_.nodes[layer.batch_norm].module, "\" follows it")
            : std::string("no batch norm alone reads its output"));
    folded_.insert(layer.batch_norm);
  }

  // [Clip ->] QuantizeLinear -> DequantizeLinear of tensor `x`.
  std::string quantize_dequantize(const std::string& x, const ActivationQdq& qdq,
                                  const std::string& name) {
    std::string clipped = x;
    if (qdq.clip) {
      clipped = output(builder_.add_node(
          "Clip", name + "/clip",
          {x, scalar(name + "_clip_min", qdq.clip->lo), scalar(name + "_clip_max", qdq.clip->hi)}));
    }
    const std::string scale = scalar(name + "_scale", qdq.scale);
    const std::string zero_point = builder_.add_initializer(
        name + "_zero_point",
        qdq.type == QdqType::kInt8
            ? Tensor::from_vector<int8_t>({static_cast<int8_t>(qdq.zero_point)}, {})
            : Tensor::from_vector<uint8_t>({static_cast<uint8_t>(qdq.zero_point)}, {}));
    const std::string codes = output(
        builder_.add_node("QuantizeLinear", name + "/quantize", {clipped, scale, zero_point}));
    return output(
        builder_.add_node("DequantizeLinear", name + "/dequantize", {codes, scale, zero_point}));
  }

  // The layer's weight codes through DequantizeLinear.
  std::string dequantized_weight(const PackedLayer& p) {
    const WeightQdq qdq = weight_qdq(p);
    if (qdq.saturated_channels > 0) {
      saturated_.push_back(absl::StrCat(p.name, " weight: ", qdq.saturated_channels,
                                        " channels, up to ", qdq.saturated_levels, " steps"));
    }
    onnx::NodeProto& dq = builder_.add_node(
        "DequantizeLinear", p.name + ".weight/dequantize",
        {builder_.add_initializer(p.name + ".weight_codes", qdq.codes),
         builder_.add_initializer(p.name + ".weight_scale", qdq.scale),
         builder_.add_initializer(p.name + ".weight_zero_point", qdq.zero_point)});
    if (qdq.axis) OnnxGraphBuilder::set_int(dq, "axis", *qdq.axis);
    return output(dq);
  }

  std::string emit_batch_norm(const Node& node) {
    const int64_t channels = graph_.value(node.inputs[0]).shape.at(1);
    Tensor gamma = optional_parameter(node, 0), beta = optional_parameter(node, 1);
    if (!gamma.defined()) gamma = Tensor::ones({channels});
    if (!beta.defined()) beta = Tensor::zeros({channels});
    const std::string prefix = node.module + ".";
    onnx::NodeProto& bn =
        builder_.add_node("BatchNormalization", node_name(node),
                          {input(node, 0), builder_.add_initializer(prefix + "weight", gamma),
                           builder_.add_initializer(prefix + "bias", beta),
                           parameter_initializer(node, node.parameters.at(2)),
                           parameter_initializer(node, node.parameters.at(3))});
    OnnxGraphBuilder::set_float(bn, "epsilon", static_cast<float>(node.attributes.eps));
    return output(bn);
  }

  std::string emit_pool(const Node& node) {
    const Pool2dParams& p = node.attributes.pool;
    const bool max = node.kind == OpKind::kMaxPool2d;
    onnx::NodeProto& pool =
        builder_.add_node(max ? "MaxPool" : "AveragePool", node_name(node), {input(node, 0)});
    OnnxGraphBuilder::set_ints(pool, "kernel_shape", {p.kernel[0], p.kernel[1]});
    OnnxGraphBuilder::set_ints(pool, "strides", {p.stride[0], p.stride[1]});
    OnnxGraphBuilder::set_ints(pool, "pads",
                               {p.padding[0], p.padding[1], p.padding[0], p.padding[1]});
    // ompq's average pooling counts the zero padding (PyTorch's count_include_pad=True).
    if (!max) OnnxGraphBuilder::set_int(pool, "count_include_pad", 1);
    return output(pool);
  }

  // adaptive_avg_pool2d as traced: the global pool; equal non-overlapping bins (an AveragePool
  // whose kernel is its stride); or bins of one cell each, when the output is a whole multiple of
  // the input (PyTorch's bin i of an n-times larger output is cell floor(i / n): VGG's 7x7 pool of
  // a small input's 1x1 map), each cell repeated. Bins of unequal sizes have no ONNX operator.
  std::string emit_adaptive_pool(const Node& node) {
    const Shape& in = graph_.value(node.inputs[0]).shape;
    const std::array<int64_t, 2> out = node.attributes.output_size;
    if (out[0] == 1 && out[1] == 1) {
      return output(builder_.add_node("GlobalAveragePool", node_name(node), {input(node, 0)}));
    }
    OMPQ_CHECK(in.size() == 4, "ONNX export: node ", describe(node), " pools a ", in.size(),
               "-d value ", shape_str(in), " (expected [N, C, H, W])");
    if (out[0] % in[2] == 0 && out[1] % in[3] == 0) {
      // [N, C, h, w] -> [N, C, h, 1, w, 1] -> broadcast to [N, C, h, kh, w, kw] -> [N, C, h*kh,
      // w*kw]; Reshape's 0 copies the symbolic batch, which a Resize's scales would lose.
      const int64_t kh = out[0] / in[2], kw = out[1] / in[3];
      const auto shape = [&](const std::string& suffix, const std::vector<int64_t>& dims) {
        return builder_.add_initializer(
            node.module + suffix, Tensor::from_vector(dims, {static_cast<int64_t>(dims.size())}));
      };
      const std::string name = node_name(node);
      onnx::NodeProto& split =
          builder_.add_node("Reshape", name + "_cells",
                            {input(node, 0), shape(".cells", {0, 0, in[2], 1, in[3], 1})});
      onnx::NodeProto& repeat = builder_.add_node(
          "Expand", name + "_repeat", {split.output(0), shape(".repeats", {1, 1, 1, kh, 1, kw})});
      return output(builder_.add_node("Reshape", name,
                                      {repeat.output(0), shape(".bins", {0, 0, out[0], out[1]})}));
    }
    OMPQ_CHECK(in[2] % out[0] == 0 && in[3] % out[1] == 0, "ONNX export: node ", describe(node),
               " pools ", shape_str(in), " to ", out[0], "x", out[1],
               " bins of unequal sizes, which no ONNX operator computes");
    const int64_t kh = in[2] / out[0], kw = in[3] / out[1];
    onnx::NodeProto& pool = builder_.add_node("AveragePool", node_name(node), {input(node, 0)});
    OnnxGraphBuilder::set_ints(pool, "kernel_shape", {kh, kw});
    OnnxGraphBuilder::set_ints(pool, "strides", {kh, kw});
    return output(pool);
  }

  // Flatten from dimension 1 on, or a Reshape that keeps the batch dimension (0 copies it).
  std::string emit_reshape(const Node& node) {
    const Shape& in = graph_.value(node.inputs[0]).shape;
    const Shape& out = graph_.value(node.output).shape;
    OMPQ_CHECK(!in.empty() && !out.empty() && in[0] == out[0], "ONNX export: node ", describe(node),
               " reshapes ", shape_str(in), " to ", shape_str(out),
               ", changing the batch dimension");
    if (out.size() == 2 && in.size() >= 2) {
      onnx::NodeProto& flatten = builder_.add_node("Flatten", node_name(node), {input(node, 0)});
      OnnxGraphBuilder::set_int(flatten, "axis", 1);
      return output(flatten);
    }
    std::vector<int64_t> target = feature_dims(out);
    target.insert(target.begin(), 0);
    return output(builder_.add_node(
        "Reshape", node_name(node),
        {input(node, 0), builder_.add_initializer(
                             node.module + ".shape",
                             Tensor::from_vector(target, {static_cast<int64_t>(target.size())}))}));
  }

  // Gives the graph's output its public name: the node that writes it writes "logits" instead.
  void rename_output(const std::string& from, const std::string& to) {
    onnx::GraphProto& g = builder_.graph();
    for (onnx::NodeProto& node : *g.mutable_node()) {
      for (std::string& name : *node.mutable_output()) {
        if (name == from) name = to;
      }
      for (std::string& name : *node.mutable_input()) {
        if (name == from) name = to;
      }
    }
    expected_dims_[to] = expected_dims_.at(from);
    expected_dims_.erase(from);
  }

  const Graph& graph_;
  const TensorMap& parameters_;
  const bool fold_batch_norm_;
  const QdqActivationCodes activation_codes_;
  OnnxGraphBuilder builder_;
  std::map<std::string, const PackedLayer*> packed_;
  std::map<NodeId, graph::Layer> layer_of_node_;
  std::map<std::string, NodeId> node_of_layer_;
  std::map<ValueId, std::string> names_;  // graph value -> ONNX tensor
  std::set<NodeId> folded_;               // batch norms folded into their layer
  std::set<std::string> exported_;        // packed layers written as QDQ
  // plan_output_pair: the pair on a packed conv's output, and the uint8 pair that replaces the
  // input pair of the layer reading that conv's ReLU or ReLU6, by layer name.
  std::map<std::string, ActivationQdq> output_pair_, input_pair_after_activation_;
  std::vector<std::string> saturated_;
  std::map<std::string, std::vector<int64_t>> expected_dims_;
};

// The dimensions after the batch that shape inference gave `value`, or a message saying why not.
absl::StatusOr<std::vector<int64_t>> inferred_dims(const onnx::ValueInfoProto& value) {
  if (!value.type().has_tensor_type() || !value.type().tensor_type().has_shape()) {
    return absl::InternalError("no shape");
  }
  const onnx::TensorShapeProto& shape = value.type().tensor_type().shape();
  std::vector<int64_t> dims;
  for (int i = 1; i < shape.dim_size(); ++i) {
    if (!shape.dim(i).has_dim_value()) return absl::InternalError("a symbolic dimension");
    dims.push_back(shape.dim(i).dim_value());
  }
  if (shape.dim_size() == 0 || shape.dim(0).dim_param() != "batch") {
    return absl::InternalError("no batch dimension");
  }
  return dims;
}

// Every traced value's shape must be what ONNX's shape inference derives from the operators'
// attributes: a wrong pad, stride or axis shows up here, before any runtime sees the file.
absl::Status check_inferred_shapes(const onnx::ModelProto& model,
                                   const std::map<std::string, std::vector<int64_t>>& expected,
                                   const std::string& path) {
  std::map<std::string, const onnx::ValueInfoProto*> inferred;
  for (const onnx::ValueInfoProto& v : model.graph().value_info()) inferred[v.name()] = &v;
  for (const onnx::ValueInfoProto& v : model.graph().output()) inferred[v.name()] = &v;
  for (const onnx::ValueInfoProto& v : model.graph().input()) inferred[v.name()] = &v;
  for (const auto& [name, dims] : expected) {
    auto it = inferred.find(name);
    if (it == inferred.end()) {
      return absl::InternalError(
          absl::StrCat("ONNX export: ", path, ": shape inference found no shape for ", name));
    }
    absl::StatusOr<std::vector<int64_t>> got = inferred_dims(*it->second);
    if (!got.ok() || *got != dims) {
      return absl::InternalError(
          absl::StrCat("ONNX export: ", path, ": ", name, " is traced as [batch, ",
                       absl::StrJoin(dims, ", "), "] but ONNX infers ",
                       got.ok() ? absl::StrCat("[batch, ", absl::StrJoin(*got, ", "), "]")
                                : std::string(got.status().message())));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<OnnxExportSummary> export_graph(const Graph& graph, const TensorMap& parameters,
                                               const PackedModel* packed, bool fold_batch_norm,
                                               QdqActivationCodes activation_codes,
                                               const std::string& doc, const std::string& path) {
  onnx::ModelProto model;
  OnnxExportSummary summary;
  std::map<std::string, std::vector<int64_t>> expected;
  try {
    Exporter exporter(graph, parameters, packed, fold_batch_norm, activation_codes);
    model = std::move(exporter).run(doc);
    summary.quantized_layers = exporter.quantized_layers();
    summary.saturated = exporter.saturated();
    expected = exporter.expected_dims();
  } catch (const Error& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }
  OMPQ_RETURN_IF_ERROR(onnx_export::check_and_infer(model, path));
  OMPQ_RETURN_IF_ERROR(check_inferred_shapes(model, expected, path));
  summary.nodes = model.graph().node_size();
  OMPQ_ASSIGN_OR_RETURN(summary.bytes, onnx_export::write_model_file(model, path));
  return summary;
}

}  // namespace

absl::StatusOr<OnnxExportSummary> export_fp32_onnx(const graph::Graph& graph,
                                                   const TensorMap& state,
                                                   const OnnxExportOptions& options,
                                                   const std::string& path) {
  return export_graph(
      graph, state, nullptr, options.fold_batch_norm, QdqActivationCodes::kSigned,
      options.fold_batch_norm ? "ompq FP32 model, batch norms folded" : "ompq FP32 model", path);
}

absl::StatusOr<OnnxExportSummary> export_qdq_onnx(const graph::Graph& graph,
                                                  const PackedModel& packed,
                                                  const std::string& path,
                                                  const QdqExportOptions& options) {
  return export_graph(graph, packed.float_state, &packed, false, options.activation_codes,
                      "ompq mixed-precision model (QDQ: int8 weight codes spanning each layer's "
                      "bit-width, per-channel scales; per-tensor activation quantizers)",
                      path);
}

absl::Status check_onnx_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  onnx::ModelProto model;
  if (!model.ParseFromIstream(&in)) {
    return absl::DataLossError(absl::StrCat(path, ": not an ONNX model (protobuf parse failed)"));
  }
  return onnx_export::check_and_infer(model, path);
}

}  // namespace ompq::nn
