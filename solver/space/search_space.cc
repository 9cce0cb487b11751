#include "solver/space/search_space.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/error.h"

namespace ompq::solver {
namespace {

using graph::Graph;
using graph::NodeId;
using graph::OpKind;
using graph::ValueId;

// The counting that differs between the published counters (nn::FlopCounting).
struct FlopRules {
  int64_t bn_relu_ops_per_output;  // per output element of a conv
  int64_t fc_ops_offset;           // fc FLOPs per output = 2 * C_in + offset
};

// A unit while it is being counted: besides what SearchUnit reports, its main layer's output size
// and FLOPs per output pixel, which the reference counter's bugs rescale, and how it joins the
// graph.
struct UnitDraft {
  SearchUnit unit;
  int64_t out_h = 1, out_w = 1;
  int64_t flops_per_pixel = 0;
  int64_t out_channels = 0;
  ValueId input = -1;           // what its main layer reads
  NodeId merge = -1;            // the add its (batch-normalized) output goes into, if any
  ValueId feature = -1;         // docs/METHOD.md 1.3
  ValueId shortcut_input = -1;  // what a merged shortcut layer reads (-1: none merged)
};

// The node reading `v` alone when it is of `kind`, else -1.
NodeId sole_reader_of_kind(const Graph& g, ValueId v, OpKind kind) {
  const NodeId n = g.sole_consumer(v);
  return n >= 0 && g.nodes[n].kind == kind ? n : -1;
}

// Every conv and linear layer of the graph as a unit, except that a layer whose (batch-normalized)
// output is added to an earlier unit's output joins that unit (a projection shortcut).
std::vector<UnitDraft> draft_units(const Graph& g, const FlopRules& rules) {
  std::vector<UnitDraft> drafts;
  for (const graph::Layer& layer : g.layers()) {
    const graph::Node& node = g.nodes[layer.node];
    const Shape& weight = node.parameter_shapes.at(0);
    const int64_t weight_numel = shape_numel(weight);
    const Shape& out = g.value(node.output).shape;
    const bool has_bias = !node.parameter_shapes.at(1).empty();
    ValueId v = layer.batch_norm >= 0 ? g.nodes[layer.batch_norm].output : node.output;
    const NodeId merge = sole_reader_of_kind(g, v, OpKind::kAdd);
    UnitDraft d;
    d.unit.name = layer.name;
    d.unit.layers = {layer.name};
    d.input = node.inputs[0];
    d.merge = merge;
    d.out_channels = out[1];
    if (node.kind == OpKind::kLinear) {
      const int64_t in_features = weight[1];
      d.unit.params = (in_features + (has_bias ? 1 : 0)) * d.out_channels;
      d.unit.flops = (2 * in_features + rules.fc_ops_offset) * d.out_channels;
    } else {
      d.out_h = out[2];
      d.out_w = out[3];
      d.flops_per_pixel = weight_numel + rules.bn_relu_ops_per_output * d.out_channels;
      d.unit.params = weight_numel + (has_bias ? d.out_channels : 0) +
                      (layer.batch_norm >= 0 ? 2 * d.out_channels : 0);
      d.unit.flops = d.flops_per_pixel * d.out_h * d.out_w;
    }
    auto joined = std::find_if(drafts.begin(), drafts.end(),
                               [&](const UnitDraft& u) { return merge >= 0 && u.merge == merge; });
    if (joined != drafts.end()) {
      joined->unit.layers.push_back(layer.name);
      joined->unit.params += d.unit.params;
      joined->unit.flops += d.unit.flops;
      joined->shortcut_input = d.input;
      continue;
    }
    if (merge >= 0) v = g.nodes[merge].output;
    for (OpKind act : {OpKind::kRelu, OpKind::kRelu6}) {
      const NodeId n = sole_reader_of_kind(g, v, act);
      if (n >= 0) v = g.nodes[n].output;
    }
    d.feature = v;
    drafts.push_back(d);
  }
  for (UnitDraft& d : drafts) d.unit.reference_flops = d.unit.flops;
  return drafts;
}

// The ResNet counter's bugs (search_space.h), where its Bottleneck code ran: a unit with a merged
// projection shortcut whose block has three main-branch convs (the first of them reads what the
// shortcut reads). Nothing changes for a model without such blocks.
void apply_bottleneck_counter_bugs(const FlopRules& rules, std::vector<UnitDraft>* drafts) {
  bool any = false;
  for (size_t i = 2; i < drafts->size(); ++i) {
    const UnitDraft& block_out = (*drafts)[i];
    UnitDraft& conv1 = (*drafts)[i - 2];
    // The shortcut reads the block input, as the block's first main-branch conv does.
    if (block_out.shortcut_input < 0 || conv1.input != block_out.shortcut_input) continue;
    any = true;
    conv1.unit.reference_flops -= conv1.flops_per_pixel * conv1.out_h * conv1.out_w;
    conv1.unit.reference_flops +=
        conv1.flops_per_pixel * (2 * block_out.out_h) * (2 * block_out.out_w);
  }
  if (!any) return;
  UnitDraft& fc = drafts->back();
  const int64_t inner_width = (*drafts)[drafts->size() - 3].out_channels;  // last block's conv2
  fc.unit.reference_flops = (2 * inner_width + rules.fc_ops_offset) * fc.out_channels;
}

absl::StatusOr<FlopRules> rules_of(const nn::Model& model, const char* who) {
  switch (model.flop_counting()) {
    case nn::FlopCounting::kWithBnRelu:
      return FlopRules{5, +1};
    case nn::FlopCounting::kWeightsOnly:
      return FlopRules{0, -1};
    case nn::FlopCounting::kNotSearched:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      who,
      ": the model takes no part in the OMPQ search (its flop_counting() is kNotSearched); "
      "the search supports ResNets and mobilenet_v2 and every model that declares how its "
      "FLOPs are counted"));
}

Graph trace_at(const nn::Model& model, int64_t height, int64_t width) {
  const Shape declared = model.input_shape();
  OMPQ_CHECK(!declared.empty(), "search space: the model declares no input shape");
  return graph::trace(model, {declared[0], height, width});
}

}  // namespace

const char* quant_mode_name(QuantMode mode) { return mode == QuantMode::kQat ? "qat" : "ptq"; }

std::vector<UnitFeature> unit_features(const nn::Model& model, const Graph& graph) {
  absl::StatusOr<FlopRules> rules = rules_of(model, "capture_features");
  OMPQ_CHECK(rules.ok(), rules.status().message());
  std::vector<UnitFeature> out;
  for (const UnitDraft& d : draft_units(graph, *rules)) out.push_back({d.unit.name, d.feature});
  return out;
}

absl::StatusOr<SearchSpace> build_search_space(const nn::Model& model, QuantMode mode,
                                               int64_t height, int64_t width) {
  if (height <= 0 || width <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("search space: input size ", height, "x", width, " (expected positive)"));
  }
  OMPQ_ASSIGN_OR_RETURN(const FlopRules rules, rules_of(model, "search space"));
  const Graph graph = trace_at(model, height, width);
  std::vector<UnitDraft> drafts = draft_units(graph, rules);
  if (model.flop_counting() == nn::FlopCounting::kWithBnRelu) {
    apply_bottleneck_counter_bugs(rules, &drafts);
  }

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
