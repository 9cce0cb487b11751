// The OMPQ search space (spec sections 1.3, 2.3, 2.8): the units that each receive one weight
// bit-width, in feature order, with the parameter and FLOP counts that the size and BOPs budgets
// are made of. Data-free: only the model's layers and the input resolution are read.
//
// A unit is one conv or linear layer of the model (Model::quantizable_layers()), except that a
// residual block's projection shortcut ("<block>.downsample.0") joins the block's last main-branch
// conv: the shortcut is added to that conv's output, so both take the same bits and the unit's
// feature is the block output. QAT leaves the stem conv and the classifier out of the search (they
// stay at 8 bits, listed in `fixed`); PTQ searches them too. The reference ignores the mode for
// MobileNetV2 (it never ran QAT on it); here every model follows the same rule.
//
// Counting rules (the reference's cfg2params_perlayer / cfg2flops_layerwise):
//   params: conv  C_in/groups * k * k * C_out + 2 * C_out   (the BN gamma and beta that follow
//                 every conv of these models count at the conv's bits)
//           fc    (C_in + 1) * classes                      (weights and bias)
//   FLOPs:  conv  (C_in/groups * k * k * C_out + e * C_out) * H_out * W_out, with e = 5 element
//                 ops per output for BN + ReLU in ResNets and e = 0 in MobileNetV2
//           fc    (2 * C_in + 1) * classes in ResNets, (2 * C_in - 1) * classes in MobileNetV2
// `reference_flops` adds the ResNet-50 counter's two bugs that the published BOPs contain (spec
// 2.8): the first Bottleneck of every stage has its conv1 counted at twice the block's output
// resolution (wrong only in stage 1, which does not downsample: 112 x 112 instead of 56 x 56), and
// the fc is counted with the last block's inner width (512) instead of its input width (2048).
// For BasicBlock ResNets and MobileNetV2 it equals `flops`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
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

// The search space of a ResNet (resnet18/34/50, resnet20, small-input variants) or MobileNetV2 for
// inputs of height x width pixels. Other models are an error naming the supported ones.
absl::StatusOr<SearchSpace> build_search_space(const nn::Model& model, QuantMode mode,
                                               int64_t height, int64_t width);

}  // namespace ompq::solver
