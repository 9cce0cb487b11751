#include "layers/export/onnx_builder.h"

#include <cstring>
#include <exception>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "layers/export/onnx_subset.h"
#include "onnx/checker.h"
#include "onnx/shape_inference/implementation.h"

namespace ompq::nn::onnx_export {
namespace {

constexpr char kBatchDim[] = "batch";

int32_t onnx_type(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return onnx::TensorProto::FLOAT;
    case DType::kI8:
      return onnx::TensorProto::INT8;
    case DType::kU8:
      return onnx::TensorProto::UINT8;
    case DType::kI32:
      return onnx::TensorProto::INT32;
    case DType::kI64:
      return onnx::TensorProto::INT64;
    default:
      break;
  }
  OMPQ_CHECK(false, "ONNX export: no initializer of dtype ", dtype_name(dtype));
  return onnx::TensorProto::UNDEFINED;
}

// A float tensor value [batch, dims...].
void set_batched_type(onnx::ValueInfoProto& value, const std::vector<int64_t>& dims) {
  onnx::TypeProto_Tensor* type = value.mutable_type()->mutable_tensor_type();
  type->set_elem_type(onnx::TensorProto::FLOAT);
  onnx::TensorShapeProto* shape = type->mutable_shape();
  shape->add_dim()->set_dim_param(kBatchDim);
  for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
}

}  // namespace

OnnxGraphBuilder::OnnxGraphBuilder(const std::string& graph_name, const std::string& input,
                                   const Shape& chw) {
  graph_.set_name(graph_name);
  onnx::ValueInfoProto* value = graph_.add_input();
  value->set_name(unique_name(input));
  set_batched_type(*value, chw);
}

std::string OnnxGraphBuilder::unique_name(const std::string& base) {
  std::string name = base;
  for (int i = 1; !names_.insert(name).second; ++i) name = absl::StrCat(base, "_", i);
  return name;
}

std::string OnnxGraphBuilder::add_initializer(const std::string& name, const Tensor& t) {
  const Tensor c = t.detach().to(Device::cpu()).contiguous();
  onnx::TensorProto* proto = graph_.add_initializer();
  proto->set_name(unique_name(name));
  proto->set_data_type(onnx_type(c.dtype()));
  for (int64_t d : c.shape()) proto->add_dims(d);
  // raw_data is little-endian, as ompq's tensors are in memory on x86 and ARM.
  proto->set_raw_data(c.data_ptr(), c.numel() * dtype_size(c.dtype()));
  return proto->name();
}

onnx::NodeProto& OnnxGraphBuilder::add_node(const std::string& op, const std::string& name,
                                            const std::vector<std::string>& inputs) {
  onnx::NodeProto* node = graph_.add_node();
  node->set_op_type(op);
  node->set_name(unique_name(name));
  for (const std::string& in : inputs) node->add_input(in);
  node->add_output(unique_name(name + "_out"));
  return *node;
}

void OnnxGraphBuilder::set_output(const std::string& tensor, const std::vector<int64_t>& dims) {
  onnx::ValueInfoProto* value = graph_.add_output();
  value->set_name(tensor);
  set_batched_type(*value, dims);
}

onnx::ModelProto OnnxGraphBuilder::finish(const std::string& doc) && {
  onnx::ModelProto model;
  model.set_ir_version(kIrVersion);
  model.set_producer_name("ompq");
  model.set_doc_string(doc);
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOpset);
  *model.mutable_graph() = std::move(graph_);
  return model;
}

void OnnxGraphBuilder::set_ints(onnx::NodeProto& node, const std::string& name,
                                const std::vector<int64_t>& values) {
  onnx::AttributeProto* attr = node.add_attribute();
  attr->set_name(name);
  attr->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) attr->add_ints(v);
}

void OnnxGraphBuilder::set_int(onnx::NodeProto& node, const std::string& name, int64_t value) {
  onnx::AttributeProto* attr = node.add_attribute();
  attr->set_name(name);
  attr->set_type(onnx::AttributeProto::INT);
  attr->set_i(value);
}

void OnnxGraphBuilder::set_float(onnx::NodeProto& node, const std::string& name, float value) {
  onnx::AttributeProto* attr = node.add_attribute();
  attr->set_name(name);
  attr->set_type(onnx::AttributeProto::FLOAT);
  attr->set_f(value);
}

void OnnxGraphBuilder::set_string(onnx::NodeProto& node, const std::string& name,
                                  const std::string& value) {
  onnx::AttributeProto* attr = node.add_attribute();
  attr->set_name(name);
  attr->set_type(onnx::AttributeProto::STRING);
  attr->set_s(value);
}

absl::Status check_and_infer(onnx::ModelProto& model, const std::string& what) {
  OMPQ_RETURN_IF_ERROR(check_operator_subset(model, what));
  try {
    onnx::checker::check_model(model);
    // check_type, strict (node-level inference errors throw), data propagation.
    const onnx::ShapeInferenceOptions strict(true, 1, true);
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(), strict);
  } catch (const std::exception& e) {
    // ONNX puts each shape inference error, and the checker its context, on a line of its own:
    // joined, so that the refusal stays one line in a log.
    const std::vector<absl::string_view> lines =
        absl::StrSplit(e.what(), '\n', absl::SkipWhitespace());
    return absl::InternalError(
        absl::StrCat("ONNX export: ", what,
                     " fails ONNX's checker or shape inference: ", absl::StrJoin(lines, "; ")));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> write_model_file(const onnx::ModelProto& model, const std::string& path) {
  std::string bytes;
  if (!model.SerializeToString(&bytes)) {
    return absl::InternalError(
        absl::StrCat("ONNX export: ", path, ": the model does not serialize (",
                     model.ByteSizeLong(), " bytes; protobuf's limit is 2 GiB)"));
  }
  OMPQ_RETURN_IF_ERROR(write_file_atomically(path, bytes));
  return static_cast<int64_t>(bytes.size());
}

}  // namespace ompq::nn::onnx_export
