#include "solver/checkpoint.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/error.h"
#include "core/safetensors.h"

namespace ompq::solver {
namespace {

constexpr char kModelPrefix[] = "model.";
constexpr char kOptimizerPrefix[] = "optimizer.";
constexpr char kFormat[] = "ompq-checkpoint-1";

template <typename T>
absl::StatusOr<T> metadata_number(const MetadataMap& metadata, const char* key,
                                  const std::string& path) {
  auto it = metadata.find(key);
  T value{};
  if (it == metadata.end() || !absl::SimpleAtoi(it->second, &value)) {
    return absl::DataLossError(
        absl::StrCat(path, ": checkpoint metadata \"", key, "\" is missing or not a number"));
  }
  return value;
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
                          {"rng_seed", absl::StrCat(state.rng_seed)},
                          {"rng_offset", absl::StrCat(state.rng_offset)}};
  return save_safetensors(path, tensors, metadata);
}

absl::StatusOr<CheckpointState> load_checkpoint(const std::string& path, nn::Module& model,
                                                nn::Optimizer& optimizer) {
  OMPQ_ASSIGN_OR_RETURN(SafetensorsContents contents, load_safetensors(path));
  auto format = contents.metadata.find("format");
  if (format == contents.metadata.end() || format->second != kFormat) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not an ompq checkpoint (metadata \"format\" is not ", kFormat, ")"));
  }
  CheckpointState state;
  OMPQ_ASSIGN_OR_RETURN(state.epochs_done,
                        metadata_number<int64_t>(contents.metadata, "epochs_done", path));
  if (contents.metadata.count("steps_done") > 0) {  // absent in end-of-epoch-only checkpoints
    OMPQ_ASSIGN_OR_RETURN(state.steps_done,
                          metadata_number<int64_t>(contents.metadata, "steps_done", path));
  }
  OMPQ_ASSIGN_OR_RETURN(state.rng_seed, metadata_number<uint64_t>(contents.metadata, "rng_seed", path));
  OMPQ_ASSIGN_OR_RETURN(state.rng_offset,
                        metadata_number<uint64_t>(contents.metadata, "rng_offset", path));
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
  absl::Status status = model.load_state_dict(model_state, /*strict=*/true);
  if (!status.ok()) return absl::Status(status.code(), absl::StrCat(path, ": ", status.message()));
  status = optimizer.load_state_dict(optimizer_state);
  if (!status.ok()) return absl::Status(status.code(), absl::StrCat(path, ": ", status.message()));
  return state;
}

}  // namespace ompq::solver
