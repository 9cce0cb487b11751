// Post-training quantization by BRECQ block reconstruction (docs/METHOD.md section 4.4) of a model
// already quantized with quantize_model(QuantScheme::kPtq) (ptq_quantize_options() gives the
// spec's settings):
//   0. weight ranges: one forward of the first 64 calibration images with weight quantization
//      only sets every weight quantizer's MSE-searched scale and zero point;
//   1. weights: for each reconstruction unit in network order (blocks.h: a residual block, an
//      inverted residual, or a stand-alone layer such as the classifier; the stem is skipped as in
//      the reference), AdaRound's rounding variables of all its layers are learned with Adam to
//      make the unit reproduce the float model's unit output on the calibration images, from the
//      inputs the weight-quantized model (earlier units hard-rounded, activations real) gives it;
//      loss = mean over images and pixels of sum over channels of (y^ - y)^2 plus the annealed
//      rounding regularizer; the unit is then hard-rounded (or, should that reconstruct worse
//      than rounding to nearest, keeps nearest rounding);
//   2. activations: one forward of the first 64 images with everything quantized sets the
//      activation ranges (MSE search); then, per unit again, the step sizes of its layers' input
//      quantizers are learned with Adam (cosine lr) on the Lp-2.4 reconstruction error from the
//      float model's unit inputs, weights fixed;
//   3. the hard-rounded weights are baked into the layers (adaround.h): afterwards the model is a
//      plain quantized model whose nearest-rounding quantizers reproduce the learned rounding, so
//      its state_dict, export and integer inference need nothing from this file.
//
// Deviation from the reference, by construction of our layers: quantizers sit on layer inputs,
// not on block outputs, so phase 2 learns the quantizers that read a unit's input (and its inner
// ones) rather than the one that writes its output; a stand-alone conv whose batch norm and ReLU
// live outside it (the ResNet stem, FashionCnn's convs) is reconstructed on its pre-activation
// output.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "layers/models/model.h"
#include "layers/quant/quantize_model.h"

namespace ompq::solver {

struct PtqProgress {
  int phase = 1;  // 1: weights (AdaRound), 2: activation step sizes
  std::string unit;
  int64_t unit_index = 0;  // 0-based among the units reconstructed
  int64_t num_units = 0;
  int64_t iteration = 0;  // 1-based
  int64_t iterations = 0;
  double reconstruction_loss = 0.0;  // of this iteration's batch
  double rounding_loss = 0.0;        // lambda * regularizer; 0 in warm-up and phase 2
};

// Defaults are for CPUs (ResNet-20 on 1024 32-px images in a few minutes on 2 cores): 40x fewer
// weight iterations than the reference with a 10x larger Adam lr, which lets the rounding
// variables travel far enough (at 1e-3, 500 iterations left most roundings at nearest: FashionCnn
// W2A8 51.8% vs 77.0% top-1 at 1e-2). The reference's GPU budget is brecq_reference_options().
struct PtqOptions {
  int64_t weight_iterations = 500;      // per unit; reference 20000
  int64_t activation_iterations = 200;  // per unit; reference 5000
  int64_t batch_size = 32;
  double weight_lr = 1e-2;             // Adam on the AdaRound variables; reference 1e-3
  double activation_lr = 4e-4;         // Adam on the step sizes, cosine-annealed to 0
  double rounding_loss_weight = 0.01;  // lambda: reference 0.01 (ResNet), 0.1 (MobileNetV2)
  double warmup = 0.2;                 // fraction of weight iterations without rounding loss
  double beta_start = 20.0, beta_end = 2.0;
  double activation_p = 2.4;            // Lp norm of the phase-2 loss
  bool reconstruct_activations = true;  // false: step sizes keep their MSE init
  bool reconstruct_stem = false;        // the reference never reconstructs the first layer
  int64_t init_images = 64;             // images of the range-setting forwards
  uint64_t seed = 1005;                 // mini-batch sampling
  std::function<void(const PtqProgress&)> on_progress;  // every `progress_interval` iterations
  int64_t progress_interval = 50;
  // Resumable reconstruction (ptq_checkpoint.h): when set, the state after every finished unit is
  // written to this file, and a run that finds it continues after the last unit it records. The
  // file must come from the same model, bits, calibration images and options (else an error).
  std::string checkpoint;
  bool write_checkpoint = true;  // false: only read it (all ranks of a multi-process run but one)
  // Called once when the reconstruction resumes from `checkpoint`.
  std::function<void(int phase, int64_t units_done, int64_t num_units)> on_resume;
};

// The reference's budget: 20000 weight iterations per unit at Adam lr 1e-3, 5000 activation ones.
PtqOptions brecq_reference_options();

struct PtqUnitResult {
  std::string name;                 // "layer1.0", "fc", ...
  std::vector<std::string> layers;  // its quantized layers
  // Mean reconstruction error (phase-1 loss without regularizer) over the calibration images,
  // with the weights rounded to nearest and with the learned rounding.
  double nearest_error = 0.0;
  double adaround_error = 0.0;
  // The learned rounding did worse than nearest rounding, which the unit then keeps.
  bool kept_nearest = false;
  double seconds = 0.0;  // both phases (of every run, when resumed)
};

struct PtqResult {
  std::vector<PtqUnitResult> units;
  double weight_seconds = 0.0, activation_seconds = 0.0;
};

// The spec's PTQ quantization options for `model` (4.2): unsigned affine per-channel MSE weights,
// learned activation step sizes at `act_bits`, the stem's input left real-valued and the
// classifier's input at 8 bits.
nn::QuantizeOptions ptq_quantize_options(const nn::Model& model, int act_bits);

// `layers`: quantize_model's result for `model` (PTQ scheme). `calibration_images`: [N, C, H, W]
// on the model's device, N >= 1. The model is left in eval mode with weights and (when
// reconstructed) activations quantized. Bad inputs (no images, a wrong image shape, layers that
// are not the model's or not PTQ-quantized, bad options) are InvalidArgument errors naming the
// value; a checkpoint that cannot be resumed is an error naming the file.
absl::StatusOr<PtqResult> reconstruct_ptq(nn::Model& model, const nn::QuantizedLayers& layers,
                                          const Tensor& calibration_images,
                                          const PtqOptions& options);

}  // namespace ompq::solver
