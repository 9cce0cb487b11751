// One point of a quantization experiment: a loaded FP32 model quantized for a bit config's plan by
// PTQ (BRECQ/AdaRound reconstruction on calibration images), then evaluated on test data. The ptq
// stage of ompq_train quantizes this way; the budget sweep (sweep.h) and the correlation experiment
// quantize and evaluate one model per point.
#pragma once

#include "absl/status/statusor.h"
#include "core/proto/ompq.pb.h"
#include "core/tensor.h"
#include "data/dataloader.h"
#include "layers/models/model.h"
#include "solver/quantize/ptq.h"
#include "solver/search/bit_config.h"
#include "solver/train/trainer.h"

namespace ompq::solver {

// The reconstruction options of an experiment's ptq section: its iterations (activation
// iterations 2/5 of the weight ones when 0, the default ratio 500 : 200), learning rates, rounding
// weight and p where set (the PtqOptions defaults where 0), and the mini-batch and range-setting
// image counts capped at its calibration images.
PtqOptions ptq_options(const proto::PtqConfig& config);

// Replaces the plan's layers of `model` (FP32, on the device of `calibration_images`) by their PTQ
// form, weights at the plan's bits and activations at `act_bits`, and reconstructs them on
// `calibration_images` [N, C, H, W]. A plan of another mode than PTQ is an InvalidArgument error;
// so are the inputs reconstruct_ptq refuses.
absl::StatusOr<PtqResult> quantize_by_ptq(nn::Model& model, const LayerBitsPlan& plan, int act_bits,
                                          const Tensor& calibration_images,
                                          const PtqOptions& options);

struct PtqPointResult {
  PtqResult reconstruction;
  EvalResult test;            // top-1 and top-5 in percent, mean cross-entropy
  double ptq_seconds = 0.0;   // quantize_by_ptq
  double eval_seconds = 0.0;  // the pass over `test`
};

// quantize_by_ptq, then the quantized model evaluated on every batch of `test` (on the images'
// device). `model` is left quantized, in eval mode.
absl::StatusOr<PtqPointResult> quantize_point(nn::Model& model, const LayerBitsPlan& plan,
                                              int act_bits, const Tensor& calibration_images,
                                              const PtqOptions& options,
                                              const data::DataLoader& test);

}  // namespace ompq::solver
