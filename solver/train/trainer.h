// The training loop shared by every stage that trains (the first Fashion-MNIST run now; QAT and
// pretraining later): one epoch of forward, loss, backward and optimizer step with the learning
// rate set per iteration, and evaluation (loss, top-1, top-5) in eval mode without grad.
//
// Data parallel: with a Communicator in TrainOptions, each rank trains on its loader's shard
// (DataLoaderOptions rank/world_size), gradients are averaged over the ranks
// (solver/train/data_parallel.h), and the results (loss, top-1, images, rate) are the global ones,
// the same on every rank. Only rank 0 prints progress.
//
// Mixed precision (TrainOptions::precision bf16 or f16): forward and loss run under an
// AutocastGuard (core/autocast.h: conv2d/linear/matmul compute in the low dtype with f32
// accumulation, everything else and the parameters stay f32); f16 also scales the loss with an
// nn::GradScaler and skips steps whose gradients overflow. Evaluation takes the same precision.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "core/comm/communicator.h"
#include "data/dataloader.h"
#include "layers/grad_scaler.h"
#include "layers/lr_schedule.h"
#include "layers/module.h"
#include "layers/optim.h"
#include "solver/train/data_parallel.h"

namespace ompq::solver {

struct EvalResult {
  double loss = 0.0;  // mean cross-entropy
  double top1 = 0.0;  // percent
  double top5 = 0.0;  // percent
  int64_t count = 0;
};

// Evaluates `model` on every batch of `loader` and leaves it in eval mode. With `comm`, each rank
// evaluates its loader's shard and the result sums over the ranks (the same on every rank; a
// shard padded by the sampler counts its repeated examples, as torch's DistributedSampler).
// `precision` as TrainOptions::precision.
EvalResult evaluate(nn::Module& model, const data::DataLoader& loader, Device device,
                    Communicator* comm = nullptr, DType precision = DType::kF32);

// The running sums of an epoch in progress. A mid-epoch checkpoint keeps them
// (solver/train/checkpoint.h) so that the result of an epoch resumed there covers the steps before
// the resume too.
struct EpochTotals {
  double loss_sum = 0.0;  // the steps' mean losses, summed
  int64_t top1_hits = 0;
  int64_t images = 0;
  int64_t steps = 0;
  int64_t skipped_steps = 0;
  double seconds = 0.0;  // wall time, of the steps so far
  double data_wait_seconds = 0.0;
};

struct TrainOptions {
  double label_smoothing = 0.0;
  int log_interval = 100;
  Device device = Device::cpu();
  // Called after each optimizer step with the epoch, the steps of it done so far and the epoch's
  // sums over them (e.g. to write a mid-epoch checkpoint); an error stops the epoch with that
  // error.
  std::function<absl::Status(int64_t epoch, int64_t steps_done, const EpochTotals& totals)>
      after_step;
  // Data-parallel training over these ranks when set (it must outlive the Trainer and carry
  // tensors of `device`); the Trainer broadcasts the model from rank 0 when it is made.
  Communicator* comm = nullptr;
  DataParallelOptions data_parallel;
  // kF32, or kBF16 / kF16 for autocast mixed precision (kF16 with loss scaling).
  DType precision = DType::kF32;
  // The loss scaling of kF16.
  nn::GradScalerOptions grad_scaler;
};

struct EpochResult {
  double loss = 0.0;  // mean training loss over the epoch's batches
  double top1 = 0.0;  // percent of training examples classified right (in train mode)
  int64_t images = 0;
  double seconds = 0.0;
  double images_per_second = 0.0;
  // The share of the epoch's time the training thread spent waiting for the data loader's next
  // batch (0: the loader kept ahead; near 1: training starves).
  double data_wait_fraction = 0.0;
  // f16: optimizer steps skipped because a gradient overflowed (the loss scale then halves).
  int64_t skipped_steps = 0;
};

class Trainer {
 public:
  Trainer(nn::Module& model, nn::Optimizer& optimizer, const nn::LrSchedule& schedule,
          TrainOptions options);

  // Trains epoch `epoch` (0-based, of `num_epochs`) from batch `start_step` on; the schedule sees
  // iteration epoch * loader.num_batches() + step. `carried`: the sums of the steps before
  // `start_step` (a resumed epoch's, from its checkpoint), which the result includes. A NaN or
  // infinite loss stops the epoch with an error naming the epoch and step, before the optimizer
  // applies it.
  absl::StatusOr<EpochResult> train_epoch(const data::DataLoader& loader, int64_t epoch,
                                          int64_t num_epochs, int64_t start_step = 0,
                                          const EpochTotals& carried = {});
  // The loss scaling of precision kF16 (its state goes into checkpoints); null otherwise.
  nn::GradScaler* grad_scaler() { return grad_scaler_.get(); }

 private:
  nn::Module& model_;
  nn::Optimizer& optimizer_;
  const nn::LrSchedule& schedule_;
  TrainOptions options_;
  std::unique_ptr<DataParallel> data_parallel_;  // when options_.comm is set
  std::unique_ptr<nn::GradScaler> grad_scaler_;  // when options_.precision is kF16
};

// Counts, for each row of logits [N, C], whether the label is the arg-max (top-1) and among the
// five largest (top-5; all of them when C <= 5). Returns {top1_hits, top5_hits}.
std::pair<int64_t, int64_t> count_topk_hits(const Tensor& logits, const Tensor& labels);

}  // namespace ompq::solver
