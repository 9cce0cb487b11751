#include "solver/experiment.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/atomic_file.h"
#include "core/autograd.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "data/catalog.h"
#include "data/dataloader.h"
#include "data/subset.h"
#include "layers/export/onnx_export.h"
#include "layers/graph/graph.h"
#include "layers/lr_schedule.h"
#include "layers/models/registry.h"
#include "layers/optim.h"
#include "layers/quant/packed_model.h"
#include "layers/quant/quantize_model.h"
#include "solver/bit_config.h"
#include "solver/checkpoint.h"
#include "solver/config_enums.h"
#include "solver/cost_model.h"
#include "solver/metrics.h"
#include "solver/proto_io.h"
#include "solver/ptq.h"
#include "solver/qat.h"
#include "solver/report.h"
#include "solver/sample_batch.h"
#include "solver/search.h"
#include "solver/stages.h"
#include "solver/trainer.h"

namespace ompq::solver {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using proto::ExperimentConfig;

constexpr char kConfigFile[] = "config.pbtxt";
constexpr char kMetricsFile[] = "metrics.csv";
constexpr char kFp32File[] = "fp32.safetensors";
constexpr char kPretrainCheckpoint[] = "pretrain_checkpoint.safetensors";
constexpr char kBitsFile[] = "bits.pbtxt";
constexpr char kSearchFile[] = "search.safetensors";
constexpr char kQatCheckpoint[] = "qat_checkpoint.safetensors";
constexpr char kPtqCheckpoint[] = "ptq_checkpoint.safetensors";
constexpr char kQuantizedFile[] = "quantized.safetensors";
constexpr char kPackedFile[] = "packed.safetensors";
constexpr char kOnnxFile[] = "model.onnx";
constexpr char kQdqOnnxFile[] = "quantized.onnx";
constexpr char kReportJson[] = "report.json";
constexpr char kReportHtml[] = "report.html";
constexpr char kStagesFile[] = "stages.pbtxt";
// Every file the pipeline writes into its folder.
constexpr const char* kOutputFiles[] = {
    kConfigFile, kMetricsFile,   kFp32File,      kPretrainCheckpoint, kBitsFile,
    kSearchFile, kQatCheckpoint, kPtqCheckpoint, kQuantizedFile,      kPackedFile,
    kOnnxFile,   kQdqOnnxFile,   kReportJson,    kReportHtml,         kStagesFile};
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

const std::vector<std::string>& metrics_columns() {
  static const std::vector<std::string> columns = {
      "stage",     "epoch",     "train_loss",        "train_top1",    "test_loss",
      "test_top1", "test_top5", "images_per_second", "epoch_seconds", "data_wait"};
  return columns;
}

absl::Status invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string fixed(double value, int digits) { return absl::StrFormat("%.*f", digits, value); }

data::DatasetKind dataset_kind(proto::Dataset dataset) {
  switch (dataset) {
    case proto::DATASET_MNIST:
      return data::DatasetKind::kMnist;
    case proto::DATASET_IMAGENET:
      return data::DatasetKind::kImageNet;
    default:
      return data::DatasetKind::kFashionMnist;
  }
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
  data::DatasetRequest dataset_request(data::DatasetUse use) const;
  absl::StatusOr<std::shared_ptr<const data::Dataset>> open_split(data::DatasetUse use,
                                                                  int64_t limit) const;
  absl::Status resolve_input_shape(nn::Model& model);
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

absl::StatusOr<std::shared_ptr<nn::Model>> Experiment::new_model(Generator& gen) const {
  nn::ModelSpec spec;
  spec.name = config_.model();
  // Before the data sets are open (prepare() needs the model's input side to open them), any
  // class count gives the input shape.
  spec.num_classes = num_classes_ > 0 ? num_classes_ : 10;
  spec.small_input = config_.small_input();
  spec.width_mult = config_.width_mult() > 0 ? config_.width_mult() : 1.0;
  return nn::make_model(spec, gen);
}

absl::StatusOr<std::shared_ptr<nn::Model>> Experiment::fp32_model(Generator& gen) const {
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, new_model(gen));
  OMPQ_RETURN_IF_ERROR(nn::load_model_weights(*model, fp32_weights(), config_.model()));
  model->to(runtime_.device);
  return model;
}

absl::StatusOr<LayerBitsPlan> Experiment::bits_plan() const {
  proto::BitConfig bits;
  OMPQ_RETURN_IF_ERROR(read_text_proto(path(kBitsFile).string(), &bits));
  Generator gen(config_.seed());
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, new_model(gen));
  return plan_from_bit_config(bits, *model, path(kBitsFile).string());
}

// The FP32 model quantized with bits.pbtxt for config.quant, with quantized.safetensors loaded
// when `layers` is null (a finished quantization stage), or fresh quantizers otherwise.
absl::StatusOr<std::shared_ptr<nn::Model>> Experiment::quantized_model(
    Generator& gen, nn::QuantizedLayers* layers) const {
  OMPQ_ASSIGN_OR_RETURN(LayerBitsPlan plan, bits_plan());
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, fp32_model(gen));
  nn::QuantizedLayers quantized = quantize_for_plan(*model, plan, config_.act_bits());
  model->to(runtime_.device);
  if (layers != nullptr) {
    *layers = std::move(quantized);
  } else {
    OMPQ_RETURN_IF_ERROR(model->load(path(kQuantizedFile).string()));
  }
  return model;
}

data::DatasetRequest Experiment::dataset_request(data::DatasetUse use) const {
  data::DatasetRequest request;
  request.kind = dataset_kind_;
  request.dir = config_.data().dir();
  request.val_labels = config_.data().label_file();
  request.input = input_shape_;
  request.model = config_.model();
  request.use = use;
  request.strict_images = config_.data().strict_images();
  request.augment = config_.data().augmentation() == proto::AUGMENTATION_REFERENCE;
  return request;
}

// A limit takes the first examples of IDX data (shuffled already) and examples spread over an
// image folder (stored class by class), so that a short run still sees every class.
absl::StatusOr<std::shared_ptr<const data::Dataset>> Experiment::open_split(data::DatasetUse use,
                                                                            int64_t limit) const {
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<const data::Dataset> dataset,
                        data::open_dataset(dataset_request(use)));
  if (limit > 0 && limit < dataset->size()) {
    dataset = std::make_shared<data::Subset>(dataset, limit,
                                             dataset_kind_ == data::DatasetKind::kImageNet
                                                 ? data::SubsetSpacing::kSpread
                                                 : data::SubsetSpacing::kFirst);
  }
  return dataset;
}

// The model's own input side unless data.image_size gives one; a side the model cannot take
// (its feature maps would vanish) fails here, on one image, before anything is written.
absl::Status Experiment::resolve_input_shape(nn::Model& model) {
  input_shape_ = model.input_shape();
  const int32_t side = config_.data().image_size();
  if (side == 0 || side == input_shape_[1]) return absl::OkStatus();
  input_shape_ = {input_shape_[0], side, side};
  try {
    NoGradGuard no_grad;
    model.eval();
    model.forward(Tensor::zeros({1, input_shape_[0], side, side}));
  } catch (const Error& e) {
    return invalid(absl::StrCat("image_size ", side, ": ", config_.model(),
                                " cannot take images of this side (", e.what(), ")"));
  }
  return absl::OkStatus();
}

data::DataLoader Experiment::train_loader() const {
  data::DataLoaderOptions options;
  options.batch_size = config_.train().batch_size();
  options.shuffle = true;
  options.drop_last = true;
  options.seed = config_.seed();
  options.num_workers = config_.data().workers();
  if (config_.data().prefetch() > 0) options.prefetch_factor = config_.data().prefetch();
  options.rank = rank();
  options.world_size = world_size();
  options.pin_memory = runtime_.device.is_cuda();
  return data::DataLoader(train_set_, options);
}

data::DataLoader Experiment::test_loader() const {
  data::DataLoaderOptions options;
  options.batch_size = config_.train().eval_batch_size();
  options.num_workers = config_.data().workers();
  if (config_.data().prefetch() > 0) options.prefetch_factor = config_.data().prefetch();
  options.rank = rank();
  options.world_size = world_size();
  options.pin_memory = runtime_.device.is_cuda();
  return data::DataLoader(test_set_, options);
}

// Everything that can fail without running a stage, before anything is written.
absl::Status Experiment::prepare() {
  OMPQ_RETURN_IF_ERROR(validate_experiment_config(config_));
  dataset_kind_ = dataset_kind(config_.data().dataset());
  Generator gen(config_.seed());
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, new_model(gen));
  OMPQ_RETURN_IF_ERROR(resolve_input_shape(*model));
  const int64_t train_limit = config_.data().train_limit();
  OMPQ_ASSIGN_OR_RETURN(train_set_, open_split(data::DatasetUse::kTraining, train_limit));
  OMPQ_ASSIGN_OR_RETURN(test_set_,
                        open_split(data::DatasetUse::kEval, config_.data().test_limit()));
  search_set_ = train_set_;
  if (dataset_kind_ == data::DatasetKind::kImageNet) {
    OMPQ_ASSIGN_OR_RETURN(search_set_, open_split(data::DatasetUse::kSearch, train_limit));
  }
  OMPQ_RETURN_IF_ERROR(data::check_same_classes(*train_set_, *test_set_));
  num_classes_ = train_set_->num_classes();
  OMPQ_ASSIGN_OR_RETURN(model, new_model(gen));
  if (train_loader().num_batches() == 0) {
    return invalid(absl::StrCat("batch_size ", config_.train().batch_size(), " exceeds the ",
                                train_set_->size(), " training examples"));
  }
  if (!config_.weights().empty()) {
    absl::Status loaded = nn::load_model_weights(*model, config_.weights(), config_.model());
    if (!loaded.ok()) {
      return absl::Status(loaded.code(),
                          absl::StrCat(loaded.message(), " (the model has the ", num_classes_,
                                       " classes of ", train_set_->name(), ")"));
    }
  } else {
    OMPQ_RETURN_IF_ERROR(clamp_warmup());
  }
  if (!quantizes()) return absl::OkStatus();
  const QuantMode mode = quant_mode(config_.quant());
  OMPQ_ASSIGN_OR_RETURN(SearchSpace space,
                        build_search_space(*model, mode, input_shape_[1], input_shape_[2]));
  const std::string& bits_path = config_.search().bits();
  if (!bits_path.empty()) {
    proto::BitConfig bits;
    OMPQ_RETURN_IF_ERROR(read_text_proto(bits_path, &bits));
    if (bits.quant() != config_.quant()) {
      return invalid(absl::StrCat(bits_path, ": a bit config for quant ", enum_name(bits.quant()),
                                  ", but this run quantizes with ", enum_name(config_.quant())));
    }
    OMPQ_RETURN_IF_ERROR(plan_from_bit_config(bits, *model, bits_path).status());
    given_bits_ = bits;
    return absl::OkStatus();
  }
  // Resolve the budget now so that an infeasible one fails before pretraining.
  if (config_.search().budget_mb() == 0) {
    if (config_.search().budget_fraction() == 0) {
      // A quarter off the 8-bit size sits inside QAT's 4..8-bit range; PTQ's 2..4 bits need 3/8.
      config_.mutable_search()->set_budget_fraction(mode == QuantMode::kQat ? 0.75 : 0.375);
    }
    std::vector<int> eight(space.units.size(), 8);
    config_.mutable_search()->set_budget_mb(config_.search().budget_fraction() *
                                            model_size_mib(space, eight));
  }
  AllocationOptions allocation;
  OMPQ_ASSIGN_OR_RETURN(allocation.solver, solver_kind(config_.search().solver()));
  allocation.budget_mib = config_.search().budget_mb();
  allocation.act_bits = config_.act_bits();
  absl::Status status = check_allocation_options(space, allocation);
  if (!status.ok())
    return absl::Status(status.code(), absl::StrCat(config_.model(), ": ", status.message()));
  return absl::OkStatus();
}

// Pretraining warms up for train.warmup_iterations; a run shorter than that (a quick test, a small
// train_limit) warms up for a tenth of its iterations instead, said once, and the resolved config
// records it.
absl::Status Experiment::clamp_warmup() {
  const int64_t total =
      static_cast<int64_t>(config_.train().epochs()) * train_loader().num_batches();
  const int64_t warmup = config_.train().warmup_iterations();
  if (warmup < total) return absl::OkStatus();
  const int64_t clamped = total / 10;
  say("note: warmup_iterations %lld is not shorter than the run's %lld iterations (%d epochs x "
      "%lld steps); warming up for %lld instead\n",
      static_cast<long long>(warmup), static_cast<long long>(total), config_.train().epochs(),
      static_cast<long long>(train_loader().num_batches()), static_cast<long long>(clamped));
  config_.mutable_train()->set_warmup_iterations(static_cast<int32_t>(clamped));
  return absl::OkStatus();
}

void Experiment::say_skipped_images() const {
  const int64_t train = data::skipped_images(*train_set_);
  const int64_t search = search_set_ == train_set_ ? 0 : data::skipped_images(*search_set_);
  const int64_t test = data::skipped_images(*test_set_);
  if (train + search + test == 0) return;
  say("note: %lld unreadable image(s) were skipped (named above): %lld training, %lld search, "
      "%lld evaluation; --strict_images stops at the first instead\n",
      static_cast<long long>(train + search + test), static_cast<long long>(train),
      static_cast<long long>(search), static_cast<long long>(test));
}

// The folder is this run's: empty, or holding a run of the same config (or `fresh`).
absl::Status Experiment::claim_folder() {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat(dir_.string(), ": ", ec.message()));
  const std::string text = to_text_format(config_);
  if (!writes()) {
    // Rank 0 checks the folder against this config and clears it under --fresh.
  } else if (runtime_.fresh) {
    for (const char* file : kOutputFiles) fs::remove(path(file), ec);
  } else if (fs::exists(path(kConfigFile))) {
    std::ifstream in(path(kConfigFile));
    std::stringstream previous;
    previous << in.rdbuf();
    if (previous.str() != text) {
      return absl::FailedPreconditionError(absl::StrCat(
          dir_.string(), " holds a run of another config (", path(kConfigFile).string(),
          "); pass --fresh to start over there, or choose another --output_dir"));
    }
  }
  if (writes()) {
    remove_stale_temporaries();
    OMPQ_RETURN_IF_ERROR(write_file_atomically(path(kConfigFile).string(), text));
  }
  wait_for_writes();
  OMPQ_ASSIGN_OR_RETURN(StageLedger ledger, StageLedger::open(dir_.string(), writes()));
  ledger_.emplace(std::move(ledger));
  if (writes()) {
    OMPQ_ASSIGN_OR_RETURN(MetricsCsv metrics,
                          MetricsCsv::open(path(kMetricsFile).string(), metrics_columns()));
    metrics_.emplace(std::move(metrics));
  }
  return absl::OkStatus();
}

void Experiment::remove_stale_temporaries() const {
  std::vector<fs::path> stale;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    for (const char* file : kOutputFiles) {
      if (absl::StartsWith(name, absl::StrCat(file, ".tmp."))) stale.push_back(it->path());
    }
  }
  for (const fs::path& file : stale) fs::remove(file, ec);
}

absl::Status Experiment::stage(const std::string& name,
                               const std::function<absl::Status(proto::StageRecord&)>& body) {
  if (const proto::StageRecord* done = ledger_->finished(name)) {
    say("[%s] finished earlier (%s, %.1f s), skipped\n", name.c_str(),
        enum_name(done->status()).c_str(), done->seconds());
    return absl::OkStatus();
  }
  OMPQ_RETURN_IF_ERROR(ledger_->begin(name));
  say("[%s] starting\n", name.c_str());
  const Clock::time_point start = Clock::now();
  proto::StageRecord record;
  record.set_name(name);
  record.set_status(proto::STAGE_STATUS_DONE);
  absl::Status status = body(record);
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("stage ", name, ": ", status.message()));
  }
  record.set_seconds(seconds_since(start));
  say("[%s] done in %.1f s\n", name.c_str(), record.seconds());
  OMPQ_RETURN_IF_ERROR(ledger_->finish(record));  // only rank 0's ledger writes the file
  wait_for_writes();
  return absl::OkStatus();
}

absl::Status Experiment::skip_stage(const std::string& name, const std::string& why) {
  if (ledger_->finished(name) != nullptr) return absl::OkStatus();
  say("[%s] skipped: %s\n", name.c_str(), why.c_str());
  proto::StageRecord record;
  record.set_name(name);
  record.set_status(proto::STAGE_STATUS_SKIPPED);
  OMPQ_RETURN_IF_ERROR(ledger_->finish(record));
  wait_for_writes();
  return absl::OkStatus();
}

absl::Status Experiment::append_metrics(const std::string& stage, const std::string& epoch,
                                        const EpochResult* train, const EvalResult& test) {
  if (!metrics_) return absl::OkStatus();
  auto train_value = [&](double EpochResult::*field, int digits) {
    return train != nullptr ? fixed(train->*field, digits) : std::string();
  };
  return metrics_->append(
      {stage, epoch, train_value(&EpochResult::loss, 6), train_value(&EpochResult::top1, 4),
       fixed(test.loss, 6), fixed(test.top1, 4), fixed(test.top5, 4),
       train_value(&EpochResult::images_per_second, 1), train_value(&EpochResult::seconds, 2),
       train_value(&EpochResult::data_wait_fraction, 4)});
}

absl::Status Experiment::forget_metrics(
    const std::function<bool(const std::vector<std::string>& row)>& row_is_stale) {
  return metrics_ ? metrics_->remove_rows(row_is_stale) : absl::OkStatus();
}

absl::Status Experiment::run_training(TrainingLoop& loop) {
  int64_t first_epoch = 0, start_step = 0;
  EpochTotals carried;
  if (fs::exists(loop.checkpoint)) {
    OMPQ_ASSIGN_OR_RETURN(CheckpointState state,
                          load_checkpoint(loop.checkpoint.string(), *loop.model, *loop.optimizer));
    first_epoch = state.epochs_done;
    const ResumePoint resume = resume_point(state, world_size(), config_.train().batch_size());
    start_step = resume.step;
    carried = state.epoch_totals;
    loop.gen->set_state(state.rng_seed, state.rng_offset);
    if (loop.grad_scaler != nullptr && state.loss_scale > 0) {
      loop.grad_scaler->restore(state.loss_scale, state.loss_scale_growth_tracker);
    }
    say("[%s] resuming from %s at epoch %lld step %lld\n", loop.stage.c_str(),
        loop.checkpoint.c_str(), static_cast<long long>(first_epoch + 1),
        static_cast<long long>(start_step));
    if (!resume.note.empty()) say("[%s] resuming: %s\n", loop.stage.c_str(), resume.note.c_str());
  }
  // Rows of epochs the checkpoint does not cover were written before a crash; they come again.
  OMPQ_RETURN_IF_ERROR(forget_metrics([&](const std::vector<std::string>& row) {
    int64_t epoch = 0;
    return row[0] == loop.stage && absl::SimpleAtoi(row[1], &epoch) && epoch > first_epoch;
  }));
  for (int64_t epoch = first_epoch; epoch < loop.epochs; ++epoch) {
    absl::StatusOr<EpochResult> train = loop.train_epoch(epoch, start_step, carried);
    start_step = 0;
    carried = {};
    if (!train.ok()) {
      std::string kept =
          fs::exists(loop.checkpoint)
              ? absl::StrCat("the last good checkpoint, ", loop.checkpoint.string(), ", is kept")
              : "no checkpoint was written yet";
      return absl::Status(train.status().code(),
                          absl::StrCat(train.status().message(), "; ", kept));
    }
    EvalResult test = loop.evaluate();
    say("[%s] epoch %lld/%lld: train loss %.4f top-1 %.2f%% | test loss %.4f top-1 "
        "%.2f%% top-5 %.2f%% | %.0f img/s, %.1f s, %.1f%% waiting for data\n",
        loop.stage.c_str(), static_cast<long long>(epoch + 1), static_cast<long long>(loop.epochs),
        train->loss, train->top1, test.loss, test.top1, test.top5, train->images_per_second,
        train->seconds, 100.0 * train->data_wait_fraction);
    OMPQ_RETURN_IF_ERROR(append_metrics(loop.stage, absl::StrCat(epoch + 1), &*train, test));
    if (writes()) {
      OMPQ_RETURN_IF_ERROR(save_checkpoint(loop.checkpoint.string(), *loop.model, *loop.optimizer,
                                           checkpoint_state(loop, epoch + 1, 0)));
    }
  }
  return absl::OkStatus();
}

std::function<absl::Status(int64_t, int64_t, const EpochTotals&)> Experiment::step_checkpointer(
    const TrainingLoop& loop, int64_t every) const {
  if (every <= 0 || !writes()) return nullptr;
  return [this, &loop, every](int64_t epoch, int64_t steps_done, const EpochTotals& totals) {
    if (steps_done % every != 0) return absl::OkStatus();
    return save_checkpoint(loop.checkpoint.string(), *loop.model, *loop.optimizer,
                           checkpoint_state(loop, epoch, steps_done, totals));
  };
}

absl::Status Experiment::pretrain(proto::StageRecord& record) {
  const proto::TrainConfig& tc = config_.train();
  Generator gen(config_.seed());
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, new_model(gen));
  model->to(runtime_.device);
  data::DataLoader train = train_loader(), test = test_loader();
  SgdOptions sgd;
  sgd.lr = tc.lr();
  sgd.momentum = tc.momentum();
  sgd.nesterov = tc.nesterov();
  sgd.weight_decay = tc.weight_decay();
  nn::SGD optimizer(model->parameters(), sgd);
  // prepare() made warmup_iterations shorter than the run.
  const int64_t total_iterations = static_cast<int64_t>(tc.epochs()) * train.num_batches();
  auto cosine = std::make_shared<nn::CosineLr>(total_iterations - tc.warmup_iterations());
  std::shared_ptr<const nn::LrSchedule> schedule = cosine;
  if (tc.warmup_iterations() > 0) {
    schedule = std::make_shared<nn::WarmupLr>(tc.warmup_iterations(), 0.0, cosine);
  }
  TrainingLoop loop;
  loop.stage = "pretrain";
  loop.checkpoint = path(kPretrainCheckpoint);
  loop.epochs = tc.epochs();
  loop.model = model.get();
  loop.optimizer = &optimizer;
  loop.gen = &gen;
  TrainOptions options;
  options.label_smoothing = tc.label_smoothing();
  options.log_interval = tc.log_interval();
  options.device = runtime_.device;
  options.comm = runtime_.comm;
  options.after_step = step_checkpointer(loop, tc.checkpoint_steps());
  options.precision = precision_dtype(tc.precision());
  Trainer trainer(*model, optimizer, *schedule, options);
  loop.grad_scaler = trainer.grad_scaler();
  loop.train_epoch = [&](int64_t epoch, int64_t start_step, const EpochTotals& carried) {
    train.set_epoch(epoch);
    return trainer.train_epoch(train, epoch, tc.epochs(), start_step, carried);
  };
  EvalResult last;
  loop.evaluate = [&] {
    return last = evaluate(*model, test, runtime_.device, runtime_.comm, options.precision);
  };
  OMPQ_RETURN_IF_ERROR(run_training(loop));
  if (writes()) OMPQ_RETURN_IF_ERROR(model->save(path(kFp32File).string()));
  record.add_outputs(kFp32File);
  return absl::OkStatus();
}

absl::Status Experiment::search_bits(proto::StageRecord& record) {
  record.add_outputs(kBitsFile);
  if (given_bits_) {
    record.set_status(proto::STAGE_STATUS_GIVEN);
    say("[search] bits from %s\n", config_.search().bits().c_str());
    return writes() ? write_text_proto(path(kBitsFile).string(), *given_bits_) : absl::OkStatus();
  }
  const proto::SearchConfig& sc = config_.search();
  SearchOptions options;
  options.model_name = config_.model();
  options.mode = quant_mode(config_.quant());
  options.beta = sc.beta();
  OMPQ_ASSIGN_OR_RETURN(options.allocation.solver, solver_kind(sc.solver()));
  options.allocation.rounding = rounding_kind(sc.rounding(), config_.model());
  options.allocation.budget_mib = sc.budget_mb();
  options.allocation.act_bits = config_.act_bits();
  Generator gen(config_.seed());
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, fp32_model(gen));
  Tensor images;
  const bool data_free = options.allocation.solver == SolverKind::kProjection;
  if (!data_free) {
    OMPQ_ASSIGN_OR_RETURN(
        images, first_shuffled_batch(search_set_, sc.images(), config_.seed(), "search images"));
    images = images.to(runtime_.device);
  }
  OMPQ_ASSIGN_OR_RETURN(SearchResult result, search(*model, images, options));
  say("[search] %s %s: %.4f MiB (budget %.4f), %.4f G BOPs; features %.2f s, ORM %.2f s, "
      "solve %.3f s\n",
      solver_name(options.allocation.solver), quant_mode_name(options.mode),
      result.allocation.size_mib, sc.budget_mb(), result.allocation.bops_g,
      result.timings.features_s, result.timings.orm_s, result.timings.solve_s);
  if (result.allocation.size_mib > sc.budget_mb()) {
    say("[search] over the budget: half-to-even rounding ignores it, as the reference's "
        "does; --rounding=dfs or --solver=ilp keep to it\n");
  }
  proto::BitConfig bits = make_bit_config(options, result);
  bits.set_num_classes(num_classes_);
  bits.set_small_input(config_.small_input());
  bits.set_width_mult(config_.width_mult());
  bits.set_seed(config_.seed());
  if (!data_free) {
    bits.set_weights(fp32_weights());
    bits.set_data(absl::StrCat(data::dataset_kind_name(dataset_kind_), ":", config_.data().dir()));
    bits.set_num_images(sc.images());
  }
  if (!writes()) return absl::OkStatus();
  if (result.orm.defined()) {
    const int64_t units = static_cast<int64_t>(result.log_theta.size());
    OMPQ_RETURN_IF_ERROR(
        save_safetensors(path(kSearchFile).string(),
                         {{"orm", result.orm.to(Device::cpu())},
                          {"log_theta", Tensor::from_vector<double>(result.log_theta, {units})}}));
    record.add_outputs(kSearchFile);
  }
  return write_text_proto(path(kBitsFile).string(), bits);
}

absl::Status Experiment::qat(proto::StageRecord& record) {
  Generator gen(config_.seed());
  nn::QuantizedLayers layers;
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, quantized_model(gen, &layers));
  data::DataLoader train = train_loader(), test = test_loader();
  const proto::QatConfig& qc = config_.qat();
  TrainingLoop loop;
  loop.stage = "qat";
  loop.checkpoint = path(kQatCheckpoint);
  loop.epochs = qc.epochs();
  loop.model = model.get();
  loop.gen = &gen;
  QatOptions options;
  options.epochs = qc.epochs();
  options.lr = qc.lr();
  options.momentum = qc.momentum();
  options.weight_decay = qc.weight_decay();
  options.train.log_interval = config_.train().log_interval();
  options.train.device = runtime_.device;
  options.train.comm = runtime_.comm;
  options.train.after_step = step_checkpointer(loop, config_.train().checkpoint_steps());
  QatTrainer trainer(*model, train.num_batches(), options);
  loop.optimizer = &trainer.optimizer();
  loop.train_epoch = [&](int64_t epoch, int64_t start_step, const EpochTotals& carried) {
    train.set_epoch(epoch);
    return trainer.train_epoch(train, epoch, start_step, carried);
  };
  loop.evaluate = [&] { return trainer.evaluate(test); };
  OMPQ_RETURN_IF_ERROR(run_training(loop));
  // Saved with the ranges frozen as evaluation and export see them.
  nn::set_quantizers_frozen(*model, true);
  if (writes()) OMPQ_RETURN_IF_ERROR(model->save(path(kQuantizedFile).string()));
  record.add_outputs(kQuantizedFile);
  return absl::OkStatus();
}

absl::Status Experiment::ptq(proto::StageRecord& record) {
  Generator gen(config_.seed());
  nn::QuantizedLayers layers;
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, quantized_model(gen, &layers));
  const proto::PtqConfig& pc = config_.ptq();
  OMPQ_ASSIGN_OR_RETURN(Tensor images, first_shuffled_batch(train_set_, pc.calibration_images(),
                                                            config_.seed(), "calibration images"));
  PtqOptions options;
  options.weight_iterations = pc.iters();
  // The default ratio of the two phases' iterations (500 : 200).
  options.activation_iterations =
      pc.activation_iters() > 0 ? pc.activation_iters() : std::max<int64_t>(1, pc.iters() * 2 / 5);
  if (pc.weight_lr() > 0) options.weight_lr = pc.weight_lr();
  if (pc.activation_lr() > 0) options.activation_lr = pc.activation_lr();
  if (pc.rounding_weight() > 0) options.rounding_loss_weight = pc.rounding_weight();
  if (pc.activation_p() > 0) options.activation_p = pc.activation_p();
  options.batch_size = std::min<int64_t>(options.batch_size, pc.calibration_images());
  options.init_images = std::min<int64_t>(options.init_images, pc.calibration_images());
  options.progress_interval = std::max(1, config_.train().log_interval());
  options.checkpoint = path(kPtqCheckpoint).string();
  options.write_checkpoint = writes();
  options.on_resume = [this, &options](int phase, int64_t done, int64_t units) {
    say("[ptq] resuming from %s: phase %d, %lld of %lld units done\n", options.checkpoint.c_str(),
        phase, static_cast<long long>(done), static_cast<long long>(units));
  };
  options.on_progress = [this](const PtqProgress& p) {
    say("[ptq] phase %d unit %lld/%lld %s: iteration %lld/%lld, loss %.4g%s\n", p.phase,
        static_cast<long long>(p.unit_index + 1), static_cast<long long>(p.num_units),
        p.unit.c_str(), static_cast<long long>(p.iteration), static_cast<long long>(p.iterations),
        p.reconstruction_loss,
        p.phase == 1 ? absl::StrFormat(" + rounding %.4g", p.rounding_loss).c_str() : "");
  };
  OMPQ_ASSIGN_OR_RETURN(PtqResult result,
                        reconstruct_ptq(*model, layers, images.to(runtime_.device), options));
  for (const PtqUnitResult& unit : result.units) {
    say("[ptq] %s: error %.4g nearest -> %.4g AdaRound (%.1f s)\n", unit.name.c_str(),
        unit.nearest_error, unit.adaround_error, unit.seconds);
  }
  if (writes()) OMPQ_RETURN_IF_ERROR(model->save(path(kQuantizedFile).string()));
  record.add_outputs(kQuantizedFile);
  return absl::OkStatus();
}

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

// metrics.csv rows back as report rows (empty cells: NaN).
absl::StatusOr<std::vector<ReportMetrics>> read_metrics(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return absl::NotFoundError(absl::StrCat(file.string(), ": cannot open"));
  auto number = [](absl::string_view cell) {
    double value = std::numeric_limits<double>::quiet_NaN();
    if (!cell.empty() && !absl::SimpleAtod(cell, &value)) value = std::nan("");
    return value;
  };
  std::vector<ReportMetrics> rows;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<absl::string_view> cells = absl::StrSplit(line, ',');
    if (cells.size() != metrics_columns().size()) {
      return absl::DataLossError(absl::StrCat(file.string(), ": row \"", line, "\" has ",
                                              cells.size(), " cells, expected ",
                                              metrics_columns().size()));
    }
    ReportMetrics row;
    row.stage = std::string(cells[0]);
    double epoch = number(cells[1]);
    row.epoch = std::isnan(epoch) ? 0 : static_cast<int64_t>(epoch);
    row.train_loss = number(cells[2]);
    row.train_top1 = number(cells[3]);
    row.test_loss = number(cells[4]);
    row.test_top1 = number(cells[5]);
    row.test_top5 = number(cells[6]);
    rows.push_back(row);
  }
  return rows;
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
  OMPQ_ASSIGN_OR_RETURN(report.metrics, read_metrics(path(kMetricsFile)));
  if (writes()) OMPQ_RETURN_IF_ERROR(write_report(report, dir_.string()));
  record.add_outputs(kReportJson);
  record.add_outputs(kReportHtml);
  return absl::OkStatus();
}

absl::Status Experiment::run() {
  OMPQ_RETURN_IF_ERROR(prepare());
  OMPQ_RETURN_IF_ERROR(claim_folder());
  say("ompq experiment: %s on %s (%lld train / %lld test), quant %s, %s, into %s\n",
      config_.model().c_str(), train_set_->name().c_str(),
      static_cast<long long>(train_set_->size()), static_cast<long long>(test_set_->size()),
      enum_name(config_.quant()).c_str(), runtime_.device.str().c_str(), dir_.c_str());
  using Body = absl::Status (Experiment::*)(proto::StageRecord&);
  auto run_stage = [this](const std::string& name, Body body) {
    return stage(name, [this, body](proto::StageRecord& r) { return (this->*body)(r); });
  };
  if (config_.weights().empty()) {
    OMPQ_RETURN_IF_ERROR(run_stage("pretrain", &Experiment::pretrain));
  } else {
    OMPQ_RETURN_IF_ERROR(skip_stage("pretrain", "FP32 weights given"));
  }
  if (quantizes()) {
    OMPQ_RETURN_IF_ERROR(run_stage("search", &Experiment::search_bits));
    OMPQ_RETURN_IF_ERROR(config_.quant() == proto::QUANT_QAT ? run_stage("qat", &Experiment::qat)
                                                             : run_stage("ptq", &Experiment::ptq));
  }
  OMPQ_RETURN_IF_ERROR(run_stage("eval", &Experiment::eval));
  if (quantizes()) {
    OMPQ_RETURN_IF_ERROR(run_stage("export", &Experiment::export_packed));
  } else {
    OMPQ_RETURN_IF_ERROR(skip_stage("export", "quant none"));
  }
  OMPQ_RETURN_IF_ERROR(run_stage("report", &Experiment::report));
  say_skipped_images();
  say("wrote %s\n", dir_.c_str());
  return absl::OkStatus();
}

}  // namespace

absl::Status validate_experiment_config(const ExperimentConfig& c) {
  const proto::TrainConfig& t = c.train();
  if (c.output_dir().empty()) return invalid("output_dir must not be empty");
  OMPQ_RETURN_IF_ERROR(check_enum_values(c, "config"));
  if (c.data().train_limit() < 0 || c.data().test_limit() < 0 || c.data().workers() < 0) {
    return invalid("train_limit, test_limit and workers must not be negative");
  }
  if (t.batch_size() <= 0)
    return invalid(absl::StrCat("batch_size must be positive, got ", t.batch_size()));
  if (t.eval_batch_size() <= 0) {
    return invalid(absl::StrCat("eval_batch_size must be positive, got ", t.eval_batch_size()));
  }
  if (t.warmup_iterations() < 0) {
    return invalid(
        absl::StrCat("warmup_iterations must not be negative, got ", t.warmup_iterations()));
  }
  if (c.data().prefetch() < 0) {
    return invalid(absl::StrCat("prefetch must not be negative, got ", c.data().prefetch()));
  }
  if (c.data().image_size() < 0) {
    return invalid(absl::StrCat("image_size must not be negative, got ", c.data().image_size()));
  }
  if (c.data().dataset() != proto::DATASET_IMAGENET && !c.data().label_file().empty()) {
    return invalid("label_file is for dataset imagenet (a flat val/ folder)");
  }
  if (t.checkpoint_steps() < 0) {
    return invalid(
        absl::StrCat("checkpoint_steps must not be negative, got ", t.checkpoint_steps()));
  }
  if (c.weights().empty()) {
    if (t.epochs() <= 0) return invalid(absl::StrCat("epochs must be positive, got ", t.epochs()));
    if (!(t.lr() > 0)) return invalid(absl::StrCat("lr must be positive, got ", t.lr()));
    if (t.label_smoothing() < 0 || t.label_smoothing() >= 1) {
      return invalid(absl::StrCat("label_smoothing must be in [0, 1), got ", t.label_smoothing()));
    }
  }
  if (c.quant() == proto::QUANT_NONE) return absl::OkStatus();
  if (c.act_bits() < 2 || c.act_bits() > 8) {
    return invalid(absl::StrCat("act_bits ", c.act_bits(), " (expected 2..8)"));
  }
  const proto::SearchConfig& s = c.search();
  if (s.bits().empty()) {
    if (s.budget_mb() < 0 || s.budget_fraction() < 0) {
      return invalid(absl::StrCat("budget_mb ", s.budget_mb(), " and budget_fraction ",
                                  s.budget_fraction(), " (expected >= 0)"));
    }
    if (!(std::isfinite(s.beta()) && s.beta() >= 0)) {
      return invalid(absl::StrCat("beta ", s.beta(), " (expected finite and >= 0)"));
    }
    OMPQ_RETURN_IF_ERROR(solver_kind(s.solver()).status());
    if (s.solver() != proto::SOLVER_PROJECTION && s.images() < 2) {
      return invalid(absl::StrCat("search_images ", s.images(), " (expected >= 2)"));
    }
  }
  if (c.quant() == proto::QUANT_QAT) {
    const proto::QatConfig& q = c.qat();
    if (q.epochs() <= 0)
      return invalid(absl::StrCat("qat_epochs must be positive, got ", q.epochs()));
    if (!(q.lr() > 0)) return invalid(absl::StrCat("qat_lr must be positive, got ", q.lr()));
    if (q.momentum() < 0 || q.weight_decay() < 0) {
      return invalid("qat momentum and weight_decay must not be negative");
    }
  } else {
    if (c.ptq().iters() <= 0) {
      return invalid(absl::StrCat("ptq_iters must be positive, got ", c.ptq().iters()));
    }
    if (c.ptq().calibration_images() <= 0) {
      return invalid(
          absl::StrCat("calibration_images must be positive, got ", c.ptq().calibration_images()));
    }
  }
  return absl::OkStatus();
}

absl::Status run_experiment(const ExperimentConfig& config, const ExperimentRuntime& runtime) {
  Experiment experiment(config, runtime);
  return experiment.run();
}

}  // namespace ompq::solver
