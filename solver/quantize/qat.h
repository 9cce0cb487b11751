// Quantization-aware fine-tuning with the HAWQ-V3 recipe that OMPQ uses (docs/METHOD.md 5.1, 5.2):
//  - every searched conv/linear is replaced by its QAT form (quantize_model, kQat): per-channel
//    symmetric min/max weights at the searched bits, recomputed at every forward; a following
//    batch norm folded in with its running statistics, which stay frozen (--fix_BN: the
//    statistics never update, gamma and beta train through the folded weights);
//  - input quantizers with EMA ranges (momentum 0.99) and HAWQ's unclipped straight-through
//    estimator, at the global activation bits, except the stem's input (quant_input) and the
//    classifier's input (quant_act_output), which stay at 8 bits;
//  - SGD with momentum and weight decay on every parameter, lr = 0.5 lr0 (1 + cos(pi t / T)) per
//    iteration t over the whole run's T iterations, no warm-up;
//  - evaluation with the activation ranges frozen, which resume tracking afterwards.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "data/dataloader.h"
#include "layers/lr_schedule.h"
#include "layers/models/model.h"
#include "layers/optim.h"
#include "layers/quant/quantize_model.h"
#include "solver/train/trainer.h"

namespace ompq::solver {

// Input bits of the stem and the classifier (HAWQ-V3's quant_input and quant_act_output).
inline constexpr int kQatEdgeInputBits = 8;

struct QatOptions {
  int64_t epochs = 1;
  double lr = 1e-4;  // the reference's lr0 (docs/METHOD.md 5.1)
  double momentum = 0.9;
  double weight_decay = 1e-4;
  // Device, progress interval and step hook of the training loop.
  TrainOptions train;
};

// Replaces the layers of `weight_bits` (every conv/linear that takes bits, by name) by their QAT
// form with inputs at `act_bits`; the layers of `edge_layers` (the stem conv and the classifier)
// take 8-bit inputs. Errors (unknown layer, bits out of 2..8) throw, naming the layer.
nn::QuantizedLayers quantize_for_qat(nn::Model& model,
                                     const std::map<std::string, int>& weight_bits,
                                     const std::set<std::string>& edge_layers, int act_bits);

// Fine-tunes a model that quantize_for_qat() prepared. Owns the optimizer (its state is what a
// checkpoint saves with the model) and the schedule over epochs * steps_per_epoch iterations.
class QatTrainer {
 public:
  QatTrainer(nn::Model& model, int64_t steps_per_epoch, const QatOptions& options);

  nn::Optimizer& optimizer() { return optimizer_; }
  const nn::LrSchedule& schedule() const { return schedule_; }

  // Epoch `epoch` (0-based) from batch `start_step` on, `carried` the sums of the steps before it
  // (Trainer::train_epoch). A NaN/Inf loss is an error (Trainer).
  absl::StatusOr<EpochResult> train_epoch(const data::DataLoader& loader, int64_t epoch,
                                          int64_t start_step = 0, const EpochTotals& carried = {});
  // Test loss and accuracy with the activation ranges frozen; tracking resumes afterwards.
  EvalResult evaluate(const data::DataLoader& loader);

 private:
  nn::Model& model_;
  QatOptions options_;
  nn::SGD optimizer_;
  nn::CosineLr schedule_;
  Trainer trainer_;
};

// Evaluation of a quantized model with its activation ranges frozen (the model stays frozen),
// summed over the ranks of `comm` when given.
EvalResult evaluate_quantized(nn::Model& model, const data::DataLoader& loader, Device device,
                              Communicator* comm = nullptr);

}  // namespace ompq::solver
