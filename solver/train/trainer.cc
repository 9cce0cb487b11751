#include "solver/train/trainer.h"

#include <chrono>
#include <cmath>
#include <optional>
#include <string>

#include "absl/strings/str_format.h"
#include "core/autocast.h"
#include "core/autograd.h"
#include "core/functional/softmax.h"
#include "solver/train/progress.h"

namespace ompq::solver {

std::pair<int64_t, int64_t> count_topk_hits(const Tensor& logits, const Tensor& labels) {
  OMPQ_CHECK(logits.dim() == 2 && labels.dim() == 1 && labels.size(0) == logits.size(0),
             "count_topk_hits: logits ", shape_str(logits.shape()), " and labels ",
             shape_str(labels.shape()), " (expected [N, C] and [N])");
  std::vector<float> values = logits.to_vector<float>();
  std::vector<int64_t> targets = labels.to_vector<int64_t>();
  const int64_t classes = logits.size(1);
  int64_t top1 = 0, top5 = 0;
  for (size_t row = 0; row < targets.size(); ++row) {
    const float* v = values.data() + row * classes;
    float target_value = v[targets[row]];
    // Rank = how many classes beat the target; ties count against it, as torch.topk may order them.
    int64_t rank = 0;
    for (int64_t c = 0; c < classes; ++c) {
      if (c != targets[row] && v[c] >= target_value) ++rank;
    }
    top1 += rank == 0;
    top5 += rank < 5;
  }
  return {top1, top5};
}

namespace {

// The element-wise sum of `values` over the ranks of `comm` (as they are without one).
std::vector<double> sum_over_ranks(Communicator* comm, std::vector<double> values) {
  if (comm == nullptr) return values;
  Tensor t = Tensor::from_vector<double>(values, {static_cast<int64_t>(values.size())});
  t = t.to(comm->device());
  comm->allreduce(t, ReduceOp::kSum);
  return t.to_vector<double>();
}

}  // namespace

EvalResult evaluate(nn::Module& model, const data::DataLoader& loader, Device device,
                    Communicator* comm, DType precision) {
  NoGradGuard no_grad;
  AutocastGuard autocast(precision);
  model.eval();
  EvalResult result;
  double loss_sum = 0.0;
  int64_t top1 = 0, top5 = 0;
  for (data::Batch& batch : loader.batches()) {
    Tensor logits = model(batch.inputs.to(device));
    Tensor labels = batch.labels.to(device);
    int64_t n = labels.size(0);
    loss_sum += cross_entropy(logits, labels).item<double>() * n;
    auto [hits1, hits5] = count_topk_hits(logits, labels);
    top1 += hits1;
    top5 += hits5;
    result.count += n;
  }
  std::vector<double> totals =
      sum_over_ranks(comm, {loss_sum, static_cast<double>(top1), static_cast<double>(top5),
                            static_cast<double>(result.count)});
  loss_sum = totals[0];
  top1 = static_cast<int64_t>(totals[1]);
  top5 = static_cast<int64_t>(totals[2]);
  result.count = static_cast<int64_t>(totals[3]);
  if (result.count > 0) {
    result.loss = loss_sum / result.count;
    result.top1 = 100.0 * top1 / result.count;
    result.top5 = 100.0 * top5 / result.count;
  }
  return result;
}

Trainer::Trainer(nn::Module& model, nn::Optimizer& optimizer, const nn::LrSchedule& schedule,
                 TrainOptions options)
    : model_(model), optimizer_(optimizer), schedule_(schedule), options_(options) {
  OMPQ_CHECK(options_.precision == DType::kF32 || options_.precision == DType::kBF16 ||
                 options_.precision == DType::kF16,
             "Trainer: precision must be f32, bf16 or f16, got ", dtype_name(options_.precision));
  if (options_.precision == DType::kF16) {
    grad_scaler_ = std::make_unique<nn::GradScaler>(options_.grad_scaler);
  }
  if (options_.comm != nullptr) {
    data_parallel_ = std::make_unique<DataParallel>(model_, *options_.comm, options_.data_parallel);
  }
}

absl::StatusOr<EpochResult> Trainer::train_epoch(const data::DataLoader& loader, int64_t epoch,
                                                 int64_t num_epochs, int64_t start_step,
                                                 const EpochTotals& carried) {
  model_.train();
  Communicator* comm = options_.comm;
  const bool root = comm == nullptr || comm->rank() == 0;
  const int64_t steps = loader.num_batches();
  Progress progress(absl::StrFormat("epoch %d/%d", epoch + 1, num_epochs), steps,
                    options_.log_interval);
  const auto start = std::chrono::steady_clock::now();
  EpochTotals totals = carried;
  // The wall time of this call's steps; `totals` adds it to the carried steps' time.
  auto seconds_now = [&] {
    return carried.seconds +
           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  data::BatchStream stream = loader.batches(start_step);
  for (;;) {
    const auto wait_start = std::chrono::steady_clock::now();
    std::optional<data::Batch> next = stream.next();
    totals.data_wait_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wait_start).count();
    if (!next) break;
    data::Batch& batch = *next;
    const int64_t iteration = epoch * steps + batch.step;
    schedule_.apply(optimizer_, iteration);
    Tensor inputs = batch.inputs.to(options_.device);
    Tensor labels = batch.labels.to(options_.device);
    Tensor logits, loss;
    {
      AutocastGuard autocast(options_.precision);
      logits = model_(inputs);
      loss = cross_entropy(logits, labels, options_.label_smoothing);
    }
    double loss_value = loss.item<double>();
    // f16 backward starts from the scaled loss (so that small gradients survive in f16).
    const Tensor backward_root = grad_scaler_ ? grad_scaler_->scale(loss) : loss;
    int64_t n = labels.size(0);
    int64_t step_hits = count_topk_hits(logits.detach(), labels).first;
    optimizer_.zero_grad();
    if (data_parallel_) {
      data_parallel_->begin_backward();
      backward_root.backward();
      data_parallel_->end_backward();
      // Whether to apply the step is decided on the global loss, so that all ranks decide alike.
      std::vector<double> global = sum_over_ranks(
          comm, {loss_value, static_cast<double>(step_hits), static_cast<double>(n)});
      loss_value = global[0] / comm->size();
      step_hits = static_cast<int64_t>(global[1]);
      n = static_cast<int64_t>(global[2]);
    }
    if (!std::isfinite(loss_value)) {
      if (root) progress.finish();
      return absl::FailedPreconditionError(absl::StrFormat(
          "training loss became %f at epoch %d step %d (lr %g); stopping before the update",
          loss_value, epoch + 1, batch.step + 1, optimizer_.param_groups()[0].lr));
    }
    if (!data_parallel_) backward_root.backward();
    if (grad_scaler_) {
      // Data parallel: the gradients are averaged over the ranks, so an overflow on any rank
      // reaches every rank and all of them skip the same steps.
      if (!grad_scaler_->step(optimizer_)) ++totals.skipped_steps;
      grad_scaler_->update();
    } else {
      optimizer_.step();
    }

    totals.loss_sum += loss_value;
    totals.top1_hits += step_hits;
    totals.images += n;
    ++totals.steps;
    totals.seconds = seconds_now();
    if (root) {
      std::string status = absl::StrFormat("loss %.4f lr %.4g data %.0f%%", loss_value,
                                           optimizer_.param_groups()[0].lr,
                                           100.0 * totals.data_wait_seconds / totals.seconds);
      if (grad_scaler_) absl::StrAppendFormat(&status, " scale %g", grad_scaler_->scale_value());
      progress.update(batch.step + 1, n, status);
    }
    if (options_.after_step) {
      absl::Status status = options_.after_step(epoch, batch.step + 1, totals);
      if (!status.ok()) {
        if (root) progress.finish();
        return status;
      }
    }
  }
  if (root) progress.finish();
  EpochResult result;
  result.images = totals.images;
  result.skipped_steps = totals.skipped_steps;
  result.seconds = seconds_now();
  result.images_per_second = result.images / std::max(result.seconds, 1e-9);
  result.data_wait_fraction = totals.data_wait_seconds / std::max(result.seconds, 1e-9);
  if (totals.steps > 0) {
    result.loss = totals.loss_sum / totals.steps;
    result.top1 = 100.0 * totals.top1_hits / totals.images;
  }
  return result;
}

}  // namespace ompq::solver
