// ompq_export: writes a model as ONNX (layers/export/onnx_export.h), from any weights file.
//
//   ompq_export --model=resnet20 --num_classes=10 --weights=fp32.safetensors --output_dir=DIR
//       DIR/model.onnx: the FP32 model (--fold_batch_norm folds each conv's batch norm into it)
//   ompq_export --model=resnet20 --num_classes=10 --quantized=quantized.safetensors
//       --bits=bits.pbtxt --output_dir=DIR
//       DIR/quantized.onnx: the quantized model that ompq_train's qat or ptq stage saved, with the
//       bit config it was quantized by (QAT or PTQ as the config says; --act_bits as trained)
//   ompq_export --model=resnet20 --num_classes=10 --packed=packed.safetensors --output_dir=DIR
//       DIR/quantized.onnx from a packed model (ompq_train's export stage), which describes itself
//       (--qdq_activations=signed: int8 activation pairs only, for TensorRT)
//
//   ompq_export --check=a.onnx,b.onnx
//       reads each file back and runs what the exporter runs before writing (the operator subset
//       it writes, then ONNX's checker and strict shape inference), for files copied since
//
// Both kinds of input may be given at once. --check_input=X.safetensors also writes
// DIR/reference_logits.safetensors: ompq's own logits of every exported model ("fp32_logits",
// "quantized_logits") on tensor "input" of X, what a runtime running the files should reproduce.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "apps/app_main.h"
#include "core/autograd.h"
#include "core/parallel.h"
#include "core/safetensors.h"
#include "layers/export/onnx_export.h"
#include "layers/graph/graph.h"
#include "layers/models/registry.h"
#include "layers/quant/integer_layer.h"
#include "layers/quant/packed_model.h"
#include "layers/quant/quantize_model.h"
#include "solver/config/proto_io.h"
#include "solver/quantize/quantize_plan.h"
#include "solver/search/bit_config.h"

ABSL_FLAG(std::string, model, "",
          "model name (resnet18, resnet34, resnet50, mobilenet_v2, resnet20, fashion_cnn, ...)");
ABSL_FLAG(int64_t, num_classes, 1000, "classes of the model's classifier");
ABSL_FLAG(bool, small_input, false,
          "the small-input variant (3x3 stride-1 stem, no max-pool) for 28-32 px images");
ABSL_FLAG(double, width_mult, 1.0, "channel width multiplier (mobilenet_v2)");
ABSL_FLAG(int64_t, image_size, 0, "input side of the exported graph (0: the model's own)");
ABSL_FLAG(std::string, weights, "", "FP32 weights (safetensors, torchvision names) -> model.onnx");
ABSL_FLAG(bool, fold_batch_norm, false,
          "model.onnx: fold each conv's batch norm into its weights (false: BatchNormalization)");
ABSL_FLAG(std::string, quantized, "",
          "the quantized model's state (ompq_train's quantized.safetensors) -> quantized.onnx; "
          "needs --bits");
ABSL_FLAG(std::string, bits, "", "the bit config the --quantized model was quantized by");
ABSL_FLAG(int32_t, act_bits, 0,
          "activation bits the --quantized model was quantized with (0: the bit config's, else 8)");
ABSL_FLAG(std::string, packed, "", "a packed model (packed.safetensors) -> quantized.onnx");
ABSL_FLAG(std::string, qdq_activations, "unsigned",
          "quantized.onnx's pairs on values >= 0 (a ReLU's output): unsigned (uint8, zero point "
          "0: ONNX Runtime, OpenVINO) or signed (int8 everywhere: TensorRT)");
ABSL_FLAG(std::string, output_dir, ".", "folder for model.onnx / quantized.onnx");
ABSL_FLAG(std::string, check_input, "",
          "safetensors file with tensor \"input\" (float32 NCHW): writes ompq's logits of the "
          "exported models on it to reference_logits.safetensors");
ABSL_FLAG(int32_t, threads, 0, "CPU threads (0: all cores)");
ABSL_FLAG(std::vector<std::string>, check, {},
          "ONNX files to check (ompq's operator subset, ONNX's checker and strict shape inference) "
          "instead of exporting");

namespace ompq {
namespace {

namespace fs = std::filesystem;

constexpr char kOnnxFile[] = "model.onnx";
constexpr char kQdqOnnxFile[] = "quantized.onnx";
constexpr char kReferenceFile[] = "reference_logits.safetensors";

absl::Status invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

absl::StatusOr<std::shared_ptr<nn::Model>> make_model() {
  nn::ModelSpec spec;
  spec.name = absl::GetFlag(FLAGS_model);
  spec.num_classes = absl::GetFlag(FLAGS_num_classes);
  spec.small_input = absl::GetFlag(FLAGS_small_input);
  spec.width_mult = absl::GetFlag(FLAGS_width_mult);
  OMPQ_RETURN_IF_ERROR(check_model_flag(spec.name));
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, nn::make_model(spec));
  model->eval();
  return model;
}

// --quantized with --bits: the model quantized as the bit config says, its state loaded.
absl::StatusOr<std::shared_ptr<nn::Model>> quantized_model() {
  const std::string bits_path = absl::GetFlag(FLAGS_bits);
  if (bits_path.empty()) {
    return invalid("--quantized needs --bits (the bit config the model was quantized by)");
  }
  proto::BitConfig bits;
  OMPQ_RETURN_IF_ERROR(solver::read_text_proto(bits_path, &bits));
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, make_model());
  OMPQ_ASSIGN_OR_RETURN(solver::LayerBitsPlan plan,
                        solver::plan_from_bit_config(bits, *model, bits_path));
  int act_bits = absl::GetFlag(FLAGS_act_bits);
  if (act_bits == 0) act_bits = bits.act_bits() > 0 ? bits.act_bits() : 8;
  if (act_bits < 2 || act_bits > 8) {
    return invalid(absl::StrCat("--act_bits ", act_bits, " (expected 2..8)"));
  }
  solver::quantize_for_plan(*model, plan, act_bits);
  const std::string path = absl::GetFlag(FLAGS_quantized);
  const absl::Status loaded = model->load(path);
  if (!loaded.ok()) {
    return invalid(absl::StrCat(loaded.message(), " (is ", path, " the quantized model of ",
                                absl::GetFlag(FLAGS_model), " with the bits of ", bits_path,
                                " and --act_bits ", act_bits, "?)"));
  }
  nn::set_quantizers_frozen(*model, true);
  model->eval();
  return model;
}

// The tensor "input" of --check_input, checked against the exported graph's input.
absl::StatusOr<Tensor> check_input(const Shape& chw) {
  const std::string path = absl::GetFlag(FLAGS_check_input);
  OMPQ_ASSIGN_OR_RETURN(SafetensorsContents contents, load_safetensors(path));
  auto it = contents.tensors.find("input");
  if (it == contents.tensors.end()) return invalid(absl::StrCat(path, " has no tensor \"input\""));
  const Tensor& input = it->second;
  Shape expected = {input.dim() > 0 ? input.size(0) : 0};
  expected.insert(expected.end(), chw.begin(), chw.end());
  if (input.dtype() != DType::kF32 || input.shape() != expected || expected[0] == 0) {
    return invalid(absl::StrCat(path, ": tensor \"input\" is ", shape_str(input.shape()), " ",
                                dtype_name(input.dtype()), " (expected float32 [N, ",
                                absl::StrJoin(chw, ", "), "] with N > 0)"));
  }
  return input;
}

Tensor logits(nn::Model& model, const Tensor& input) {
  NoGradGuard no_grad;
  return model.forward(input);
}

absl::StatusOr<nn::QdqActivationCodes> qdq_activation_codes() {
  const std::string codes = absl::GetFlag(FLAGS_qdq_activations);
  if (codes == "unsigned") return nn::QdqActivationCodes::kUnsignedWhereNonNegative;
  if (codes == "signed") return nn::QdqActivationCodes::kSigned;
  return invalid(absl::StrCat("--qdq_activations=", codes, " (expected unsigned or signed)"));
}

// --check: every file passes, or the first that fails is named with ONNX's reasons.
absl::Status check_files(const std::vector<std::string>& paths) {
  for (const std::string& path : paths) {
    OMPQ_RETURN_IF_ERROR(nn::check_onnx_file(path));
    std::fprintf(stderr, "ompq_export: %s passes ONNX's checker and shape inference\n",
                 path.c_str());
  }
  return absl::OkStatus();
}

absl::Status run() {
  const std::string weights = absl::GetFlag(FLAGS_weights);
  const std::string quantized = absl::GetFlag(FLAGS_quantized);
  const std::string packed_path = absl::GetFlag(FLAGS_packed);
  if (!absl::GetFlag(FLAGS_check).empty()) {
    if (!weights.empty() || !quantized.empty() || !packed_path.empty()) {
      return invalid(
          "--check reads ONNX files only: give it without --weights/--quantized/--packed");
    }
    return check_files(absl::GetFlag(FLAGS_check));
  }
  if (weights.empty() && quantized.empty() && packed_path.empty()) {
    return invalid(
        "nothing to export: give --weights (model.onnx), --quantized with --bits or "
        "--packed (quantized.onnx)");
  }
  if (!quantized.empty() && !packed_path.empty()) {
    return invalid("give --quantized or --packed, not both (each makes quantized.onnx)");
  }
  if (quantized.empty() && !absl::GetFlag(FLAGS_bits).empty()) {
    return invalid("--bits describes a --quantized model, and none is given");
  }
  if (absl::GetFlag(FLAGS_image_size) < 0) return invalid("--image_size must not be negative");
  nn::QdqExportOptions qdq_options;
  OMPQ_ASSIGN_OR_RETURN(qdq_options.activation_codes, qdq_activation_codes());
  if (absl::GetFlag(FLAGS_threads) > 0) set_num_threads(absl::GetFlag(FLAGS_threads));

  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> fp32, make_model());
  Shape chw = fp32->input_shape();
  if (absl::GetFlag(FLAGS_image_size) > 0) {
    chw = {chw[0], absl::GetFlag(FLAGS_image_size), absl::GetFlag(FLAGS_image_size)};
  }
  if (!weights.empty()) {
    OMPQ_RETURN_IF_ERROR(nn::load_model_weights(*fp32, weights, absl::GetFlag(FLAGS_model)));
  }
  std::shared_ptr<nn::Model> quantized_fp;  // the fake-quantized model, for --check_input
  nn::PackedModel packed;
  if (!quantized.empty()) {
    OMPQ_ASSIGN_OR_RETURN(quantized_fp, quantized_model());
    packed = nn::pack_model(*quantized_fp);
  } else if (!packed_path.empty()) {
    OMPQ_ASSIGN_OR_RETURN(packed, nn::load_packed(packed_path));
  }
  Tensor input;
  if (!absl::GetFlag(FLAGS_check_input).empty()) {
    OMPQ_ASSIGN_OR_RETURN(input, check_input(chw));
  }
  // Everything was read and checked: now the outputs.
  const fs::path dir = absl::GetFlag(FLAGS_output_dir);
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) return invalid(absl::StrCat(dir.string(), ": cannot create (", error.message(), ")"));

  const graph::Graph graph = graph::trace(*fp32, chw);
  TensorMap reference;
  if (!weights.empty()) {
    nn::OnnxExportOptions options;
    options.fold_batch_norm = absl::GetFlag(FLAGS_fold_batch_norm);
    const std::string path = (dir / kOnnxFile).string();
    OMPQ_ASSIGN_OR_RETURN(nn::OnnxExportSummary summary,
                          nn::export_fp32_onnx(graph, fp32->state_dict(), options, path));
    std::fprintf(stderr, "ompq_export: %s: %lld nodes, %.1f MiB\n", path.c_str(),
                 static_cast<long long>(summary.nodes), summary.bytes / 1048576.0);
    if (input.defined()) reference["fp32_logits"] = logits(*fp32, input);
  }
  if (!packed.layers.empty()) {
    const std::string path = (dir / kQdqOnnxFile).string();
    OMPQ_ASSIGN_OR_RETURN(nn::OnnxExportSummary summary,
                          nn::export_qdq_onnx(graph, packed, path, qdq_options));
    std::fprintf(stderr, "ompq_export: %s: %lld nodes, %lld layers as QDQ, %.1f MiB\n",
                 path.c_str(), static_cast<long long>(summary.nodes),
                 static_cast<long long>(summary.quantized_layers), summary.bytes / 1048576.0);
    for (const std::string& line : summary.saturated) {
      std::fprintf(stderr, "ompq_export: note: %s saturates (an 8-bit range that excludes 0)\n",
                   line.c_str());
    }
    if (input.defined()) {
      if (quantized_fp) {
        reference["quantized_logits"] = logits(*quantized_fp, input);
      } else {  // a packed model runs on the integer path, which equals the fake-quantized one
        std::shared_ptr<nn::Model> integer = fp32;
        OMPQ_RETURN_IF_ERROR(nn::load_integer_model(*integer, packed));
        reference["quantized_logits"] = logits(*integer, input);
      }
    }
  }
  if (input.defined()) {
    const std::string path = (dir / kReferenceFile).string();
    OMPQ_RETURN_IF_ERROR(save_safetensors(
        path, reference,
        {{"model", absl::GetFlag(FLAGS_model)}, {"input", absl::GetFlag(FLAGS_check_input)}}));
    std::fprintf(stderr, "ompq_export: ompq's logits on %s -> %s\n",
                 absl::GetFlag(FLAGS_check_input).c_str(), path.c_str());
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace ompq

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Writes a model as ONNX.\n"
      "  FP32:      ompq_export --model=NAME --weights=W.safetensors --output_dir=DIR\n"
      "  quantized: ompq_export --model=NAME --quantized=Q.safetensors --bits=bits.pbtxt "
      "--output_dir=DIR\n"
      "             ompq_export --model=NAME --packed=packed.safetensors --output_dir=DIR\n"
      "  check:     ompq_export --check=A.onnx,B.onnx");
  absl::ParseCommandLine(argc, argv);
  return ompq::run_app("ompq_export", ompq::run);
}
