// The OMPQ search space (docs/METHOD.md 1.3, 2.3, 2.8): the units that each receive one weight
// bit-width, in feature order, with the parameter and FLOP counts that the size and BOPs budgets
// are made of. Data-free: read off the model's traced graph (layers/graph/graph.h) at the input
// resolution.
//
// A unit is one conv or linear layer of the graph, in execution order, except that a layer whose
// output (after its batch norm) is added to an earlier unit's output joins that unit (a residual
// block's projection shortcut joins the block's last main-branch conv): both take the same bits
// and the unit's feature is the add's result. QAT leaves the first and last unit (stem conv and
// classifier) out of the search (they stay at 8 bits, listed in `fixed`); PTQ searches them too.
// The reference ignores the mode for MobileNetV2 (it never ran QAT on it); here every model
// follows the same rule.
//
// Counting rules (the reference's cfg2params_perlayer / cfg2flops_layerwise), with the spatial
// sizes of the traced output shapes:
//   params: conv  C_in/groups * k * k * C_out, + C_out for a bias, + 2 * C_out for the batch
//                 norm that reads its output (gamma and beta count at the conv's bits)
//           fc    (C_in + 1) * classes                      (weights and bias)
//   FLOPs:  conv  (C_in/groups * k * k * C_out + e * C_out) * H_out * W_out
//           fc    (2 * C_in + o) * classes
// where e and o are the model's declared counting (nn::FlopCounting): e = 5 and o = +1 for the
// ResNet counter (BN and ReLU element ops), e = 0 and o = -1 for the weights-only counter of
// MobileNetV2 and new models. `reference_flops` adds the ResNet counter's two bugs that the
// published BOPs contain (2.8), wherever its Bottleneck code ran, i.e. in every block with a
// projection shortcut and three main-branch convs: the block's first conv is counted at twice the
// block's output resolution (wrong only in stage 1, which does not downsample: 112 x 112 instead
// of 56 x 56), and the fc is counted with the last block's inner width (512) instead of its input
// width (2048). Elsewhere it equals `flops`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "layers/graph/graph.h"
#include "layers/models/model.h"

namespace ompq::solver {

enum class QuantMode { kQat, kPtq };
const char* quant_mode_name(QuantMode mode);  // "qat", "ptq"

struct SearchUnit {
  std::string name;  // the unit's main conv or linear, e.g. "layer2.0.conv2"
  // Every conv/linear whose weights take this unit's bits: the main one, then a merged shortcut.
  std::vector<std::string> layers;
  int64_t params = 0;
  int64_t flops = 0;
  int64_t reference_flops = 0;
};

struct SearchSpace {
  QuantMode mode = QuantMode::kQat;
  std::vector<SearchUnit> units;  // the searched units in feature (execution) order
  std::vector<SearchUnit> fixed;  // QAT: stem conv and classifier, kept at 8 bits; PTQ: empty
  int min_bits = 4;               // QAT 4..8, PTQ 2..4 (docs/METHOD.md 2.4)
  int max_bits = 8;
  static constexpr int kFixedBits = 8;
};

// The search space of `model` for inputs of height x width pixels (and the model's channels). A
// model whose flop_counting() is kNotSearched is an error.
absl::StatusOr<SearchSpace> build_search_space(const nn::Model& model, QuantMode mode,
                                               int64_t height, int64_t width);

// Each unit's name and the graph value that is its feature (docs/METHOD.md 1.3): the output of the
// main layer, after its batch norm, the residual add it goes into and the ReLU/ReLU6 that follows,
// whichever of these read it alone. `graph` is a trace of `model`; throws for a model that takes
// no part in the search.
struct UnitFeature {
  std::string unit;
  graph::ValueId value = -1;
};
std::vector<UnitFeature> unit_features(const nn::Model& model, const graph::Graph& graph);

}  // namespace ompq::solver
