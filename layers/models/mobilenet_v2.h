// MobileNetV2 with torchvision's architecture and parameter names (torchvision.models.mobilenetv2):
//   features.0        conv3x3/2 3->32 + BN + ReLU6 (features.0.0.weight, features.0.1.*)
//   features.1..17    inverted residual blocks: "conv" = [pw expand conv+BN+ReLU6 (unless t = 1)],
//                     dw conv3x3+BN+ReLU6, pw-linear conv, BN; + input when stride 1 and in == out
//                     (features.2.conv.0.0.weight, features.2.conv.1.0.weight,
//                     features.2.conv.2.weight, features.2.conv.3.running_mean, ...)
//   features.18       conv1x1 -> 1280 + BN + ReLU6
//   global average pool, classifier = [Dropout(0.2), Linear] (classifier.1.weight).
// Channel counts are scaled by the width multiplier and rounded with torchvision's
// _make_divisible (to a multiple of 8, never more than 10% down); the last conv keeps 1280 unless
// the multiplier exceeds 1.
//
// Initialization as torchvision: convs kaiming_normal_(mode="fan_out"), BN weight 1 and bias 0,
// Linear weight N(0, 0.01) and bias 0.
//
// Small-input variant (for 28-32 px images): the stem conv and the first block of the 24-channel
// stage (features.2) run with stride 1 instead of 2, as in the common CIFAR MobileNetV2
// (kuangliu/pytorch-cifar), so the network downsamples 8x instead of 32x (32 px -> 4x4 at the
// end). The parameters are the same as the ImageNet model's.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/random.h"
#include "layers/models/model.h"
#include "layers/sequential.h"

namespace ompq::nn {

// torchvision's _make_divisible(v, divisor): v rounded to the nearest multiple of `divisor` (at
// least `divisor`), bumped up by one step when rounding lost more than 10%.
int64_t make_divisible(double v, int64_t divisor);

class InvertedResidual : public Module {
 public:
  InvertedResidual(int64_t in_channels, int64_t out_channels, int64_t stride, int64_t expand_ratio,
                   Generator& gen);
  Tensor forward(const Tensor& x) override;

 private:
  bool use_residual_;
  std::shared_ptr<Sequential> conv_;
};

struct MobileNetV2Options {
  int64_t num_classes = 1000;
  double width_mult = 1.0;
  bool small_input = false;
  double dropout = 0.2;  // before the classifier, in training mode
};

class MobileNetV2 : public Model {
 public:
  // `gen` draws the initial weights and, later, the dropout masks: it must outlive the model.
  explicit MobileNetV2(const MobileNetV2Options& options = {},
                       Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  // [3, 32, 32] for the small-input variant, else [3, 224, 224].
  Shape input_shape() const override;
  // The OMPQ reference counts MobileNetV2's FLOPs without BN and ReLU6 element ops.
  FlopCounting flop_counting() const override { return FlopCounting::kWeightsOnly; }

 private:
  MobileNetV2Options options_;
  std::shared_ptr<Sequential> features_;
  std::shared_ptr<Sequential> classifier_;
};

}  // namespace ompq::nn
