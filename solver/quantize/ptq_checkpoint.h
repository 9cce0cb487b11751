// The state of a BRECQ reconstruction (ptq.h) between two units: reconstruct_ptq writes it
// atomically after every unit it finishes, in either phase, and a rerun that finds it continues
// with the next unit, ending exactly as an uninterrupted run would (same seed, same threads). That
// takes nothing but the model: every unit's Adam state and mini-batch sampler start afresh from a
// seed fixed by the options and the unit's index, so the weights, the quantizers' ranges and
// learned activation steps (all in the model's state_dict), the rounding variables of the units
// already rounded, and the results so far are the whole state. The file (safetensors):
//   model.<name>       the model's state_dict
//   rounding.<layer>   AdaRound's rounding variables of each layer under (hard) adaptive rounding
//   unit.nearest_error, unit.adaround_error, unit.seconds (f64 [units]), unit.kept_nearest (i64)
//   phase_seconds      f64 [2]: the time spent in each phase so far
//   metadata           format, phase, units_done, and the reconstruction's identity
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "layers/models/model.h"
#include "layers/quant/quantize_model.h"
#include "solver/quantize/blocks.h"
#include "solver/quantize/ptq.h"

namespace ompq::solver {

// Where a reconstruction stands: `units_done` units finished phase `phase` (1: weights, 2:
// activation steps; phase 2 starts once every unit finished phase 1). `result` holds one entry per
// reconstructed unit, its numbers those of the finished ones.
struct PtqCheckpoint {
  int phase = 1;
  int64_t units_done = 0;
  PtqResult result;
};

// What a checkpoint must match to be resumed, as (key, value) pairs: the options that shape the
// result, the units and their layers' bits, and checksums of the model's state before the
// reconstruction and of the calibration images. Lists are comma-separated.
using PtqIdentity = std::vector<std::pair<std::string, std::string>>;

// The identity of reconstructing `units` of `model` (in its state before reconstruct_ptq changes
// it) from `images` with `options`.
PtqIdentity ptq_identity(const nn::Model& model, const std::vector<ReconstructionUnit>& units,
                         const Tensor& images, const PtqOptions& options);

absl::Status save_ptq_checkpoint(const std::string& path, const nn::Model& model,
                                 const nn::QuantizedLayers& layers, const PtqIdentity& identity,
                                 const PtqCheckpoint& state);

// Restores `model`'s state_dict and the adaptive rounding of `layers` from `path` and fills
// `state` (whose result must list the run's units) with its place and results. A checkpoint of
// another reconstruction (its identity differs) is a FailedPrecondition error naming the first
// difference; a damaged file is an error naming it. Everything is checked before the model or
// `state` is modified.
absl::Status load_ptq_checkpoint(const std::string& path, nn::Model& model,
                                 const nn::QuantizedLayers& layers, const PtqIdentity& identity,
                                 PtqCheckpoint* state);

}  // namespace ompq::solver
