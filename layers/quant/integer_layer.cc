#include "layers/quant/integer_layer.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
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

Int8Conv2dSpec IntegerLayer::int8_spec() const {
  Int8Conv2dSpec spec;
  spec.weight_codes =
      kind_ == QuantizableLayer::Kind::kLinear ? codes_.view({codes_.size(0), -1, 1, 1}) : codes_;
  spec.weight_zero_point = zero_points_;
  spec.params = params_;
  spec.multiplier = multiplier_;
  spec.offset = bias_;
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
  const float scale = next_input.scale.item<float>();
  const float zero_point =
      next_input.zero_point.defined() ? next_input.zero_point.item<float>() : 0.0f;
  QuantRange range = next_input.range();
  // quantize(relu(y)) = max(quantize(y), quantize(0)) and quantize(min(y, 6)) =
  // min(quantize(y), quantize(6)), since rounding is monotone.
  if (activation != NormActivation::kIdentity) {
    range.qmin = std::max<int64_t>(range.qmin, static_cast<int64_t>(zero_point));
  }
  if (activation == NormActivation::kRelu6) {
    range.qmax =
        std::min<int64_t>(range.qmax, static_cast<int64_t>(quantize_value<float>(
                                          6.0f, scale, zero_point, static_cast<float>(range.qmin),
                                          static_cast<float>(range.qmax))));
  }
  Int8Conv2dSpec spec = int8_spec();
  spec.multiplier = ops::div(multiplier_, static_cast<double>(scale));
  if (bias_.defined()) spec.offset = ops::div(bias_, static_cast<double>(scale));
  spec.output = Int8OutputCodes{static_cast<int64_t>(zero_point), range};
  cpu_conv_.emplace(spec);
  writes_codes_ = true;
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
  OMPQ_CHECK(!writes_codes_ || x.device().is_cpu(),
             "IntegerLayer: a layer that writes the next layer's codes runs on the CPU only (input "
             "on ",
             x.device().str(), ")");
  if (cpu_conv_ && x.device().is_cpu()) {
    if (conv) {
      return cpu_conv_->forward(x_is_codes ? x : quantize_in_layout(x, *input_), x_zero_point_);
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

// A packed conv whose output the next packed layer's input quantizer reads as codes.
struct CodesLink {
  size_t producer = 0;  // index into PackedModel::layers
  size_t consumer = 0;
  NormActivation activation = NormActivation::kIdentity;
};

// Reads the links off the traced graph: packed conv P links to packed conv C when P's output goes
// through P's folded batch norm (or none) and that call's own ReLU/ReLU6 (or none) into C and
// nowhere else. A model without an input shape cannot be traced and has no links.
std::vector<CodesLink> find_codes_links(const Model& model, const PackedModel& packed,
                                        const std::vector<std::shared_ptr<IntegerLayer>>& layers) {
  std::vector<CodesLink> links;
  if (model.input_shape().empty()) return links;
  const graph::Graph g = graph::trace(model, model.input_shape());
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < packed.layers.size(); ++i) index[packed.layers[i].name] = i;
  for (const graph::Layer& traced : g.layers()) {
    const auto producer = index.find(traced.name);
    if (producer == index.end() || !layers[producer->second]->can_write_codes()) continue;
    const std::string& folded = packed.layers[producer->second].folded_batch_norm;
    const bool same_batch_norm =
        folded.empty() ? traced.batch_norm == -1
                       : traced.batch_norm != -1 && g.nodes[traced.batch_norm].module == folded;
    if (!same_batch_norm) continue;
    CodesLink link;
    link.producer = producer->second;
    graph::ValueId out = g.nodes[traced.batch_norm != -1 ? traced.batch_norm : traced.node].output;
    if (traced.activation != -1) {
      const graph::Node& activation = g.nodes[traced.activation];
      // Only the batch norm's own fused activation passes codes through; a module of its own
      // would apply itself to them.
      if (traced.batch_norm == -1 || activation.call != g.nodes[traced.batch_norm].call) continue;
      link.activation =
          activation.kind == graph::OpKind::kRelu6 ? NormActivation::kRelu6 : NormActivation::kRelu;
      out = activation.output;
    }
    if (out == g.output || !g.value(out).materialized) continue;
    const graph::NodeId reader = g.sole_consumer(out);
    if (reader == -1 || g.nodes[reader].kind != graph::OpKind::kConv2d) continue;
    const auto consumer = index.find(g.nodes[reader].module);
    if (consumer == index.end() || !packed.layers[consumer->second].input ||
        !layers[consumer->second]->can_write_codes()) {
      continue;
    }
    link.consumer = consumer->second;
    links.push_back(link);
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
  const std::vector<CodesLink> links = find_codes_links(model, packed, replacements);
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
  for (const CodesLink& link : links) {
    replacements[link.producer]->write_next_input_codes(*packed.layers[link.consumer].input,
                                                        link.activation);
    const std::string& folded = packed.layers[link.producer].folded_batch_norm;
    if (!folded.empty()) {
      std::dynamic_pointer_cast<BatchNorm>(modules.at(folded))->set_activation_in_producer(true);
    }
  }
  return absl::OkStatus();
}

}  // namespace ompq::nn
