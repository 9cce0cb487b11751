#include "solver/trainer.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/autograd.h"
#include "core/functional/softmax.h"
#include "solver/progress.h"

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

EvalResult evaluate(nn::Module& model, const data::DataLoader& loader, Device device) {
  NoGradGuard no_grad;
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
  if (result.count > 0) {
    result.loss = loss_sum / result.count;
    result.top1 = 100.0 * top1 / result.count;
    result.top5 = 100.0 * top5 / result.count;
  }
  return result;
}

Trainer::Trainer(nn::Module& model, nn::Optimizer& optimizer, const nn::LrSchedule& schedule,
                 TrainOptions options)
    : model_(model), optimizer_(optimizer), schedule_(schedule), options_(options) {}

absl::StatusOr<EpochResult> Trainer::train_epoch(const data::DataLoader& loader, int64_t epoch,
                                                 int64_t num_epochs, int64_t start_step) {
  model_.train();
  const int64_t steps = loader.num_batches();
  Progress progress(absl::StrFormat("epoch %d/%d", epoch + 1, num_epochs), steps,
                    options_.log_interval);
  EpochResult result;
  double loss_sum = 0.0;
  int64_t hits = 0, batches = 0;
  for (data::Batch& batch : loader.batches(start_step)) {
    const int64_t iteration = epoch * steps + batch.step;
    schedule_.apply(optimizer_, iteration);
    Tensor inputs = batch.inputs.to(options_.device);
    Tensor labels = batch.labels.to(options_.device);
    Tensor logits = model_(inputs);
    Tensor loss = cross_entropy(logits, labels, options_.label_smoothing);
    double loss_value = loss.item<double>();
    if (!std::isfinite(loss_value)) {
      progress.finish();
      return absl::FailedPreconditionError(absl::StrFormat(
          "training loss became %f at epoch %d step %d (lr %g); stopping before the update",
          loss_value, epoch + 1, batch.step + 1, optimizer_.param_groups()[0].lr));
    }
    optimizer_.zero_grad();
    loss.backward();
    optimizer_.step();

    const int64_t n = labels.size(0);
    loss_sum += loss_value;
    hits += count_topk_hits(logits.detach(), labels).first;
    result.images += n;
    ++batches;
    progress.update(batch.step + 1, n,
                    absl::StrFormat("loss %.4f lr %.4g", loss_value, optimizer_.param_groups()[0].lr));
    if (options_.after_step) {
      absl::Status status = options_.after_step(epoch, batch.step + 1);
      if (!status.ok()) {
        progress.finish();
        return status;
      }
    }
  }
  progress.finish();
  result.seconds = result.images / std::max(progress.items_per_second(), 1e-9);
  result.images_per_second = progress.items_per_second();
  if (batches > 0) {
    result.loss = loss_sum / batches;
    result.top1 = 100.0 * hits / result.images;
  }
  return result;
}

}  // namespace ompq::solver
