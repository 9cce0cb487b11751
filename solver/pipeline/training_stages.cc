// The stages that train: pretraining of the FP32 model and QAT, over one resumable loop.
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "layers/lr_schedule.h"
#include "solver/config/config_enums.h"
#include "solver/pipeline/experiment_impl.h"
#include "solver/quantize/qat.h"

namespace ompq::solver {
namespace {

std::string fixed(double value, int digits) { return absl::StrFormat("%.*f", digits, value); }

}  // namespace

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
}  // namespace ompq::solver
