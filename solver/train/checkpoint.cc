#include "solver/train/checkpoint.h"

#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/error.h"
#include "core/safetensors.h"

namespace ompq::solver {
namespace {

constexpr char kModelPrefix[] = "model.";
constexpr char kOptimizerPrefix[] = "optimizer.";
constexpr char kFormat[] = "ompq-checkpoint-1";

// The epoch's sums, as metadata. Doubles in 17 significant digits, which read back bit for bit.
void put_epoch_totals(const EpochTotals& totals, MetadataMap& metadata) {
  auto exact = [](double value) { return absl::StrFormat("%.17g", value); };
  metadata["epoch_loss_sum"] = exact(totals.loss_sum);
  metadata["epoch_top1_hits"] = absl::StrCat(totals.top1_hits);
  metadata["epoch_images"] = absl::StrCat(totals.images);
  metadata["epoch_steps"] = absl::StrCat(totals.steps);
  metadata["epoch_skipped_steps"] = absl::StrCat(totals.skipped_steps);
  metadata["epoch_seconds"] = exact(totals.seconds);
  metadata["epoch_data_wait_seconds"] = exact(totals.data_wait_seconds);
}

absl::StatusOr<EpochTotals> get_epoch_totals(const MetadataMap& metadata, const std::string& path) {
  EpochTotals totals;
  OMPQ_ASSIGN_OR_RETURN(totals.loss_sum,
                        checkpoint_metadata_number<double>(metadata, "epoch_loss_sum", path));
  OMPQ_ASSIGN_OR_RETURN(totals.top1_hits,
                        checkpoint_metadata_number<int64_t>(metadata, "epoch_top1_hits", path));
  OMPQ_ASSIGN_OR_RETURN(totals.images,
                        checkpoint_metadata_number<int64_t>(metadata, "epoch_images", path));
  OMPQ_ASSIGN_OR_RETURN(totals.steps,
                        checkpoint_metadata_number<int64_t>(metadata, "epoch_steps", path));
  OMPQ_ASSIGN_OR_RETURN(totals.skipped_steps,
                        checkpoint_metadata_number<int64_t>(metadata, "epoch_skipped_steps", path));
  OMPQ_ASSIGN_OR_RETURN(totals.seconds,
                        checkpoint_metadata_number<double>(metadata, "epoch_seconds", path));
  OMPQ_ASSIGN_OR_RETURN(totals.data_wait_seconds, checkpoint_metadata_number<double>(
                                                      metadata, "epoch_data_wait_seconds", path));
  if (totals.top1_hits < 0 || totals.images < totals.top1_hits || totals.steps < 0 ||
      totals.skipped_steps < 0 || totals.skipped_steps > totals.steps) {
    return absl::DataLossError(absl::StrCat(
        path, ": checkpoint epoch sums top1_hits ", totals.top1_hits, ", images ", totals.images,
        ", steps ", totals.steps, ", skipped_steps ", totals.skipped_steps,
        " (expected 0 <= top1_hits <= images and 0 <= skipped_steps <= steps)"));
  }
  return totals;
}

}  // namespace

absl::Status save_checkpoint(const std::string& path, const nn::Module& model,
                             const nn::Optimizer& optimizer, const CheckpointState& state) {
  TensorMap tensors;
  for (const auto& [name, t] : model.state_dict()) tensors[kModelPrefix + name] = t;
  for (const auto& [name, t] : optimizer.state_dict()) tensors[kOptimizerPrefix + name] = t;
  MetadataMap metadata = {{"format", kFormat},
                          {"epochs_done", absl::StrCat(state.epochs_done)},
                          {"steps_done", absl::StrCat(state.steps_done)},
                          {"world_size", absl::StrCat(state.world_size)},
                          {"batch_size", absl::StrCat(state.batch_size)},
                          {"rng_seed", absl::StrCat(state.rng_seed)},
                          {"rng_offset", absl::StrCat(state.rng_offset)}};
  if (state.steps_done > 0) put_epoch_totals(state.epoch_totals, metadata);
  if (state.loss_scale > 0) {
    metadata["loss_scale"] = absl::StrFormat("%.17g", state.loss_scale);
    metadata["loss_scale_growth_tracker"] = absl::StrCat(state.loss_scale_growth_tracker);
  }
  return save_safetensors(path, tensors, metadata);
}

absl::StatusOr<CheckpointState> load_checkpoint(const std::string& path, nn::Module& model,
                                                nn::Optimizer& optimizer) {
  OMPQ_ASSIGN_OR_RETURN(SafetensorsContents contents, load_safetensors(path));
  OMPQ_RETURN_IF_ERROR(check_checkpoint_format(contents.metadata, kFormat, "checkpoint", path));
  CheckpointState state;
  OMPQ_ASSIGN_OR_RETURN(state.epochs_done, checkpoint_metadata_number<int64_t>(
                                               contents.metadata, "epochs_done", path));
  if (contents.metadata.count("steps_done") > 0) {  // absent in end-of-epoch-only checkpoints
    OMPQ_ASSIGN_OR_RETURN(state.steps_done, checkpoint_metadata_number<int64_t>(
                                                contents.metadata, "steps_done", path));
  }
  // Absent in mid-epoch checkpoints written before the sums were kept.
  if (state.steps_done > 0 && contents.metadata.count("epoch_steps") > 0) {
    OMPQ_ASSIGN_OR_RETURN(state.epoch_totals, get_epoch_totals(contents.metadata, path));
  }
  if (contents.metadata.count("world_size") > 0) {  // absent before data-parallel training
    OMPQ_ASSIGN_OR_RETURN(state.world_size,
                          checkpoint_metadata_number<int>(contents.metadata, "world_size", path));
    OMPQ_ASSIGN_OR_RETURN(state.batch_size, checkpoint_metadata_number<int64_t>(
                                                contents.metadata, "batch_size", path));
    if (state.world_size < 1 || state.batch_size < 0) {
      return absl::DataLossError(absl::StrCat(path, ": checkpoint world_size ", state.world_size,
                                              " / batch_size ", state.batch_size,
                                              " (expected >= 1 and >= 0)"));
    }
  }
  if (contents.metadata.count("loss_scale") > 0) {  // f16 training only
    OMPQ_ASSIGN_OR_RETURN(state.loss_scale, checkpoint_metadata_number<double>(contents.metadata,
                                                                               "loss_scale", path));
    OMPQ_ASSIGN_OR_RETURN(
        state.loss_scale_growth_tracker,
        checkpoint_metadata_number<int64_t>(contents.metadata, "loss_scale_growth_tracker", path));
    if (!(std::isfinite(state.loss_scale) && state.loss_scale > 0) ||
        state.loss_scale_growth_tracker < 0) {
      return absl::DataLossError(absl::StrCat(
          path, ": checkpoint loss_scale ", state.loss_scale, " / loss_scale_growth_tracker ",
          state.loss_scale_growth_tracker, " (expected finite and > 0, and >= 0)"));
    }
  }
  OMPQ_ASSIGN_OR_RETURN(state.rng_seed,
                        checkpoint_metadata_number<uint64_t>(contents.metadata, "rng_seed", path));
  OMPQ_ASSIGN_OR_RETURN(state.rng_offset, checkpoint_metadata_number<uint64_t>(contents.metadata,
                                                                               "rng_offset", path));
  TensorMap model_state, optimizer_state;
  for (const auto& [name, t] : contents.tensors) {
    if (absl::StartsWith(name, kModelPrefix)) {
      model_state[name.substr(sizeof(kModelPrefix) - 1)] = t;
    } else if (absl::StartsWith(name, kOptimizerPrefix)) {
      optimizer_state[name.substr(sizeof(kOptimizerPrefix) - 1)] = t;
    } else {
      return absl::DataLossError(absl::StrCat(path, ": unexpected tensor \"", name, "\""));
    }
  }
  // Validate both before changing either: a model loaded with a stale optimizer would be wrong.
  // (Each load is all or nothing; the optimizer's is checked first, so that it cannot fail after
  // the model has changed, as fuzzing found it did.)
  absl::Status status = optimizer.check_state_dict(optimizer_state);
  if (status.ok()) status = model.load_state_dict(model_state, /*strict=*/true);
  if (status.ok()) status = optimizer.load_state_dict(optimizer_state);
  if (!status.ok()) return absl::Status(status.code(), absl::StrCat(path, ": ", status.message()));
  return state;
}

absl::Status check_checkpoint_format(const MetadataMap& metadata, const char* format,
                                     const char* what, const std::string& path) {
  auto it = metadata.find("format");
  if (it == metadata.end() || it->second != format) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not an ompq ", what, " (metadata \"format\" is not ", format, ")"));
  }
  return absl::OkStatus();
}

ResumePoint resume_point(const CheckpointState& state, int world_size, int64_t batch_size) {
  OMPQ_CHECK(world_size >= 1 && batch_size >= 1, "resume_point: world_size ", world_size,
             " and batch_size ", batch_size, " must be positive");
  ResumePoint point;
  if (state.steps_done == 0 || state.batch_size == 0 ||
      (state.world_size == world_size && state.batch_size == batch_size)) {
    point.step = state.steps_done;
    return point;
  }
  const int64_t consumed = state.steps_done * state.batch_size * state.world_size;
  const int64_t global_batch = batch_size * world_size;
  point.step = consumed / global_batch;
  point.note =
      absl::StrCat("the checkpoint was written by ", state.world_size, " rank(s) x batch ",
                   state.batch_size, " after step ", state.steps_done, " of epoch ",
                   state.epochs_done + 1, " (", consumed, " examples); this run has ", world_size,
                   " rank(s) x batch ", batch_size, ", so it resumes that epoch at step ",
                   point.step, " (example ", point.step * global_batch, ")");
  if (consumed % global_batch != 0) {
    absl::StrAppend(&point.note, ", re-training ", consumed % global_batch,
                    " examples that do not fill a step of the new layout");
  }
  return point;
}

}  // namespace ompq::solver
