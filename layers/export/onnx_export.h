// ONNX export of a traced model graph (layers/graph/graph.h), written with Debian's libonnx:
//
//   model.onnx      the FP32 model: one ONNX op per graph node (Conv, Gemm, BatchNormalization or,
//                   with fold_batch_norm, each conv's batch norm folded into its weights, Relu,
//                   Clip for relu6, Add, MaxPool, AveragePool, GlobalAveragePool, Flatten, ...);
//   quantized.onnx  the quantized model as QDQ (layers/export/qdq.h): every packed layer's weight
//                   as int8 codes spanning its bit-width through DequantizeLinear (per channel,
//                   axis 0), its input through a per-tensor QuantizeLinear/DequantizeLinear pair
//                   (after a Clip below 8 bits; uint8 after a Clip where the input is a
//                   ReLU's output, see unsigned_for_non_negative in qdq.h), its bias (batch norm
//                   folded, if it was) as f32;
//                   the rest of the model as in model.onnx. This is the placement that
//                   explicit quantization turns into integer convolutions and GEMMs; ONNX
//                   Runtime also needs a pair on a conv's output, which the exporter adds where
//                   it is exact (a ReLU or ReLU6 feeding one 8-bit quantizer with zero point 0).
//                   TensorRT takes signed pairs only: QdqActivationCodes::kSigned writes those.
//
// Both use opset 13 with a symbolic batch dimension ("batch") and the traced [C, H, W] input, are
// named "input" and "logits" (the graph's output), and are checked before they are written
// (atomically): ONNX's checker, then its strict shape inference, whose shape for every tensor must
// equal the traced one. Operators are chosen by the graph's op kinds only; an op ONNX cannot
// express as traced (an adaptive pool whose bins overlap, a reshape that moves the batch
// dimension, a constant made inside forward()) is an error naming the node.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/safetensors.h"
#include "layers/graph/graph.h"
#include "layers/quant/packed_model.h"

namespace ompq::nn {

struct OnnxExportOptions {
  // model.onnx: fold the batch norm that is the only reader of a conv's (or linear layer's) output
  // into its weights and bias (runtimes fold it themselves; unfolded keeps the trained parameters).
  bool fold_batch_norm = false;
};

struct OnnxExportSummary {
  int64_t nodes = 0;             // ONNX nodes written
  int64_t quantized_layers = 0;  // layers exported as QDQ
  int64_t bytes = 0;             // the file's size
  // What int8/uint8 hold only approximately (layers/export/qdq.h: 8-bit affine ranges that
  // exclude 0), one line per layer: "fc input: up to 3 steps", "conv weight: 2 channels, up to
  // 4 steps" (codes that saturate at the far end of their range). Empty: exact.
  std::vector<std::string> saturated;
};

// model.onnx at `path` for `graph` (graph::trace of the model), its parameters taken by name from
// `state` (the model's state_dict()).
absl::StatusOr<OnnxExportSummary> export_fp32_onnx(const graph::Graph& graph,
                                                   const TensorMap& state,
                                                   const OnnxExportOptions& options,
                                                   const std::string& path);

// How quantized.onnx carries activation codes that cannot be negative (a ReLU's output under a
// signed symmetric quantizer, whose codes are 0..qmax either way).
enum class QdqActivationCodes {
  // uint8 pairs with zero point 0: ONNX Runtime and OpenVINO on x86 run unsigned inputs without
  // shifting signed codes by 128 (where AVX2's 16-bit pair sums overflow).
  kUnsignedWhereNonNegative,
  // int8 pairs with zero point 0 everywhere: TensorRT's explicit quantization accepts no other.
  kSigned,
};

struct QdqExportOptions {
  QdqActivationCodes activation_codes = QdqActivationCodes::kUnsignedWhereNonNegative;
};

// quantized.onnx at `path` for `graph` (the traced architecture the packed model came from): the
// packed layers in QDQ form, every other parameter from packed.float_state. Every packed layer
// must be a conv or linear node of the graph, with the batch norm it folded right after it.
absl::StatusOr<OnnxExportSummary> export_qdq_onnx(const graph::Graph& graph,
                                                  const PackedModel& packed,
                                                  const std::string& path,
                                                  const QdqExportOptions& options = {});

// Reads an ONNX file and runs what the exporters run before writing: the operator subset they
// write, with its conv and pool attributes in ONNX's ranges, then ONNX's checker and strict shape
// inference. It checks files ompq wrote (or any in the same subset), not every ONNX model: Debian's
// ONNX shape inference crashes on some out-of-range attributes, so nothing outside the checked
// subset reaches it. Errors name the file.
absl::Status check_onnx_file(const std::string& path);

}  // namespace ompq::nn
