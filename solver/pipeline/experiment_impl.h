// The Experiment behind run_experiment() (experiment.h), shared by the pipeline's .cc files only:
// experiment.cc orchestrates the stages, experiment_inputs.cc builds the models and data sets
// they read, training_stages.cc / quantization_stages.cc / output_stages.cc are the stages.
#pragma once

#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/proto/ompq.pb.h"
#include "core/random.h"
#include "core/shape.h"
#include "data/catalog.h"
#include "data/dataloader.h"
#include "layers/grad_scaler.h"
#include "layers/models/model.h"
#include "layers/optim.h"
#include "layers/quant/quantize_model.h"
#include "solver/pipeline/experiment.h"
#include "solver/pipeline/stages.h"
#include "solver/report/metrics.h"
#include "solver/search/bit_config.h"
#include "solver/train/checkpoint.h"
#include "solver/train/trainer.h"

namespace ompq::solver {

namespace fs = std::filesystem;
using proto::ExperimentConfig;

inline constexpr char kConfigFile[] = "config.pbtxt";
inline constexpr char kMetricsFile[] = "metrics.csv";
inline constexpr char kFp32File[] = "fp32.safetensors";
inline constexpr char kPretrainCheckpoint[] = "pretrain_checkpoint.safetensors";
inline constexpr char kBitsFile[] = "bits.pbtxt";
inline constexpr char kSearchFile[] = "search.safetensors";
inline constexpr char kQatCheckpoint[] = "qat_checkpoint.safetensors";
inline constexpr char kPtqCheckpoint[] = "ptq_checkpoint.safetensors";
inline constexpr char kQuantizedFile[] = "quantized.safetensors";
inline constexpr char kPackedFile[] = "packed.safetensors";
inline constexpr char kOnnxFile[] = "model.onnx";
inline constexpr char kQdqOnnxFile[] = "quantized.onnx";
inline constexpr char kReportJson[] = "report.json";
inline constexpr char kReportHtml[] = "report.html";
inline constexpr char kStagesFile[] = "stages.pbtxt";
// Every file the pipeline writes into its folder.
inline constexpr const char* kOutputFiles[] = {
    kConfigFile, kMetricsFile,   kFp32File,      kPretrainCheckpoint, kBitsFile,
    kSearchFile, kQatCheckpoint, kPtqCheckpoint, kQuantizedFile,      kPackedFile,
    kOnnxFile,   kQdqOnnxFile,   kReportJson,    kReportHtml,         kStagesFile};

inline absl::Status invalid(const std::string& message) {
  return absl::InvalidArgumentError(message);
}

// One training stage's loop, shared by pretraining and QAT: resume from its checkpoint, train the
// remaining epochs (checkpointing every checkpoint_steps steps and at each epoch's end), evaluate
// after each epoch, one metrics row per epoch.
struct TrainingLoop {
  std::string stage;
  fs::path checkpoint;
  int64_t epochs = 0;
  int64_t checkpoint_steps = 0;
  nn::Module* model = nullptr;
  nn::Optimizer* optimizer = nullptr;
  Generator* gen = nullptr;
  nn::GradScaler* grad_scaler = nullptr;  // f16 training's loss scaling
  std::function<absl::StatusOr<EpochResult>(int64_t epoch, int64_t start_step,
                                            const EpochTotals& carried)>
      train_epoch;
  std::function<EvalResult()> evaluate;
};

class Experiment {
 public:
  Experiment(ExperimentConfig config, ExperimentRuntime runtime)
      : config_(std::move(config)), runtime_(runtime), dir_(config_.output_dir()) {}

  absl::Status run();

 private:
  int rank() const { return runtime_.comm != nullptr ? runtime_.comm->rank() : 0; }
  int world_size() const { return runtime_.comm != nullptr ? runtime_.comm->size() : 1; }
  bool writes() const { return rank() == 0; }
  // Every rank waits until rank 0's writes so far are on disk.
  void wait_for_writes() const {
    if (world_size() > 1) runtime_.comm->barrier();
  }
  // Progress and results go to stderr from rank 0 only.
  template <typename... Args>
  void say(const char* format, Args... args) const {
    if (writes()) std::fprintf(stderr, format, args...);
  }
  CheckpointState checkpoint_state(const TrainingLoop& loop, int64_t epochs_done,
                                   int64_t steps_done, const EpochTotals& totals = {}) const {
    CheckpointState state{epochs_done,
                          steps_done,
                          loop.gen->seed(),
                          loop.gen->offset(),
                          world_size(),
                          config_.train().batch_size(),
                          totals};
    if (loop.grad_scaler != nullptr) {
      state.loss_scale = loop.grad_scaler->scale_value();
      state.loss_scale_growth_tracker = loop.grad_scaler->growth_tracker();
    }
    return state;
  }
  fs::path path(const char* file) const { return dir_ / file; }
  std::string fp32_weights() const {
    return config_.weights().empty() ? path(kFp32File).string() : config_.weights();
  }
  bool quantizes() const { return config_.quant() != proto::QUANT_NONE; }

  absl::Status prepare();
  absl::Status claim_folder();
  // Removes the temporary files (core/atomic_file.h) of outputs whose writer was killed; a folder
  // holds one run at a time, so no writer is still at work on them.
  void remove_stale_temporaries() const;
  absl::StatusOr<std::shared_ptr<nn::Model>> new_model(Generator& gen) const;
  absl::StatusOr<std::shared_ptr<nn::Model>> fp32_model(Generator& gen) const;
  absl::StatusOr<std::shared_ptr<nn::Model>> quantized_model(Generator& gen,
                                                             nn::QuantizedLayers* layers) const;
  absl::Status clamp_warmup();
  void say_skipped_images() const;
  data::DataLoader train_loader() const;
  data::DataLoader test_loader() const;
  absl::StatusOr<LayerBitsPlan> bits_plan() const;

  // Runs `body` unless the stage finished; `body` fills the record (outputs, accuracy).
  absl::Status stage(const std::string& name,
                     const std::function<absl::Status(proto::StageRecord&)>& body);
  absl::Status skip_stage(const std::string& name, const std::string& why);
  // Checkpoints every `every` steps of an epoch, for TrainOptions::after_step (rank 0).
  std::function<absl::Status(int64_t, int64_t, const EpochTotals&)> step_checkpointer(
      const TrainingLoop& loop, int64_t every) const;
  absl::Status run_training(TrainingLoop& loop);
  absl::Status append_metrics(const std::string& stage, const std::string& epoch,
                              const EpochResult* train, const EvalResult& test);
  // Removes the metrics rows (cells in metrics_columns() order) that `row_is_stale` picks: rows
  // that a stage resuming after a crash is about to write again.
  absl::Status forget_metrics(
      const std::function<bool(const std::vector<std::string>& row)>& row_is_stale);

  absl::Status pretrain(proto::StageRecord& record);
  absl::Status search_bits(proto::StageRecord& record);
  absl::Status qat(proto::StageRecord& record);
  absl::Status ptq(proto::StageRecord& record);
  absl::Status eval(proto::StageRecord& record);
  absl::Status export_packed(proto::StageRecord& record);
  absl::Status report(proto::StageRecord& record);

  ExperimentConfig config_;
  ExperimentRuntime runtime_;
  fs::path dir_;
  data::DatasetKind dataset_kind_ = data::DatasetKind::kFashionMnist;
  Shape input_shape_;
  int64_t num_classes_ = 0;
  // search_set_ is train_set_ but for ImageNet, whose search crops differ from training's.
  std::shared_ptr<const data::Dataset> train_set_, search_set_, test_set_;
  std::optional<proto::BitConfig> given_bits_;
  std::optional<StageLedger> ledger_;
  std::optional<MetricsCsv> metrics_;
};

}  // namespace ompq::solver
