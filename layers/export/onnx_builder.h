// Builds an ONNX graph (Debian's libonnx protobuf classes) node by node for the exporters in this
// folder: initializers from ompq tensors, nodes with attributes, and tensor names made unique.
// Internal to layers/export/ (it exposes ONNX's classes; the public header is onnx_export.h).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "onnx/onnx_pb.h"

namespace ompq::nn::onnx_export {

// Opset 13: QuantizeLinear/DequantizeLinear with per-channel axis, and what every runtime that
// runs QDQ models (ONNX Runtime, TensorRT 8+, OpenVINO) reads. IR version 7 is the one released
// with it, so no runtime that reads the opset refuses the file for its IR version.
constexpr int64_t kOpset = 13;
constexpr int64_t kIrVersion = 7;

class OnnxGraphBuilder {
 public:
  // `input`: the graph input's name; its shape is [batch, C, H, W] with a symbolic batch.
  OnnxGraphBuilder(const std::string& graph_name, const std::string& input, const Shape& chw);

  // A name not used yet, made from `base` (tensor names must be unique in a graph).
  std::string unique_name(const std::string& base);
  // Adds tensor `t` (f32, i8, u8, i32 or i64; copied) as an initializer named unique_name(name).
  std::string add_initializer(const std::string& name, const Tensor& t);
  // Adds a node `op` named after `name` with one output, returning the output's name.
  onnx::NodeProto& add_node(const std::string& op, const std::string& name,
                            const std::vector<std::string>& inputs);
  // The output tensor name of a node made by add_node.
  static const std::string& output(const onnx::NodeProto& node) { return node.output(0); }

  onnx::GraphProto& graph() { return graph_; }
  // Marks `tensor` as the graph's output, [batch, dims...].
  void set_output(const std::string& tensor, const std::vector<int64_t>& dims);

  // The model (opset kOpset, IR kIrVersion) with `doc` as its doc_string.
  onnx::ModelProto finish(const std::string& doc) &&;

  static void set_ints(onnx::NodeProto& node, const std::string& name,
                       const std::vector<int64_t>& values);
  static void set_int(onnx::NodeProto& node, const std::string& name, int64_t value);
  static void set_float(onnx::NodeProto& node, const std::string& name, float value);
  static void set_string(onnx::NodeProto& node, const std::string& name, const std::string& value);

 private:
  onnx::GraphProto graph_;
  std::set<std::string> names_;
};

// Checks that `model` keeps to the operator subset the exporters write (onnx_subset.h), then runs
// ONNX's checker and its strict shape inference (types checked, every node's inference errors
// raised, data propagation on) on it, in place: the inferred shapes of every
// intermediate tensor end up in its value_info. Errors name `what` (e.g. the file).
absl::Status check_and_infer(onnx::ModelProto& model, const std::string& what);

// Writes the model to `path` atomically; returns the file's size.
absl::StatusOr<int64_t> write_model_file(const onnx::ModelProto& model, const std::string& path);

}  // namespace ompq::nn::onnx_export
