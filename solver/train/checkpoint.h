// Training checkpoints: one safetensors file holding the model ("model.<name>"), the optimizer
// state ("optimizer.<name>") and, as metadata, the number of finished epochs, the generator
// state, f16's loss scale and, mid-epoch, the epoch's running sums, so that a resumed run continues
// exactly and reports the epoch as an uninterrupted run does. Written atomically (temporary file +
// rename): a crash leaves the previous checkpoint intact. Data-parallel runs record their world
// size and per-rank batch size, so that a run resumed on another number of ranks finds its place in
// the epoch (resume_point()). Only rank 0 writes checkpoints; every rank loads the same file.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/random.h"
#include "core/safetensors.h"
#include "layers/module.h"
#include "layers/optim.h"
#include "solver/train/trainer.h"

namespace ompq::solver {

struct CheckpointState {
  int64_t epochs_done = 0;
  // Steps of epoch `epochs_done` already trained (a mid-epoch checkpoint); 0 at an epoch's end.
  int64_t steps_done = 0;
  uint64_t rng_seed = 0;
  uint64_t rng_offset = 0;
  // The layout that trained those steps: ranks and batch size per rank (0: not recorded, as in
  // checkpoints written before these fields, which resume at steps_done unchanged).
  int world_size = 1;
  int64_t batch_size = 0;
  // The sums over the `steps_done` steps (zero at an epoch's end, and in checkpoints written
  // before they were recorded).
  EpochTotals epoch_totals;
  // f16 training's loss scaling (nn::GradScaler's scale_value() and growth_tracker()); a scale
  // of 0: none.
  double loss_scale = 0.0;
  int64_t loss_scale_growth_tracker = 0;
};

absl::Status save_checkpoint(const std::string& path, const nn::Module& model,
                             const nn::Optimizer& optimizer, const CheckpointState& state);

// Restores model and optimizer from `path`; on error neither is modified.
absl::StatusOr<CheckpointState> load_checkpoint(const std::string& path, nn::Module& model,
                                                nn::Optimizer& optimizer);

// Where a run of `world_size` ranks with `batch_size` examples per rank and step resumes epoch
// state.epochs_done. The sampler deals the epoch's shuffled order to the ranks in turn (data/
// dataloader.h), so the checkpoint's run consumed a prefix of it: steps_done * batch_size *
// world_size examples. The new run resumes at the step that starts where that prefix ends, or,
// when it ends inside one of the new layout's steps, at that step (re-training at most one
// global batch less one example). `note` says what was recomputed; empty when nothing was.
struct ResumePoint {
  int64_t step = 0;
  std::string note;
};
ResumePoint resume_point(const CheckpointState& state, int world_size, int64_t batch_size);

// For the readers of checkpoint files (this one's and ptq_checkpoint.h's): the metadata "format"
// must be `format`, else an InvalidArgument error naming `path`, not an ompq `what`.
absl::Status check_checkpoint_format(const MetadataMap& metadata, const char* format,
                                     const char* what, const std::string& path);
// The metadata `key` as a number (an integer, or for a floating-point T any number absl::StrCat or
// "%.17g" writes); a DataLoss error naming `path` and `key` when it is missing or not a number.
template <typename T>
absl::StatusOr<T> checkpoint_metadata_number(const MetadataMap& metadata, const char* key,
                                             const std::string& path) {
  auto it = metadata.find(key);
  T value{};
  bool parsed = false;
  if (it != metadata.end()) {
    if constexpr (std::is_floating_point_v<T>) {
      parsed = absl::SimpleAtod(it->second, &value);
    } else {
      parsed = absl::SimpleAtoi(it->second, &value);
    }
  }
  if (!parsed) {
    return absl::DataLossError(
        absl::StrCat(path, ": checkpoint metadata \"", key, "\" is missing or not a number"));
  }
  return value;
}

}  // namespace ompq::solver
