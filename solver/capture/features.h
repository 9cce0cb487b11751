// Feature capture for the OMPQ search (docs/METHOD.md 1.1, 1.3): one forward pass of N images
// through a model, reporting the feature of every search unit (search_space.h) in execution order.
// As in the reference, every BatchNorm normalizes with the batch statistics of the N images
// (training mode) and nothing else is in training mode (MobileNetV2's classifier dropout, which
// the reference model does not have, is off). The model comes back unchanged: its running
// statistics and its train/eval flags are restored, also when an error is thrown.
//
// A unit's feature is a value of the model's traced graph (unit_features in search_space.h): its
// main layer's output after the batch norm and the activation that follow it, or, where that
// output is added to a shortcut, the block output after the add (and its ReLU). So the ResNet stem
// records ReLU(BN(conv1(x))) before the max-pool, a BasicBlock's conv1 ReLU(BN(conv1(x))) and its
// conv2 the block output, a Bottleneck's conv3 the block output, an inverted residual's pw-linear
// conv the block output (+ input when residual), and the classifier the logits.
#pragma once

#include <functional>
#include <string>

#include "layers/models/model.h"
#include "solver/space/search_space.h"

namespace ompq::solver {

using FeatureVisitor = std::function<void(const std::string& unit, const Tensor& feature)>;

// Runs `images` [N, C, H, W] (N >= 2) through `model` without autograd and calls `visit` with each
// unit's feature [N, ...] as soon as it is computed; QAT leaves out the stem and the classifier.
// The feature may be dropped after the call (only N x N Gram matrices need to be kept). Throws for
// a model that takes no part in the search (Model::flop_counting()).
void capture_features(nn::Model& model, const Tensor& images, QuantMode mode,
                      const FeatureVisitor& visit);

}  // namespace ompq::solver
