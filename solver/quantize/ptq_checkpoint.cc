#include "solver/quantize/ptq_checkpoint.h"

#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/autograd.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "solver/train/checkpoint.h"

namespace ompq::solver {
namespace {

constexpr char kFormat[] = "ompq-ptq-checkpoint-1";
constexpr char kModelPrefix[] = "model.";
constexpr char kRoundingPrefix[] = "rounding.";
constexpr char kNearestError[] = "unit.nearest_error";
constexpr char kAdaroundError[] = "unit.adaround_error";
constexpr char kSeconds[] = "unit.seconds";
constexpr char kKeptNearest[] = "unit.kept_nearest";
constexpr char kPhaseSeconds[] = "phase_seconds";

// 64-bit FNV-1a, fed tensor by tensor.
class Checksum {
 public:
  void add(const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) hash_ = (hash_ ^ p[i]) * 0x100000001b3ull;
  }
  void add(const std::string& text) { add(text.data(), text.size() + 1); }
  void add(const Tensor& t) {
    const Tensor cpu = t.detach().to(Device::cpu()).contiguous();
    add(std::string(dtype_name(cpu.dtype())));
    add(shape_str(cpu.shape()));
    add(cpu.data_ptr(), cpu.nbytes());
  }
  std::string hex() const { return absl::StrFormat("%016x", hash_); }

 private:
  uint64_t hash_ = 0xcbf29ce484222325ull;
};

std::string exact(double value) { return absl::StrFormat("%.17g", value); }

std::string bits_label(const nn::QuantizedLayer& layer) {
  const nn::ActivationQuantizer* input = layer.input_quantizer();
  return absl::StrCat("w", layer.weight_quantizer().spec().bits, "a",
                      input != nullptr ? absl::StrCat(input->spec().bits) : "float");
}

// The first difference between a checkpoint's identity and this run's, as "key: A there, B
// here" (for lists, their first differing entries); empty when they match.
std::string identity_difference(const MetadataMap& metadata, const PtqIdentity& identity) {
  for (const auto& [key, ours] : identity) {
    auto it = metadata.find(key);
    if (it == metadata.end()) return absl::StrCat(key, ": missing there, ", ours, " here");
    if (it->second == ours) continue;
    const std::vector<std::string> a = absl::StrSplit(it->second, ','),
                                   b = absl::StrSplit(ours, ',');
    size_t i = 0;
    while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
    return absl::StrCat(key, ": ", i < a.size() ? a[i] : "(none)", " there, ",
                        i < b.size() ? b[i] : "(none)", " here");
  }
  return "";
}

}  // namespace

PtqIdentity ptq_identity(const nn::Model& model, const std::vector<ReconstructionUnit>& units,
                         const Tensor& images, const PtqOptions& o) {
  std::vector<std::string> unit_names, layer_bits;
  for (const ReconstructionUnit& unit : units) {
    unit_names.push_back(unit.name);
    for (const auto& [name, layer] : unit.layers) {
      layer_bits.push_back(absl::StrCat(name, ":", bits_label(*layer)));
    }
  }
  Checksum weights;
  for (const auto& [name, t] : model.state_dict()) {
    weights.add(name);
    weights.add(t);
  }
  Checksum calibration;
  calibration.add(images);
  return {{"weight_iterations", absl::StrCat(o.weight_iterations)},
          {"activation_iterations", absl::StrCat(o.activation_iterations)},
          {"batch_size", absl::StrCat(o.batch_size)},
          {"weight_lr", exact(o.weight_lr)},
          {"activation_lr", exact(o.activation_lr)},
          {"rounding_loss_weight", exact(o.rounding_loss_weight)},
          {"warmup", exact(o.warmup)},
          {"beta", absl::StrCat(exact(o.beta_start), " to ", exact(o.beta_end))},
          {"activation_p", exact(o.activation_p)},
          {"reconstruct_activations", o.reconstruct_activations ? "true" : "false"},
          {"init_images", absl::StrCat(o.init_images)},
          {"seed", absl::StrCat(o.seed)},
          {"units", absl::StrJoin(unit_names, ",")},
          {"layer_bits", absl::StrJoin(layer_bits, ",")},
          {"model_checksum", weights.hex()},
          {"calibration_images",  // no commas: one entry of the list comparison
           absl::StrCat(absl::StrJoin(images.shape(), "x"), " ", dtype_name(images.dtype()),
                        " checksum ", calibration.hex())}};
}

absl::Status save_ptq_checkpoint(const std::string& path, const nn::Model& model,
                                 const nn::QuantizedLayers& layers, const PtqIdentity& identity,
                                 const PtqCheckpoint& state) {
  TensorMap tensors;
  for (const auto& [name, t] : model.state_dict()) tensors[kModelPrefix + name] = t;
  for (const auto& [name, layer] : layers) {
    const nn::WeightQuantizer& q = layer->weight_quantizer();
    if (q.adaptive_rounding()) tensors[kRoundingPrefix + name] = q.rounding_variables();
  }
  const std::vector<PtqUnitResult>& units = state.result.units;
  const int64_t n = static_cast<int64_t>(units.size());
  std::vector<double> nearest, adaround, seconds;
  std::vector<int64_t> kept;
  for (const PtqUnitResult& u : units) {
    nearest.push_back(u.nearest_error);
    adaround.push_back(u.adaround_error);
    seconds.push_back(u.seconds);
    kept.push_back(u.kept_nearest);
  }
  tensors[kNearestError] = Tensor::from_vector<double>(nearest, {n});
  tensors[kAdaroundError] = Tensor::from_vector<double>(adaround, {n});
  tensors[kSeconds] = Tensor::from_vector<double>(seconds, {n});
  tensors[kKeptNearest] = Tensor::from_vector<int64_t>(kept, {n});
  tensors[kPhaseSeconds] = Tensor::from_vector<double>(
      {state.result.weight_seconds, state.result.activation_seconds}, {2});
  MetadataMap metadata(identity.begin(), identity.end());
  metadata["format"] = kFormat;
  metadata["phase"] = absl::StrCat(state.phase);
  metadata["units_done"] = absl::StrCat(state.units_done);
  return save_safetensors(path, tensors, metadata);
}

absl::Status load_ptq_checkpoint(const std::string& path, nn::Model& model,
                                 const nn::QuantizedLayers& layers, const PtqIdentity& identity,
                                 PtqCheckpoint* state) {
  OMPQ_ASSIGN_OR_RETURN(SafetensorsContents contents, load_safetensors(path));
  const MetadataMap& metadata = contents.metadata;
  OMPQ_RETURN_IF_ERROR(check_checkpoint_format(metadata, kFormat, "PTQ checkpoint", path));
  if (const std::string difference = identity_difference(metadata, identity); !difference.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is the checkpoint of another PTQ reconstruction (", difference,
                     "); delete it to start this one"));
  }
  const int64_t num_units = static_cast<int64_t>(state->result.units.size());
  OMPQ_ASSIGN_OR_RETURN(const int phase, checkpoint_metadata_number<int>(metadata, "phase", path));
  OMPQ_ASSIGN_OR_RETURN(const int64_t units_done,
                        checkpoint_metadata_number<int64_t>(metadata, "units_done", path));
  if ((phase != 1 && phase != 2) || units_done < 0 || units_done > num_units) {
    return absl::DataLossError(absl::StrCat(path, ": phase ", phase, " with ", units_done,
                                            " units done (expected phase 1 or 2 and 0..", num_units,
                                            " units)"));
  }

  std::map<std::string, std::shared_ptr<nn::QuantizedLayer>> by_name(layers.begin(), layers.end());
  TensorMap model_state, rounding;
  std::map<std::string, Tensor> results;
  for (const auto& [name, t] : contents.tensors) {
    if (absl::StartsWith(name, kModelPrefix)) {
      model_state[name.substr(sizeof(kModelPrefix) - 1)] = t;
      continue;
    }
    if (absl::StartsWith(name, kRoundingPrefix)) {
      const std::string layer = name.substr(sizeof(kRoundingPrefix) - 1);
      auto it = by_name.find(layer);
      if (it == by_name.end()) {
        return absl::DataLossError(
            absl::StrCat(path, ": rounding variables of \"", layer, "\", not a quantized layer"));
      }
      const Shape weight = it->second->weight_and_bias().weight.shape();
      if (t.shape() != weight || !is_floating(t.dtype())) {
        return absl::DataLossError(absl::StrCat(
            path, ": rounding variables of \"", layer, "\" are ", shape_str(t.shape()), " ",
            dtype_name(t.dtype()), " (expected floating ", shape_str(weight), ")"));
      }
      rounding[layer] = t;
      continue;
    }
    const bool per_unit =
        name == kNearestError || name == kAdaroundError || name == kSeconds || name == kKeptNearest;
    const Shape expected = per_unit ? Shape{num_units} : Shape{2};
    if (!per_unit && name != kPhaseSeconds) {
      return absl::DataLossError(absl::StrCat(path, ": unexpected tensor \"", name, "\""));
    }
    const DType dtype = name == kKeptNearest ? DType::kI64 : DType::kF64;
    if (t.shape() != expected || t.dtype() != dtype) {
      return absl::DataLossError(absl::StrCat(path, ": \"", name, "\" is ", shape_str(t.shape()),
                                              " ", dtype_name(t.dtype()), " (expected ",
                                              shape_str(expected), " ", dtype_name(dtype), ")"));
    }
    results[name] = t;
  }
  for (const char* name : {kNearestError, kAdaroundError, kSeconds, kKeptNearest, kPhaseSeconds}) {
    if (results.count(name) == 0) {
      return absl::DataLossError(absl::StrCat(path, ": missing tensor \"", name, "\""));
    }
  }

  absl::Status status = model.load_state_dict(model_state, /*strict=*/true);
  if (!status.ok()) return absl::Status(status.code(), absl::StrCat(path, ": ", status.message()));
  NoGradGuard no_grad;
  for (const auto& [name, layer] : layers) {
    nn::WeightQuantizer& q = layer->weight_quantizer();
    auto it = rounding.find(name);
    if (it == rounding.end()) {
      q.stop_adaptive_rounding();
      continue;
    }
    q.start_adaptive_rounding(layer->weight_and_bias().weight.detach());
    Tensor(q.rounding_variables()).copy_(it->second);
    q.set_rounding_hard(true);
  }
  const std::vector<double> nearest = results[kNearestError].to_vector<double>(),
                            adaround = results[kAdaroundError].to_vector<double>(),
                            seconds = results[kSeconds].to_vector<double>(),
                            phase_seconds = results[kPhaseSeconds].to_vector<double>();
  const std::vector<int64_t> kept = results[kKeptNearest].to_vector<int64_t>();
  for (int64_t i = 0; i < num_units; ++i) {
    PtqUnitResult& u = state->result.units[i];
    u.nearest_error = nearest[i];
    u.adaround_error = adaround[i];
    u.seconds = seconds[i];
    u.kept_nearest = kept[i] != 0;
  }
  state->result.weight_seconds = phase_seconds[0];
  state->result.activation_seconds = phase_seconds[1];
  state->phase = phase;
  state->units_done = units_done;
  return absl::OkStatus();
}

}  // namespace ompq::solver
