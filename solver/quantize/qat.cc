#include "solver/quantize/qat.h"

#include "absl/strings/str_cat.h"
#include "core/error.h"

namespace ompq::solver {
namespace {

SgdOptions qat_sgd(const QatOptions& options) {
  OMPQ_CHECK(
      options.epochs > 0 && options.lr > 0 && options.momentum >= 0 && options.weight_decay >= 0,
      "QatTrainer: epochs ", options.epochs, ", lr ", options.lr, ", momentum ", options.momentum,
      ", weight_decay ", options.weight_decay,
      " (expected epochs > 0, lr > 0, momentum and weight_decay >= 0)");
  SgdOptions sgd;
  sgd.lr = options.lr;
  sgd.momentum = options.momentum;
  sgd.weight_decay = options.weight_decay;
  return sgd;
}

}  // namespace

nn::QuantizedLayers quantize_for_qat(nn::Model& model,
                                     const std::map<std::string, int>& weight_bits,
                                     const std::set<std::string>& edge_layers, int act_bits) {
  OMPQ_CHECK(act_bits >= 2 && act_bits <= 8, "quantize_for_qat: act_bits ", act_bits,
             " (expected 2..8)");
  nn::QuantizeOptions options;
  options.scheme = nn::QuantScheme::kQat;
  options.act_bits = act_bits;
  for (const std::string& name : edge_layers) options.input_bits[name] = kQatEdgeInputBits;
  options.input_options.momentum = 0.99;
  options.input_options.clip_gradient = false;  // HAWQ-V3: grad / scale, no clipping mask
  options.fold_batch_norm = true;
  return nn::quantize_model(model, weight_bits, options);
}

QatTrainer::QatTrainer(nn::Model& model, int64_t steps_per_epoch, const QatOptions& options)
    : model_(model),
      options_(options),
      optimizer_(model.parameters(), qat_sgd(options)),
      schedule_(options.epochs * steps_per_epoch),
      trainer_(model, optimizer_, schedule_, options.train) {
  OMPQ_CHECK(steps_per_epoch > 0, "QatTrainer: steps_per_epoch ", steps_per_epoch,
             " (expected > 0)");
  OMPQ_CHECK(!nn::quantized_layers(model).empty(),
             "QatTrainer: the model has no quantized layer (call quantize_for_qat first)");
}

absl::StatusOr<EpochResult> QatTrainer::train_epoch(const data::DataLoader& loader, int64_t epoch,
                                                    int64_t start_step,
                                                    const EpochTotals& carried) {
  nn::set_quantizers_frozen(model_, false);
  return trainer_.train_epoch(loader, epoch, options_.epochs, start_step, carried);
}

EvalResult QatTrainer::evaluate(const data::DataLoader& loader) {
  EvalResult result =
      evaluate_quantized(model_, loader, options_.train.device, options_.train.comm);
  nn::set_quantizers_frozen(model_, false);
  return result;
}

EvalResult evaluate_quantized(nn::Model& model, const data::DataLoader& loader, Device device,
                              Communicator* comm) {
  nn::set_quantizers_frozen(model, true);
  return solver::evaluate(model, loader, device, comm);
}

}  // namespace ompq::solver
