// Feature capture for the OMPQ search (docs/METHOD.md 1.1, 1.3): one forward pass of N images
// through a model, reporting the post-activation output of every search unit (search_space.h) in
// execution order. As in the reference, every BatchNorm normalizes with the batch statistics of the
// N images (training mode) and nothing else is in training mode (MobileNetV2's classifier dropout,
// which the reference model does not have, is off). The model comes back unchanged: its running
// statistics and its train/eval flags are restored, also when an error is thrown.
//
// Features, named by the unit they belong to:
//   ResNet stem           "conv1":          ReLU(BN(conv1(x))), before the max-pool
//   BasicBlock            "<block>.conv1":  ReLU(BN(conv1(x)))
//                         "<block>.conv2":  the block output, ReLU(branch + shortcut)
//   Bottleneck            "<block>.conv1", "<block>.conv2": ReLU(BN(conv)) of the 1x1 and 3x3
//                         "<block>.conv3":  the block output
//   ResNet classifier     "fc":             the logits
//   MobileNetV2 stem      "features.0.0":   ReLU6(BN(conv)); likewise "features.18.0"
//   inverted residual     "<block>.conv.K.0": ReLU6(BN(conv)) of the expand and depthwise convs
//                         "<block>.conv.K":   the block output (pw-linear, + input when residual)
//   MobileNetV2 classifier "classifier.1":  the logits of the global-average-pooled features
// resnet20 and resnet34 follow the BasicBlock rules (the reference has neither). As in the
// reference, a block's inner features are computed by running its first layers, and the block
// is then run whole, so those layers run twice.
#pragma once

#include <functional>
#include <string>

#include "layers/models/model.h"
#include "solver/search_space.h"

namespace ompq::solver {

using FeatureVisitor = std::function<void(const std::string& unit, const Tensor& feature)>;

// Runs `images` [N, C, H, W] (N >= 2) through `model` without autograd and calls `visit` with each
// unit's feature [N, ...] as soon as it is computed; QAT leaves out the stem and the classifier.
// The feature may be dropped after the call (only N x N Gram matrices need to be kept). Throws for
// a model that is neither a ResNet nor a MobileNetV2.
void capture_features(nn::Model& model, const Tensor& images, QuantMode mode,
                      const FeatureVisitor& visit);

}  // namespace ompq::solver
