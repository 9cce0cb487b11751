#include "solver/pipeline/experiment.h"

#include <chrono>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/timing.h"
#include "data/catalog.h"
#include "layers/models/registry.h"
#include "solver/config/config_enums.h"
#include "solver/config/proto_io.h"
#include "solver/pipeline/experiment_data.h"
#include "solver/pipeline/experiment_impl.h"
#include "solver/search/search_enums.h"
#include "solver/space/cost_model.h"
#include "solver/space/search_space.h"

namespace ompq::solver {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

// Everything that can fail without running a stage, before anything is written.
absl::Status Experiment::prepare() {
  OMPQ_RETURN_IF_ERROR(validate_experiment_config(config_));
  OMPQ_ASSIGN_OR_RETURN(ExperimentData opened, open_experiment_data(config_));
  dataset_kind_ = opened.kind;
  input_shape_ = opened.input_shape;
  num_classes_ = opened.num_classes;
  train_set_ = opened.train;
  search_set_ = opened.search;
  test_set_ = opened.test;
  Generator gen(config_.seed());
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, new_model(gen));
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

absl::Status run_experiment(const ExperimentConfig& config, const ExperimentRuntime& runtime) {
  Experiment experiment(config, runtime);
  return experiment.run();
}
}  // namespace ompq::solver
