#include "solver/pipeline/quantize_point.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "core/error.h"
#include "core/timing.h"
#include "solver/quantize/quantize_plan.h"
#include "solver/space/search_space.h"

namespace ompq::solver {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

PtqOptions ptq_options(const proto::PtqConfig& config) {
  PtqOptions options;
  options.weight_iterations = config.iters();
  options.activation_iterations = config.activation_iters() > 0
                                      ? config.activation_iters()
                                      : std::max<int64_t>(1, config.iters() * 2 / 5);
  if (config.weight_lr() > 0) options.weight_lr = config.weight_lr();
  if (config.activation_lr() > 0) options.activation_lr = config.activation_lr();
  if (config.rounding_weight() > 0) options.rounding_loss_weight = config.rounding_weight();
  if (config.activation_p() > 0) options.activation_p = config.activation_p();
  options.batch_size = std::min<int64_t>(options.batch_size, config.calibration_images());
  options.init_images = std::min<int64_t>(options.init_images, config.calibration_images());
  return options;
}

absl::StatusOr<PtqResult> quantize_by_ptq(nn::Model& model, const LayerBitsPlan& plan, int act_bits,
                                          const Tensor& calibration_images,
                                          const PtqOptions& options) {
  if (plan.mode != QuantMode::kPtq) {
    return absl::InvalidArgumentError(absl::StrCat("quantize_by_ptq: the bit plan is for ",
                                                   quant_mode_name(plan.mode), ", expected ptq"));
  }
  if (!calibration_images.defined()) {
    return absl::InvalidArgumentError("quantize_by_ptq: no calibration images");
  }
  nn::QuantizedLayers layers = quantize_for_plan(model, plan, act_bits);
  // The new quantizers' parameters start on the CPU.
  model.to(calibration_images.device());
  return reconstruct_ptq(model, layers, calibration_images, options);
}

absl::StatusOr<PtqPointResult> quantize_point(nn::Model& model, const LayerBitsPlan& plan,
                                              int act_bits, const Tensor& calibration_images,
                                              const PtqOptions& options,
                                              const data::DataLoader& test) {
  PtqPointResult result;
  const Clock::time_point ptq_start = Clock::now();
  OMPQ_ASSIGN_OR_RETURN(result.reconstruction,
                        quantize_by_ptq(model, plan, act_bits, calibration_images, options));
  result.ptq_seconds = seconds_since(ptq_start);
  const Clock::time_point eval_start = Clock::now();
  result.test = evaluate(model, test, calibration_images.device());
  result.eval_seconds = seconds_since(eval_start);
  return result;
}

}  // namespace ompq::solver
