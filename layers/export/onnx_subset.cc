#include "layers/export/onnx_subset.h"

#include <cstdint>
#include <set>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ompq::nn::onnx_export {
namespace {

// What layers/export/onnx_export.cc and qdq.cc emit.
const std::set<std::string>& exported_operators() {
  static const std::set<std::string> ops = {"Add",
                                            "AveragePool",
                                            "BatchNormalization",
                                            "Clip",
                                            "Concat",
                                            "Conv",
                                            "DequantizeLinear",
                                            "Expand",
                                            "Flatten",
                                            "Gemm",
                                            "GlobalAveragePool",
                                            "MaxPool",
                                            "Mul",
                                            "QuantizeLinear",
                                            "Relu",
                                            "Reshape",
                                            "Sub"};
  return ops;
}

// A name from the file, quoted, with control characters escaped: a refusal stays one line.
std::string quoted(const std::string& name) {
  return absl::StrCat("\"", absl::CHexEscape(name), "\"");
}

std::string describe(const onnx::NodeProto& node) {
  return absl::StrCat("node ", quoted(node.name()), " (", absl::CHexEscape(node.op_type()), ")");
}

const onnx::AttributeProto* find_attribute(const onnx::NodeProto& node, const std::string& name) {
  for (const onnx::AttributeProto& a : node.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

// The problem with a conv's or pool's window attributes, or "" when there is none. ONNX's own
// shape inference checks their lengths against the input's rank; what it leaves to the file is
// that they are in range.
std::string window_problem(const onnx::NodeProto& node) {
  const onnx::AttributeProto* kernel = find_attribute(node, "kernel_shape");
  if (kernel == nullptr || kernel->ints_size() == 0) return "no kernel_shape";
  const int axes = kernel->ints_size();
  for (const onnx::AttributeProto& a : node.attribute()) {
    const std::vector<int64_t> values(a.ints().begin(), a.ints().end());
    const std::string listed =
        absl::StrCat(absl::CHexEscape(a.name()), " [", absl::StrJoin(values, ", "), "]");
    const bool window =
        a.name() == "kernel_shape" || a.name() == "strides" || a.name() == "dilations";
    if (window || a.name() == "pads") {
      const int expected = window ? axes : 2 * axes;
      if (a.ints_size() != expected) {
        return absl::StrCat(listed, " has ", a.ints_size(), " values for ", axes,
                            " spatial axes (expected ", expected, ")");
      }
      const int64_t minimum = window ? 1 : 0;
      for (int64_t v : values) {
        if (v < minimum) return absl::StrCat(listed, ": every value must be >= ", minimum);
      }
    } else if (a.name() == "group" && a.i() < 1) {
      return absl::StrCat("group ", a.i(), " must be >= 1");
    }
  }
  return "";
}

// The first negative dimension among a declared tensor type's, as a message, or "".
std::string negative_dimension(const onnx::ValueInfoProto& value) {
  if (!value.type().has_tensor_type() || !value.type().tensor_type().has_shape()) return "";
  const onnx::TensorShapeProto& shape = value.type().tensor_type().shape();
  for (int i = 0; i < shape.dim_size(); ++i) {
    if (shape.dim(i).has_dim_value() && shape.dim(i).dim_value() < 0) {
      return absl::StrCat("tensor ", quoted(value.name()), " declares dimension ", i, " as ",
                          shape.dim(i).dim_value());
    }
  }
  return "";
}

}  // namespace

absl::Status check_operator_subset(const onnx::ModelProto& model, const std::string& what) {
  const auto refuse = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("ONNX model ", what, ": ", why));
  };
  if (model.functions_size() > 0) {
    return refuse(
        absl::StrCat("has ", model.functions_size(), " local functions (ompq's files have none)"));
  }
  const onnx::GraphProto& graph = model.graph();
  for (const onnx::NodeProto& node : graph.node()) {
    if ((!node.domain().empty() && node.domain() != "ai.onnx") ||
        exported_operators().count(node.op_type()) == 0) {
      return refuse(absl::StrCat(
          describe(node),
          node.domain().empty() ? "" : absl::StrCat(" in domain ", quoted(node.domain())),
          " is not one of the operators ompq exports (", absl::StrJoin(exported_operators(), ", "),
          ")"));
    }
    const std::string& op = node.op_type();
    if (op == "Conv" || op == "MaxPool" || op == "AveragePool") {
      const std::string problem = window_problem(node);
      if (!problem.empty()) return refuse(absl::StrCat(describe(node), ": ", problem));
    }
  }
  for (const auto* values : {&graph.input(), &graph.output(), &graph.value_info()}) {
    for (const onnx::ValueInfoProto& value : *values) {
      const std::string problem = negative_dimension(value);
      if (!problem.empty()) return refuse(problem);
    }
  }
  for (const onnx::TensorProto& t : graph.initializer()) {
    for (int64_t d : t.dims()) {
      if (d < 0) {
        return refuse(absl::StrCat("initializer ", quoted(t.name()), " has dimension ", d));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace ompq::nn::onnx_export
