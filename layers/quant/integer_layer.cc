#include "layers/quant/integer_layer.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/autograd.h"
#include "core/functional/conv.h"
#include "core/functional/linalg.h"
#include "core/ops/conv.h"
#include "core/ops/elementwise.h"
#include "core/ops/integer.h"
#include "core/ops/quant.h"
#include "core/ops/quant_math.h"
#include "layers/conv.h"
#include "layers/graph/graph.h"
#include "layers/linear.h"
#include "layers/norm.h"

namespace ompq::nn {

IntegerLayer::IntegerLayer(const PackedLayer& layer, IntegerKernels kernels)
    : kind_(layer.kind), params_(layer.params), bias_(layer.bias), input_(layer.input) {
  check_spec(layer.weight, "IntegerLayer");
  const int64_t out = layer.weight_shape[0];
  const Tensor codes = layer.weight_codes();
  if (!input_) {
    real_weight_ = layer.dequantized_weight();
    return;
  }
  check_spec(*input_, "IntegerLayer");
  codes_ = kind_ == QuantizableLayer::Kind::kLinear ? codes.view({out, -1}) : codes;
  if (!layer.weight.symmetric) {
    zero_points_ = layer.weight.zero_point.expand({out}).contiguous().to(DType::kI32);
  }
  multiplier_ = ops::mul(layer.weight.scale.expand({out}).contiguous(),
                         static_cast<double>(input_->scale.item<float>()));
  x_zero_point_ =
      input_->zero_point.defined() ? static_cast<int64_t>(input_->zero_point.item<float>()) : 0;
  if (kernels == IntegerKernels::kFastest && codes.device().is_cpu()) {
    cpu_conv_.emplace(int8_spec());
  }
}

namespace {

float zero_point_of(const QuantSpec& spec) {
  return spec.zero_point.defined() ? spec.zero_point.item<float>() : 0.0f;
}

}  // namespace

Int8Conv2dSpec IntegerLayer::int8_spec() const {
  Int8Conv2dSpec spec;
  spec.weight_codes =
      kind_ == QuantizableLayer::Kind::kLinear ? codes_.view({codes_.size(0), -1, 1, 1}) : codes_;
  spec.weight_zero_point = zero_points_;
  spec.params = params_;
  spec.multiplier = multiplier_;
  spec.offset = bias_;
  float output_unit = 1.0f;  // the real value of one output unit: a step of the codes written
  if (next_input_) {
    output_unit = next_input_->scale.item<float>();
    const float zero_point = zero_point_of(*next_input_);
    QuantRange range = next_input_->range();
    // quantize(relu(y)) = max(quantize(y), quantize(0)) and quantize(min(y, 6)) =
    // min(quantize(y), quantize(6)), since rounding is monotone.
    if (next_activation_ != NormActivation::kIdentity) {
      range.qmin = std::max<int64_t>(range.qmin, static_cast<int64_t>(zero_point));
    }
    if (next_activation_ == NormActivation::kRelu6) {
      range.qmax = std::min<int64_t>(
          range.qmax, static_cast<int64_t>(quantize_value<float>(6.0f, output_unit, zero_point,
                                                                 static_cast<float>(range.qmin),
                                                                 static_cast<float>(range.qmax))));
    }
    spec.multiplier = ops::div(multiplier_, static_cast<double>(output_unit));
    if (bias_.defined()) spec.offset = ops::div(bias_, static_cast<double>(output_unit));
    spec.output = Int8OutputCodes{static_cast<int64_t>(zero_point), range};
  }
  if (shortcut_) {
    spec.residual =
        Int8Residual{code_dtype(shortcut_->range()), shortcut_->scale.item<float>() / output_unit,
                     static_cast<int64_t>(zero_point_of(*shortcut_))};
  }
  return spec;
}

bool IntegerLayer::can_write_codes() const {
  return cpu_conv_.has_value() && kind_ == QuantizableLayer::Kind::kConv2d;
}

void IntegerLayer::write_next_input_codes(const QuantSpec& next_input, NormActivation activation) {
  OMPQ_CHECK(can_write_codes(),
             "IntegerLayer::write_next_input_codes: the layer is not a conv with a quantized "
             "input on the CPU int8 path");
  check_spec(next_input, "IntegerLayer::write_next_input_codes");
  next_input_ = next_input;
  next_activation_ = activation;
  cpu_conv_.emplace(int8_spec());
}

void IntegerLayer::add_shortcut_of(IntegerLayer& source) {
  OMPQ_CHECK(can_write_codes() && source.can_write_codes(),
             "IntegerLayer::add_shortcut_of: the layer and the shortcut's source must both be "
             "convs with a quantized input on the CPU int8 path");
  if (!source.input_codes_out_) source.input_codes_out_ = std::make_shared<Tensor>();
  shortcut_in_ = source.input_codes_out_;
  shortcut_ = *source.input_;
  cpu_conv_.emplace(int8_spec());
}

namespace {

// Per-tensor input codes in x's memory layout: a channels_last activation is quantized as the
// NHWC array it is, so the convolution reads it without a copy.
Tensor quantize_in_layout(const Tensor& x, const QuantSpec& spec) {
  if (x.dim() != 4 || x.is_contiguous() || !is_channels_last(x)) return quantize(x, spec);
  return quantize(x.permute({0, 2, 3, 1}), spec).permute({0, 3, 1, 2});
}

}  // namespace

Tensor IntegerLayer::forward(const Tensor& x) {
  NoGradGuard no_grad;
  const bool conv = kind_ == QuantizableLayer::Kind::kConv2d;
  if (!input_)
    return conv ? conv2d(x, real_weight_, bias_, params_) : linear(x, real_weight_, bias_);
  const bool x_is_codes = x.dtype() == DType::kI8 || x.dtype() == DType::kU8;
  OMPQ_CHECK(!x_is_codes || (cpu_conv_ && conv && x.device().is_cpu()),
             "IntegerLayer: input codes of dtype ", dtype_name(x.dtype()),
             " need a conv with a quantized input on the CPU int8 path (expected a real input)");
  OMPQ_CHECK((!next_input_ && !shortcut_ && !input_codes_out_) || x.device().is_cpu(),
             "IntegerLayer: a layer that writes the next layer's codes or shares a shortcut runs "
             "on the CPU only (input on ",
             x.device().str(), ")");
  if (cpu_conv_ && x.device().is_cpu()) {
    if (conv) {
      const Tensor codes = x_is_codes ? x : quantize_in_layout(x, *input_);
      if (input_codes_out_) *input_codes_out_ = codes;
      Tensor shortcut;
      if (shortcut_in_) {
        shortcut = std::exchange(*shortcut_in_, Tensor());
        OMPQ_CHECK(shortcut.defined(),
                   "IntegerLayer: the layer whose input codes are this layer's shortcut has not "
                   "run since this layer last ran (expected it earlier in the forward pass)");
      }
      return cpu_conv_->forward(codes, x_zero_point_, shortcut);
    }
    const Tensor rows = x.reshape({-1, x.size(-1)});
    const Tensor out = cpu_conv_->forward(
        quantize(rows, *input_).view({rows.size(0), rows.size(1), 1, 1}), x_zero_point_);
    Shape out_shape(x.shape().begin(), x.shape().end() - 1);
    out_shape.push_back(codes_.size(0));
    return out.view(out_shape);
  }
  const Tensor x_codes = quantize(x, *input_);
  if (conv) {
    const Tensor acc = ops::int_conv2d(x_codes, x_zero_point_, codes_, zero_points_, params_);
    return ops::dequantize(acc, multiplier_, Tensor(), 1, bias_);
  }
  const Shape lead(x.shape().begin(), x.shape().end() - 1);
  const Tensor acc =
      ops::int_linear(x_codes.reshape({-1, x.size(-1)}), x_zero_point_, codes_, zero_points_);
  Shape out_shape = lead;
  out_shape.push_back(codes_.size(0));
  return ops::dequantize(acc, multiplier_, Tensor(), 1, bias_).view(out_shape);
}

namespace {

// Checks that `module` is the layer `layer` was exported from.
absl::Status check_layer(const PackedLayer& layer, const std::shared_ptr<Module>& module) {
  auto mismatch = [&](const std::string& what) {
    return absl::InvalidArgumentError(
        absl::StrCat("load_integer_model: layer \"", layer.name, "\" ", what));
  };
  if (!module) return mismatch("is not in the model");
  Shape shape;
  if (layer.kind == QuantizableLayer::Kind::kConv2d) {
    auto conv = std::dynamic_pointer_cast<Conv2d>(module);
    if (!conv) return mismatch("is not a Conv2d in the model");
    if (conv->replacement()) return mismatch("is already replaced");
    const Conv2dParams& p = conv->params();
    if (p.stride != layer.params.stride || p.padding != layer.params.padding ||
        p.dilation != layer.params.dilation || p.groups != layer.params.groups) {
      return mismatch("has a different stride, padding, dilation or groups in the model");
    }
    shape = conv->weight().shape();
  } else {
    auto fc = std::dynamic_pointer_cast<Linear>(module);
    if (!fc) return mismatch("is not a Linear in the model");
    if (fc->replacement()) return mismatch("is already replaced");
    shape = fc->weight().shape();
  }
  if (shape != layer.weight_shape) {
    return mismatch(absl::StrCat("has weight shape ", shape_str(shape), " in the model but ",
                                 shape_str(layer.weight_shape), " in the packed model"));
  }
  return absl::OkStatus();
}

// A packed conv whose output packed convs' input quantizers (all of one quantization) read as
// codes.
struct CodesLink {
  size_t producer = 0;  // index into PackedModel::layers
  size_t reader = 0;    // one of the readers: whose input quantization the codes have
  NormActivation activation = NormActivation::kIdentity;
};

// A packed conv (adder) whose fused residual add's shortcut is another packed conv's (source's)
// input, quantized by it earlier in the forward pass.
struct ShortcutLink {
  size_t adder = 0;
  size_t source = 0;
};

struct IntegerLinks {
  std::vector<ShortcutLink> shortcuts;
  std::vector<CodesLink> codes;
};

// Where a packed conv's output goes through the fused batch norm call after it: the value the call
// returns, its activation, and its residual add node (-1: none).
struct FusedOutput {
  graph::ValueId value = -1;
  NormActivation activation = NormActivation::kIdentity;
  graph::NodeId add = -1;
};

// The conv's output through its folded batch norm (or none) and that call's own residual add and
// ReLU/ReLU6 (either may be absent); nullopt when the batch norm is not the folded one, or an
// activation of a module of its own follows (it would apply itself to codes).
std::optional<FusedOutput> fused_output(const graph::Graph& g, const graph::Layer& traced,
                                        const std::string& folded) {
  FusedOutput out;
  if (folded.empty() || traced.batch_norm == -1) {
    if (!folded.empty() || traced.batch_norm != -1 || traced.activation != -1) return std::nullopt;
    out.value = g.nodes[traced.node].output;
    return out;
  }
  const graph::Node& bn = g.nodes[traced.batch_norm];
  if (bn.module != folded) return std::nullopt;
  out.value = bn.output;
  const graph::NodeId add = g.sole_consumer(out.value);
  if (add != -1 && g.nodes[add].kind == graph::OpKind::kAdd && g.nodes[add].call == bn.call &&
      g.nodes[add].inputs.size() == 2 && g.nodes[add].inputs[0] == out.value) {
    out.add = add;
    out.value = g.nodes[add].output;
  }
  const graph::NodeId activation = g.sole_consumer(out.value);
  if (activation != -1 && g.nodes[activation].call == bn.call &&
      (g.nodes[activation].kind == graph::OpKind::kRelu ||
       g.nodes[activation].kind == graph::OpKind::kRelu6)) {
    out.activation = g.nodes[activation].kind == graph::OpKind::kRelu6 ? NormActivation::kRelu6
                                                                       : NormActivation::kRelu;
    out.value = g.nodes[activation].output;
  }
  return out;
}

bool same_quantization(const QuantSpec& a, const QuantSpec& b) {
  return a.bits == b.bits && a.is_signed == b.is_signed && a.symmetric == b.symmetric &&
         a.scale.item<float>() == b.scale.item<float>() && zero_point_of(a) == zero_point_of(b);
}

// Reads the links off the traced graph (see the header). A model without an input shape cannot
// be traced and has no links.
IntegerLinks find_links(const Model& model, const PackedModel& packed,
                        const std::vector<std::shared_ptr<IntegerLayer>>& layers) {
  IntegerLinks links;
  if (model.input_shape().empty()) return links;
  const graph::Graph g = graph::trace(model, model.input_shape());
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < packed.layers.size(); ++i) index[packed.layers[i].name] = i;
  // The packed layer of a conv node that can take codes (a quantized input on the CPU int8 path).
  auto code_reader = [&](graph::NodeId node) -> std::optional<size_t> {
    if (g.nodes[node].kind != graph::OpKind::kConv2d) return std::nullopt;
    const auto it = index.find(g.nodes[node].module);
    if (it == index.end() || !layers[it->second]->can_write_codes()) return std::nullopt;
    return it->second;
  };
  struct Candidate {
    size_t layer;
    graph::NodeId node;  // the conv's
    FusedOutput out;
  };
  std::vector<Candidate> candidates;
  for (const graph::Layer& traced : g.layers()) {
    const auto layer = index.find(traced.name);
    if (layer == index.end() || !layers[layer->second]->can_write_codes()) continue;
    const auto out = fused_output(g, traced, packed.layers[layer->second].folded_batch_norm);
    if (out) candidates.push_back({layer->second, traced.node, *out});
  }
  // Residual adds whose shortcut a packed conv running before the adder quantizes as its input.
  std::set<graph::NodeId> adds_in_producer;
  for (const Candidate& c : candidates) {
    if (c.out.add == -1) continue;
    const graph::ValueId shortcut = g.nodes[c.out.add].inputs[1];
    for (graph::NodeId reader : g.consumers(shortcut)) {
      const std::optional<size_t> source = code_reader(reader);
      if (reader < c.node && source) {
        links.shortcuts.push_back({c.layer, *source});
        adds_in_producer.insert(c.out.add);
        break;
      }
    }
  }
  // Outputs that only code readers of one quantization and producer-added shortcuts read.
  for (const Candidate& c : candidates) {
    if (c.out.add != -1 && adds_in_producer.count(c.out.add) == 0) continue;
    if (c.out.value == g.output || !g.value(c.out.value).materialized) continue;
    std::optional<size_t> first_reader;
    bool codes_only = true;
    for (graph::NodeId reader : g.consumers(c.out.value)) {
      const std::optional<size_t> layer = code_reader(reader);
      if (layer) {
        const QuantSpec& spec = *packed.layers[*layer].input;
        if (!first_reader) first_reader = layer;
        codes_only = codes_only && same_quantization(spec, *packed.layers[*first_reader].input);
      } else {
        const bool shortcut_in_producer = adds_in_producer.count(reader) > 0 &&
                                          g.nodes[reader].inputs[1] == c.out.value &&
                                          g.nodes[reader].inputs[0] != c.out.value;
        codes_only = codes_only && shortcut_in_producer;
      }
    }
    if (codes_only && first_reader)
      links.codes.push_back({c.layer, *first_reader, c.out.activation});
  }
  return links;
}

}  // namespace

absl::Status load_integer_model(Model& model, const PackedModel& packed, IntegerKernels kernels) {
  std::map<std::string, std::shared_ptr<Module>> modules;
  for (const auto& [name, module] : model.named_modules()) modules[name] = module;
  auto find = [&](const std::string& name) {
    auto it = modules.find(name);
    return it == modules.end() ? nullptr : it->second;
  };
  for (const PackedLayer& layer : packed.layers) {
    OMPQ_RETURN_IF_ERROR(check_layer(layer, find(layer.name)));
    if (!layer.folded_batch_norm.empty()) {
      auto bn = std::dynamic_pointer_cast<BatchNorm>(find(layer.folded_batch_norm));
      if (!bn) {
        return absl::InvalidArgumentError(absl::StrCat(
            "load_integer_model: batch norm \"", layer.folded_batch_norm, "\" folded into layer \"",
            layer.name, "\" is not a BatchNorm of the model"));
      }
    }
  }
  std::vector<std::string> missing, unexpected;
  std::set<std::string> expected;
  for (const auto& [name, t] : model.state_dict()) {
    if (is_packed_state(name, packed.layers)) continue;
    expected.insert(name);
    if (packed.float_state.count(name) == 0) missing.push_back(name);
  }
  for (const auto& [name, t] : packed.float_state) {
    if (expected.count(name) == 0) unexpected.push_back(name);
  }
  if (!missing.empty() || !unexpected.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "load_integer_model: the packed model's float state does not match the model (",
        missing.size(), " missing: ", absl::StrJoin(missing, ", "), "; ", unexpected.size(),
        " unexpected: ", absl::StrJoin(unexpected, ", "), ")"));
  }
  std::vector<std::shared_ptr<IntegerLayer>> replacements;
  for (const PackedLayer& layer : packed.layers) {
    replacements.push_back(std::make_shared<IntegerLayer>(layer, kernels));
  }
  const IntegerLinks links = find_links(model, packed, replacements);
  OMPQ_RETURN_IF_ERROR(model.load_state_dict(packed.float_state, /*strict=*/false));
  for (size_t i = 0; i < packed.layers.size(); ++i) {
    const PackedLayer& layer = packed.layers[i];
    const std::shared_ptr<IntegerLayer>& replacement = replacements[i];
    if (auto conv = std::dynamic_pointer_cast<Conv2d>(modules.at(layer.name))) {
      conv->set_replacement(replacement);
    } else {
      std::dynamic_pointer_cast<Linear>(modules.at(layer.name))->set_replacement(replacement);
    }
    if (!layer.folded_batch_norm.empty()) {
      std::dynamic_pointer_cast<BatchNorm>(modules.at(layer.folded_batch_norm))->set_folded(true);
    }
  }
  auto folded_batch_norm = [&](size_t layer) {
    const std::string& folded = packed.layers[layer].folded_batch_norm;
    return folded.empty() ? nullptr : std::dynamic_pointer_cast<BatchNorm>(modules.at(folded));
  };
  for (const ShortcutLink& link : links.shortcuts) {
    replacements[link.adder]->add_shortcut_of(*replacements[link.source]);
    folded_batch_norm(link.adder)->set_residual_in_producer(true);
  }
  for (const CodesLink& link : links.codes) {
    replacements[link.producer]->write_next_input_codes(*packed.layers[link.reader].input,
                                                        link.activation);
    if (auto bn = folded_batch_norm(link.producer)) bn->set_activation_in_producer(true);
  }
  return absl::OkStatus();
}

}  // namespace ompq::nn
