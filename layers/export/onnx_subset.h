// The ONNX operators ompq's exporters write, and the attribute rules ONNX states for them, checked
// on a parsed model before ONNX's own checker and shape inference see it. Debian's libonnx (1.12)
// divides by a conv's or pool's strides in its shape inference without checking them (a zero
// stride is a division by zero that kills the process), and other operators' inference functions
// have had crashes of their own: keeping every model that reaches it to this small, checked subset
// is what makes reading an untrusted file safe. Internal to layers/export/.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "onnx/onnx_pb.h"

namespace ompq::nn::onnx_export {

// OK when every node of `model`'s graph is one of the operators the exporters write (default
// domain), its conv and pool attributes are in ONNX's ranges (kernel, strides, dilations >= 1;
// pads >= 0; one kernel size, stride and dilation per spatial axis, two pads; group >= 1), the
// model has no local functions, and no declared tensor shape has a negative dimension. Errors name
// `what` (e.g. the file) and the node.
absl::Status check_operator_subset(const onnx::ModelProto& model, const std::string& what);

}  // namespace ompq::nn::onnx_export
