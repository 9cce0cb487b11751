// The stages after the model is final: evaluation, export (packed weights and ONNX) and the
// report.
#include <cmath>
#include <limits>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/safetensors.h"
#include "layers/export/onnx_export.h"
#include "layers/graph/graph.h"
#include "layers/quant/packed_model.h"
#include "solver/config/config_enums.h"
#include "solver/config/proto_io.h"
#include "solver/pipeline/experiment_impl.h"
#include "solver/quantize/qat.h"
#include "solver/report/report.h"
#include "solver/search/search_enums.h"
#include "solver/space/cost_model.h"
#include "solver/space/search_space.h"

namespace ompq::solver {
namespace {

// The metrics rows of the eval stage are "eval_fp32" and "eval_<quant>".
constexpr char kEvalRowPrefix[] = "eval_";

// The results-table label of the quantized model: OMPQ's allocations name their solver; the
// baselines of ompq_search --allocation are not OMPQ and say which they are.
std::string allocation_label(const proto::BitConfig& bits) {
  const std::string solver = enum_name(bits.solver()), quant = enum_name(bits.quant());
  if (bits.solver() == proto::SOLVER_UNIFORM || bits.solver() == proto::SOLVER_RANDOM ||
      bits.solver() == proto::SOLVER_HESSIAN) {
    return absl::StrCat(solver, " ", quant);
  }
  return absl::StrCat("OMPQ ", quant, " (", solver, ")");
}

}  // namespace

absl::Status Experiment::eval(proto::StageRecord& record) {
  data::DataLoader test = test_loader();
  Generator gen(config_.seed());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EvalResult result;
  OMPQ_RETURN_IF_ERROR(forget_metrics([](const std::vector<std::string>& row) {
    return absl::StartsWith(row[0], kEvalRowPrefix);
  }));
  record.set_fp32_top1(nan);
  record.set_fp32_top5(nan);
  // Without quantization the FP32 model is the result, so it is always evaluated.
  if (!config_.has_eval_fp32() || config_.eval_fp32() || !quantizes()) {
    OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> fp32, fp32_model(gen));
    result = evaluate(*fp32, test, runtime_.device, runtime_.comm);
    say("[eval] fp32: test loss %.4f top-1 %.2f%% top-5 %.2f%%\n", result.loss, result.top1,
        result.top5);
    OMPQ_RETURN_IF_ERROR(append_metrics(absl::StrCat(kEvalRowPrefix, "fp32"), "", nullptr, result));
    record.set_fp32_top1(result.top1);
    record.set_fp32_top5(result.top5);
  } else {
    say("[eval] fp32: skipped (eval_fp32 false)\n");
  }
  if (quantizes()) {
    OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, quantized_model(gen, nullptr));
    result = evaluate_quantized(*model, test, runtime_.device, runtime_.comm);
    const std::string quant = enum_name(config_.quant());
    say("[eval] %s: test loss %.4f top-1 %.2f%% top-5 %.2f%%\n", quant.c_str(), result.loss,
        result.top1, result.top5);
    OMPQ_RETURN_IF_ERROR(append_metrics(absl::StrCat(kEvalRowPrefix, quant), "", nullptr, result));
  }
  record.set_test_top1(result.top1);
  record.set_test_top5(result.top5);
  record.set_test_loss(result.loss);
  return absl::OkStatus();
}

absl::Status Experiment::export_packed(proto::StageRecord& record) {
  Generator gen(config_.seed());
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, quantized_model(gen, nullptr));
  model->to(Device::cpu());
  nn::PackedModel packed = nn::pack_model(*model);
  if (writes()) OMPQ_RETURN_IF_ERROR(nn::save_packed(path(kPackedFile).string(), packed));
  say("[export] %zu packed layers -> %s (%.1f KiB)\n", packed.layers.size(),
      path(kPackedFile).c_str(), writes() ? fs::file_size(path(kPackedFile)) / 1024.0 : 0.0);
  record.add_outputs(kPackedFile);
  // ONNX: the FP32 model and the quantized one (QDQ), both on the traced architecture.
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> fp32, fp32_model(gen));
  fp32->to(Device::cpu());
  const graph::Graph graph = graph::trace(*fp32, input_shape_);
  nn::OnnxExportOptions options;
  options.fold_batch_norm = config_.onnx_fold_batch_norm();
  if (writes()) {
    OMPQ_ASSIGN_OR_RETURN(
        nn::OnnxExportSummary fp32_onnx,
        nn::export_fp32_onnx(graph, fp32->state_dict(), options, path(kOnnxFile).string()));
    OMPQ_ASSIGN_OR_RETURN(nn::OnnxExportSummary qdq_onnx,
                          nn::export_qdq_onnx(graph, packed, path(kQdqOnnxFile).string()));
    say("[export] ONNX: %s (%lld nodes), %s (%lld nodes, %lld layers as QDQ)\n", kOnnxFile,
        static_cast<long long>(fp32_onnx.nodes), kQdqOnnxFile,
        static_cast<long long>(qdq_onnx.nodes), static_cast<long long>(qdq_onnx.quantized_layers));
    for (const std::string& line : qdq_onnx.saturated) {
      say("[export] note: %s saturates in %s (an 8-bit range that excludes 0)\n", line.c_str(),
          kQdqOnnxFile);
    }
  }
  record.add_outputs(kOnnxFile);
  record.add_outputs(kQdqOnnxFile);
  return absl::OkStatus();
}

absl::Status Experiment::report(proto::StageRecord& record) {
  const proto::StageRecord* eval_record = ledger_->finished("eval");
  if (eval_record == nullptr) return absl::FailedPreconditionError("the eval stage has not run");
  ExperimentReport report;
  report.model = config_.model();
  report.quant = enum_name(config_.quant());
  report.act_bits = config_.act_bits();
  Generator gen(config_.seed());
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, new_model(gen));
  // Without quantization the FP32 size is QAT's search space's. Models outside the search have no
  // size by the counting rules of docs/METHOD.md 2.3.
  const QuantMode mode = quantizes() ? quant_mode(config_.quant()) : QuantMode::kQat;
  absl::StatusOr<SearchSpace> space =
      build_search_space(*model, mode, input_shape_[1], input_shape_[2]);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  report.results.push_back({"fp32", space.ok() ? fp32_size_mib(*space) : nan, nan,
                            eval_record->fp32_top1(), eval_record->fp32_top5()});
  if (quantizes()) {
    proto::BitConfig bits;
    OMPQ_RETURN_IF_ERROR(read_text_proto(path(kBitsFile).string(), &bits));
    OMPQ_ASSIGN_OR_RETURN(LayerBitsPlan plan, bits_plan());
    report.solver = enum_name(bits.solver());
    report.budget_mib = bits.budget_mb();
    std::vector<double> log_theta;
    if (fs::exists(path(kSearchFile)) && !given_bits_) {
      OMPQ_ASSIGN_OR_RETURN(SafetensorsContents search,
                            load_safetensors(path(kSearchFile).string()));
      const Tensor& orm = search.tensors.at("orm");
      const int64_t n = orm.size(0);
      std::vector<double> values = orm.to_vector<double>();
      for (int64_t i = 0; i < n; ++i) {
        report.orm.emplace_back(values.begin() + i * n, values.begin() + (i + 1) * n);
      }
      log_theta = search.tensors.at("log_theta").to_vector<double>();
    }
    auto add_layer = [&](const proto::LayerBits& entry, bool fixed_layer,
                         std::optional<double> theta) {
      report.layers.push_back({entry.name(), entry.bits(), entry.params(), fixed_layer, theta});
    };
    // Execution order: QAT's stem first, the searched units, then the classifier.
    if (bits.fixed_size() > 0) add_layer(bits.fixed(0), true, std::nullopt);
    for (int i = 0; i < bits.layer_size(); ++i) {
      std::optional<double> theta;
      if (i < static_cast<int>(log_theta.size())) theta = log_theta[i];
      add_layer(bits.layer(i), false, theta);
    }
    for (int i = 1; i < bits.fixed_size(); ++i) add_layer(bits.fixed(i), true, std::nullopt);
    report.results.push_back({allocation_label(bits), model_size_mib(plan.space, plan.unit_bits),
                              bops_g(plan.space, plan.unit_bits, config_.act_bits(), false),
                              eval_record->test_top1(), eval_record->test_top5()});
  }
  if (config_.has_published()) {
    const proto::PublishedResult& paper = config_.published();
    report.results.push_back(
        {absl::StrCat("published: ", paper.source(), " (A", paper.act_bits(), ")"),
         paper.size_mb() > 0 ? paper.size_mb() : nan, paper.bops_g() > 0 ? paper.bops_g() : nan,
         paper.top1() > 0 ? paper.top1() : nan, nan});
  }
  for (const proto::StageRecord& stage : ledger_->state().stage()) {
    if (stage.status() != proto::STAGE_STATUS_SKIPPED)
      report.timings.push_back({stage.name(), stage.seconds()});
  }
  OMPQ_ASSIGN_OR_RETURN(report.metrics, read_metrics(path(kMetricsFile).string()));
  if (writes()) OMPQ_RETURN_IF_ERROR(write_report(report, dir_.string()));
  record.add_outputs(kReportJson);
  record.add_outputs(kReportHtml);
  return absl::OkStatus();
}
}  // namespace ompq::solver
