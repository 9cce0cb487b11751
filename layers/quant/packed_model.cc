#include "layers/quant/packed_model.h"

#include <array>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/autograd.h"
#include "core/ops/integer.h"
#include "core/ops/quant_math.h"
#include "layers/quant/quantize_model.h"

namespace ompq::nn {
namespace {

using json = nlohmann::json;

constexpr char kFormatKey[] = "ompq.format";
// v2: conv weights packed in (kh, kw, C/groups) order (ops::pack_weight_codes); v1 packed them in
// the weight's own (C/groups, kh, kw) order, which v2 would misread, so v1 files are refused.
constexpr char kFormat[] = "packed-v2";
constexpr char kFormatV1[] = "packed-v1";
constexpr char kLayersKey[] = "ompq.layers";

// Codes per output channel.
int64_t row_length(const Shape& weight_shape) {
  int64_t k = 1;
  for (size_t d = 1; d < weight_shape.size(); ++d) k *= weight_shape[d];
  return k;
}

Tensor f32_copy(const Tensor& t) {
  return t.defined() ? t.detach().to(Device::cpu()).to(DType::kF32).contiguous().clone() : Tensor();
}

// The spec's description (its tensors travel separately).
json spec_json(const QuantSpec& spec, bool with_granularity) {
  json j = {{"bits", spec.bits}, {"signed", spec.is_signed}, {"symmetric", spec.symmetric}};
  if (with_granularity) j["per_channel"] = spec.axis.has_value();
  return j;
}

json layer_json(const PackedLayer& layer) {
  const bool conv = layer.kind == QuantizableLayer::Kind::kConv2d;
  json j = {{"name", layer.name},
            {"kind", conv ? "conv2d" : "linear"},
            {"weight_shape", layer.weight_shape},
            {"weight", spec_json(layer.weight, true)},
            {"input", layer.input ? spec_json(*layer.input, false) : json(nullptr)},
            {"folded_batch_norm", layer.folded_batch_norm}};
  if (conv) {
    j["stride"] = layer.params.stride;
    j["padding"] = layer.params.padding;
    j["dilation"] = layer.params.dilation;
    j["groups"] = layer.params.groups;
  }
  return j;
}

// Reads a tensor of a layer from the file's map, checking its dtype and shape.
absl::StatusOr<Tensor> take(const TensorMap& tensors, const std::string& path,
                            const std::string& name, DType dtype, const Shape& shape) {
  auto it = tensors.find(name);
  if (it == tensors.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "': packed model lacks tensor \"", name, "\""));
  }
  if (it->second.dtype() != dtype || it->second.shape() != shape) {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "': tensor \"", name, "\" is ",
                                                   dtype_name(it->second.dtype()), " ",
                                                   shape_str(it->second.shape()), " (expected ",
                                                   dtype_name(dtype), " ", shape_str(shape), ")"));
  }
  return it->second;
}

QuantSpec spec_from_json(const json& j, std::optional<int64_t> axis) {
  QuantSpec spec;
  spec.bits = j.at("bits").get<int>();
  spec.is_signed = j.at("signed").get<bool>();
  spec.symmetric = j.at("symmetric").get<bool>();
  spec.axis = axis;
  check_spec(spec, "load_packed");
  return spec;
}

// One layer from its metadata entry and the file's tensors; adds the names it reads to `used`.
absl::StatusOr<PackedLayer> read_layer(const json& j, const TensorMap& tensors,
                                       const std::string& path, std::set<std::string>* used) {
  PackedLayer layer;
  layer.name = j.at("name").get<std::string>();
  const std::string kind = j.at("kind").get<std::string>();
  if (kind != "conv2d" && kind != "linear") {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "': layer \"", layer.name,
                                                   "\" has kind \"", kind,
                                                   "\" (expected conv2d or linear)"));
  }
  layer.kind = kind == "conv2d" ? QuantizableLayer::Kind::kConv2d : QuantizableLayer::Kind::kLinear;
  layer.weight_shape = j.at("weight_shape").get<Shape>();
  const size_t rank = layer.kind == QuantizableLayer::Kind::kConv2d ? 4 : 2;
  if (layer.weight_shape.size() != rank || shape_numel(layer.weight_shape) <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "': layer \"", layer.name,
                                                   "\" has weight shape ",
                                                   shape_str(layer.weight_shape)));
  }
  if (layer.kind == QuantizableLayer::Kind::kConv2d) {
    layer.params.stride = j.at("stride").get<std::array<int64_t, 2>>();
    layer.params.padding = j.at("padding").get<std::array<int64_t, 2>>();
    layer.params.dilation = j.at("dilation").get<std::array<int64_t, 2>>();
    layer.params.groups = j.at("groups").get<int64_t>();
  }
  const int64_t out = layer.weight_shape[0];
  const json& w = j.at("weight");
  layer.weight =
      spec_from_json(w, w.at("per_channel").get<bool>() ? std::optional<int64_t>(0) : std::nullopt);
  const Shape scale_shape = layer.weight.axis ? Shape{out} : Shape{};
  auto get = [&](const std::string& suffix, DType dtype, const Shape& shape) {
    const std::string name = absl::StrCat(layer.name, ".", suffix);
    used->insert(name);
    return take(tensors, path, name, dtype, shape);
  };
  OMPQ_ASSIGN_OR_RETURN(
      layer.packed_weight,
      get("weight_packed", DType::kU8,
          {out, packed_row_bytes(row_length(layer.weight_shape), layer.weight.bits)}));
  OMPQ_ASSIGN_OR_RETURN(layer.weight.scale, get("weight_scale", DType::kF32, scale_shape));
  if (!layer.weight.symmetric) {
    OMPQ_ASSIGN_OR_RETURN(layer.weight.zero_point,
                          get("weight_zero_point", DType::kF32, scale_shape));
  }
  if (tensors.count(absl::StrCat(layer.name, ".bias")) > 0) {
    OMPQ_ASSIGN_OR_RETURN(layer.bias, get("bias", DType::kF32, {out}));
  }
  if (!j.at("input").is_null()) {
    QuantSpec input = spec_from_json(j.at("input"), std::nullopt);
    OMPQ_ASSIGN_OR_RETURN(input.scale, get("input_scale", DType::kF32, {}));
    if (!input.symmetric) {
      OMPQ_ASSIGN_OR_RETURN(input.zero_point, get("input_zero_point", DType::kF32, {}));
    }
    layer.input = input;
  }
  layer.folded_batch_norm = j.at("folded_batch_norm").get<std::string>();
  return layer;
}

}  // namespace

bool is_packed_state(const std::string& name, const std::vector<PackedLayer>& layers) {
  auto under = [&](const std::string& module) {
    return !module.empty() && absl::StartsWith(name, absl::StrCat(module, "."));
  };
  for (const PackedLayer& layer : layers) {
    if (under(layer.name) || under(layer.folded_batch_norm)) return true;
  }
  return false;
}

Tensor PackedLayer::weight_codes() const {
  const DType dtype = weight.is_signed ? DType::kI8 : DType::kU8;
  return ops::unpack_weight_codes(packed_weight, weight_shape, weight.bits, weight.qmin(), dtype);
}

Tensor PackedLayer::dequantized_weight() const { return dequantize(weight_codes(), weight); }

PackedModel pack_model(const Model& model) {
  NoGradGuard no_grad;
  const QuantizedLayers quantized = quantized_layers(model);
  OMPQ_CHECK(!quantized.empty(),
             "pack_model: the model has no quantized layer (run "
             "quantize_model first)");
  std::map<const Module*, std::string> module_names;
  std::map<std::string, std::shared_ptr<Module>> modules;
  for (const auto& [name, module] : model.named_modules()) {
    module_names[module.get()] = name;
    modules[name] = module;
  }
  PackedModel packed;
  for (const auto& [name, q] : quantized) {
    PackedLayer layer;
    layer.name = name;
    const std::shared_ptr<Module>& module = modules.at(name);
    if (auto conv = std::dynamic_pointer_cast<Conv2d>(module)) {
      layer.kind = QuantizableLayer::Kind::kConv2d;
      layer.params = conv->params();
    } else {
      layer.kind = QuantizableLayer::Kind::kLinear;
    }
    WeightQuantizer& wq = q->weight_quantizer();
    OMPQ_CHECK(wq.enabled(), "pack_model: layer \"", name, "\" has weight quantization disabled");
    const FoldedWeights folded = q->weight_and_bias();
    layer.weight_shape = folded.weight.shape();
    const Tensor weight = wq.forward(folded.weight);  // on the quantizer's grid
    layer.weight = wq.spec();
    layer.weight.scale = f32_copy(layer.weight.scale);
    layer.weight.zero_point = f32_copy(layer.weight.zero_point);
    // The grid values' codes: round((q - z) * s / s) + z recovers q exactly.
    const Tensor codes = quantize(weight, layer.weight);
    layer.packed_weight =
        ops::pack_weight_codes(codes.to(Device::cpu()), layer.weight.bits, layer.weight.qmin());
    layer.bias = f32_copy(folded.bias);
    if (ActivationQuantizer* iq = q->input_quantizer()) {
      OMPQ_CHECK(iq->enabled(), "pack_model: layer \"", name, "\" has input quantization disabled");
      OMPQ_CHECK(iq->spec().scale.item<float>() > 0, "pack_model: the input quantizer of layer \"",
                 name, "\" has seen no data (calibrate the model before exporting)");
      QuantSpec input = iq->spec();
      input.scale = f32_copy(input.scale);
      input.zero_point = f32_copy(input.zero_point);
      layer.input = input;
    }
    if (const auto& bn = q->folded_batch_norm()) {
      layer.folded_batch_norm = module_names.at(bn.get());
    }
    packed.layers.push_back(std::move(layer));
  }
  for (const auto& [name, t] : model.state_dict()) {
    if (!is_packed_state(name, packed.layers)) {
      packed.float_state.emplace(name, t.detach().to(Device::cpu()).clone());
    }
  }
  return packed;
}

absl::Status save_packed(const std::string& path, const PackedModel& packed) {
  TensorMap tensors = packed.float_state;
  json layers = json::array();
  auto put = [&](const std::string& name, const Tensor& t) -> absl::Status {
    if (!tensors.emplace(name, t).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("save_packed: '", path, "': tensor name \"", name, "\" is used twice"));
    }
    return absl::OkStatus();
  };
  for (const PackedLayer& layer : packed.layers) {
    check_spec(layer.weight, "save_packed");
    OMPQ_RETURN_IF_ERROR(put(layer.name + ".weight_packed", layer.packed_weight));
    OMPQ_RETURN_IF_ERROR(put(layer.name + ".weight_scale", layer.weight.scale));
    if (!layer.weight.symmetric) {
      OMPQ_RETURN_IF_ERROR(put(layer.name + ".weight_zero_point", layer.weight.zero_point));
    }
    if (layer.bias.defined()) OMPQ_RETURN_IF_ERROR(put(layer.name + ".bias", layer.bias));
    if (layer.input) {
      OMPQ_RETURN_IF_ERROR(put(layer.name + ".input_scale", layer.input->scale));
      if (!layer.input->symmetric) {
        OMPQ_RETURN_IF_ERROR(put(layer.name + ".input_zero_point", layer.input->zero_point));
      }
    }
    layers.push_back(layer_json(layer));
  }
  return save_safetensors(path, tensors, {{kFormatKey, kFormat}, {kLayersKey, layers.dump()}});
}

absl::StatusOr<PackedModel> load_packed(const std::string& path) {
  OMPQ_ASSIGN_OR_RETURN(SafetensorsContents contents, load_safetensors(path));
  auto format = contents.metadata.find(kFormatKey);
  if (format != contents.metadata.end() && format->second == kFormatV1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", path, "': packed model of format \"", kFormatV1,
        "\" (conv weights in (C/groups, kh, kw) order), which this version no longer reads "
        "(expected \"",
        kFormat, "\": (kh, kw, C/groups) order); export the model again"));
  }
  if (format == contents.metadata.end() || format->second != kFormat) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "': not a packed model (metadata \"", kFormatKey, "\" is ",
                     format == contents.metadata.end() ? "missing" : "\"" + format->second + "\"",
                     ", expected \"", kFormat, "\")"));
  }
  auto layers_entry = contents.metadata.find(kLayersKey);
  if (layers_entry == contents.metadata.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "': packed model without \"", kLayersKey, "\" metadata"));
  }
  PackedModel packed;
  std::set<std::string> used;
  try {
    const json layers = json::parse(layers_entry->second);
    if (!layers.is_array()) throw std::runtime_error("expected a JSON array");
    for (const json& j : layers) {
      OMPQ_ASSIGN_OR_RETURN(PackedLayer layer, read_layer(j, contents.tensors, path, &used));
      packed.layers.push_back(std::move(layer));
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "': malformed \"", kLayersKey, "\" metadata: ", e.what()));
  }
  for (auto& [name, t] : contents.tensors) {
    if (used.count(name) == 0) packed.float_state.emplace(name, t);
  }
  return packed;
}

}  // namespace ompq::nn
