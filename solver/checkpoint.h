// Training checkpoints: one safetensors file holding the model ("model.<name>"), the optimizer
// state ("optimizer.<name>") and, as metadata, the number of finished epochs and the generator
// state, so that a resumed run continues exactly. Written atomically (temporary file + rename):
// a crash leaves the previous checkpoint intact.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "core/random.h"
#include "layers/module.h"
#include "layers/optim.h"

namespace ompq::solver {

struct CheckpointState {
  int64_t epochs_done = 0;
  // Steps of epoch `epochs_done` already trained (a mid-epoch checkpoint); 0 at an epoch's end.
  int64_t steps_done = 0;
  uint64_t rng_seed = 0;
  uint64_t rng_offset = 0;
};

absl::Status save_checkpoint(const std::string& path, const nn::Module& model,
                             const nn::Optimizer& optimizer, const CheckpointState& state);

// Restores model and optimizer from `path`; on error neither is modified.
absl::StatusOr<CheckpointState> load_checkpoint(const std::string& path, nn::Module& model,
                                                nn::Optimizer& optimizer);

}  // namespace ompq::solver
