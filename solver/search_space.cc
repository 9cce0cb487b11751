#include "solver/search_space.h"

#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "layers/conv.h"
#include "layers/models/mobilenet_v2.h"
#include "layers/models/resnet.h"

namespace ompq::solver {
namespace {

constexpr const char* kShortcutSuffix = ".downsample.0";

// The counting conventions that differ between the two families (see search_space.h).
struct FlopRules {
  int64_t bn_relu_ops_per_output;  // per output element of a conv
  int64_t fc_ops_offset;           // fc FLOPs per class = 2 * C_in + offset
};

// A unit while it is being counted: besides what SearchUnit reports, the output size of its main
// layer and that layer's FLOPs per output pixel, which the reference counter's bugs rescale.
struct UnitDraft {
  SearchUnit unit;
  int64_t out_h = 1, out_w = 1;
  int64_t flops_per_pixel = 0;
  int64_t out_channels = 0;
};

int64_t conv_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t padding,
                      int64_t dilation) {
  return (in + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1;
}

// "layer1.0" for "layer1.0.conv1" and "layer1.0.downsample.0"; "" for a top-level "conv1".
std::string block_of(const std::string& layer_name) {
  if (absl::EndsWith(layer_name, kShortcutSuffix)) {
    return layer_name.substr(0, layer_name.size() - strlen(kShortcutSuffix));
  }
  const size_t dot = layer_name.rfind('.');
  return dot == std::string::npos ? "" : layer_name.substr(0, dot);
}

// Every quantizable layer as a unit, with the projection shortcuts merged into the unit before
// them, and the spatial sizes traced through the network: each conv reads the previous conv's
// output, except a shortcut, which reads its block's input, and the ResNet stem, which is followed
// by a 3x3/2 max-pool (torchvision) unless it is the stride-1 small-input stem (resnet.h).
std::vector<UnitDraft> count_units(const nn::Model& model, bool is_resnet, const FlopRules& rules,
                                   int64_t height, int64_t width) {
  std::vector<UnitDraft> drafts;
  int64_t h = height, w = width;
  std::map<std::string, std::pair<int64_t, int64_t>> block_input;
  for (const nn::QuantizableLayer& layer : model.quantizable_layers()) {
    const int64_t out_channels = layer.weight_shape[0];
    const int64_t weight_numel = shape_numel(layer.weight_shape);
    if (layer.kind == nn::QuantizableLayer::Kind::kLinear) {
      const int64_t in_features = layer.weight_shape[1];
      UnitDraft d;
      d.unit.name = layer.name;
      d.unit.layers = {layer.name};
      d.unit.params = (in_features + 1) * out_channels;
      d.unit.flops = (2 * in_features + rules.fc_ops_offset) * out_channels;
      d.out_channels = out_channels;
      drafts.push_back(d);
      continue;
    }
    const auto& conv = static_cast<const nn::Conv2d&>(*layer.module);
    const Conv2dParams& p = conv.params();
    const std::string block = block_of(layer.name);
    const bool is_shortcut = absl::EndsWith(layer.name, kShortcutSuffix);
    block_input.emplace(block, std::make_pair(h, w));  // keeps the first conv's input
    const auto [in_h, in_w] = is_shortcut ? block_input.at(block) : std::make_pair(h, w);
    const int64_t out_h =
        conv_out_size(in_h, layer.weight_shape[2], p.stride[0], p.padding[0], p.dilation[0]);
    const int64_t out_w =
        conv_out_size(in_w, layer.weight_shape[3], p.stride[1], p.padding[1], p.dilation[1]);
    const int64_t flops_per_pixel = weight_numel + rules.bn_relu_ops_per_output * out_channels;
    const int64_t params = weight_numel + 2 * out_channels;
    if (is_shortcut) {
      SearchUnit& last = drafts.back().unit;
      last.layers.push_back(layer.name);
      last.params += params;
      last.flops += flops_per_pixel * out_h * out_w;
    } else {
      UnitDraft d;
      d.unit.name = layer.name;
      d.unit.layers = {layer.name};
      d.unit.params = params;
      d.unit.flops = flops_per_pixel * out_h * out_w;
      d.out_h = out_h;
      d.out_w = out_w;
      d.flops_per_pixel = flops_per_pixel;
      d.out_channels = out_channels;
      drafts.push_back(d);
    }
    h = out_h;
    w = out_w;
    if (is_resnet && drafts.size() == 1 && p.stride[0] > 1) {  // the stem's max-pool
      h = conv_out_size(h, 3, 2, 1, 1);
      w = conv_out_size(w, 3, 2, 1, 1);
    }
  }
  for (UnitDraft& d : drafts) d.unit.reference_flops = d.unit.flops;
  return drafts;
}

// The reference counter's ResNet-50 bugs (see search_space.h); nothing changes for a model
// without Bottleneck blocks.
void apply_bottleneck_counter_bugs(const nn::Model& model, const FlopRules& rules,
                                   std::vector<UnitDraft>* drafts) {
  std::set<std::string> bottlenecks;
  for (const auto& [name, module] : model.named_modules()) {
    if (dynamic_cast<const nn::Bottleneck*>(module.get())) bottlenecks.insert(name);
  }
  if (bottlenecks.empty()) return;
  for (size_t i = 0; i < drafts->size(); ++i) {
    UnitDraft& conv1 = (*drafts)[i];
    const std::string& name = conv1.unit.name;
    if (!absl::EndsWith(name, ".0.conv1") || !bottlenecks.count(block_of(name))) continue;
    const UnitDraft& block_out = (*drafts)[i + 2];  // conv3, the block's last unit
    conv1.unit.reference_flops -= conv1.flops_per_pixel * conv1.out_h * conv1.out_w;
    conv1.unit.reference_flops +=
        conv1.flops_per_pixel * (2 * block_out.out_h) * (2 * block_out.out_w);
  }
  UnitDraft& fc = drafts->back();
  const int64_t inner_width = (*drafts)[drafts->size() - 3].out_channels;  // last block's conv2
  fc.unit.reference_flops = (2 * inner_width + rules.fc_ops_offset) * fc.out_channels;
}

}  // namespace

const char* quant_mode_name(QuantMode mode) { return mode == QuantMode::kQat ? "qat" : "ptq"; }

absl::StatusOr<SearchSpace> build_search_space(const nn::Model& model, QuantMode mode,
                                               int64_t height, int64_t width) {
  if (height <= 0 || width <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("search space: input size ", height, "x", width, " (expected positive)"));
  }
  const auto* resnet = dynamic_cast<const nn::ResNet*>(&model);
  const bool is_mobilenet = dynamic_cast<const nn::MobileNetV2*>(&model) != nullptr;
  if (!resnet && !is_mobilenet) {
    return absl::InvalidArgumentError(
        "search space: the OMPQ search supports ResNets (resnet18/34/50, resnet20) and "
        "mobilenet_v2 only");
  }
  const FlopRules rules = resnet ? FlopRules{5, +1} : FlopRules{0, -1};
  std::vector<UnitDraft> drafts = count_units(model, resnet != nullptr, rules, height, width);
  apply_bottleneck_counter_bugs(model, rules, &drafts);

  SearchSpace space;
  space.mode = mode;
  space.min_bits = mode == QuantMode::kQat ? 4 : 2;
  space.max_bits = mode == QuantMode::kQat ? 8 : 4;
  for (size_t i = 0; i < drafts.size(); ++i) {
    const bool first_or_last = i == 0 || i + 1 == drafts.size();
    if (mode == QuantMode::kQat && first_or_last) {
      space.fixed.push_back(drafts[i].unit);
    } else {
      space.units.push_back(drafts[i].unit);
    }
  }
  return space;
}

}  // namespace ompq::solver
