// ResNets with torchvision's architecture and parameter names (torchvision.models.resnet, "v1.5":
// the stride of a Bottleneck sits on its 3x3 conv), so converted torchvision checkpoints load
// unchanged: conv1.weight, bn1.running_mean, layer1.0.conv1.weight, layer2.0.downsample.0.weight
// (the 1x1 projection conv), layer2.0.downsample.1.weight (its BN), ..., fc.weight, fc.bias.
//
// Initialization as torchvision: every conv kaiming_normal_(mode="fan_out", nonlinearity="relu"),
// every BN weight 1 and bias 0, fc PyTorch's default Linear init.
//
// Variants:
//  - small input (resnet18/34/50/101 with small_input): for 28-32 px images the 7x7 stride-2
//    stem conv becomes 3x3 stride 1 and the max-pool goes, so the 4 stages see 32, 16, 8, 4 px
//    instead of 1/4 .. 1/32 of the input. Only conv1.weight changes shape ([64, 3, 3, 3]).
//  - resnet20: the CIFAR ResNet of He et al. 2016 (sec. 4.2): a 3x3 16-channel stem, 3 stages of
//    3 BasicBlocks with 16/32/64 channels, global average pool, fc. Its shortcut is option B (a 1x1
//    conv + BN where the shape changes, identity elsewhere), the choice of the widely used
//    torch.hub models chenyaofo/pytorch-cifar-models ("cifar10_resnet20"), whose names are
//    torchvision's: layer2.0.downsample.0.weight, fc.weight, ... (option A, the zero-padded
//    identity of akamaster/pytorch_resnet_cifar10, has no parameters there but cannot map to
//    these names). 272,474 parameters with 10 classes.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/random.h"
#include "layers/conv.h"
#include "layers/linear.h"
#include "layers/models/model.h"
#include "layers/norm.h"
#include "layers/sequential.h"

namespace ompq::nn {

// conv3x3 + BN + ReLU, conv3x3 + BN, + shortcut, ReLU. Output channels = planes.
class BasicBlock : public Module {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlock(int64_t in_channels, int64_t planes, int64_t stride, Generator& gen);
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_;
  std::shared_ptr<Sequential> downsample_;  // null: identity shortcut
};

// conv1x1 + BN + ReLU, conv3x3 (stride) + BN + ReLU, conv1x1 (x4 channels) + BN, + shortcut, ReLU.
// Output channels = 4 * planes.
class Bottleneck : public Module {
 public:
  static constexpr int64_t kExpansion = 4;
  Bottleneck(int64_t in_channels, int64_t planes, int64_t stride, Generator& gen);
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_, conv3_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_, bn3_;
  std::shared_ptr<Sequential> downsample_;
};

struct ResNetConfig {
  enum class Block { kBasic, kBottleneck };
  Block block = Block::kBasic;
  std::vector<int64_t> blocks = {2, 2, 2, 2};         // per stage: layer1, layer2, ...
  std::vector<int64_t> planes = {64, 128, 256, 512};  // per stage; the first stage has stride 1
  int64_t stem_channels = 64;
  // 3x3 stride-1 stem conv and no max-pool, instead of 7x7 stride 2 followed by a 3x3/2 max-pool.
  bool small_stem = false;
  int64_t num_classes = 1000;
};

class ResNet : public Model {
 public:
  // `gen` draws the initial weights.
  explicit ResNet(const ResNetConfig& config, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  // [3, 32, 32] with the small stem, else [3, 224, 224].
  Shape input_shape() const override;
  // The OMPQ reference (HAWQ-V3's counter) counts ResNets with BN and ReLU element ops.
  FlopCounting flop_counting() const override { return FlopCounting::kWithBnRelu; }

 private:
  ResNetConfig config_;
  std::shared_ptr<Conv2d> conv1_;
  std::shared_ptr<BatchNorm2d> bn1_;
  std::vector<std::shared_ptr<Sequential>> stages_;  // layer1, layer2, ...
  std::shared_ptr<Linear> fc_;
};

std::shared_ptr<ResNet> resnet18(int64_t num_classes = 1000, bool small_input = false,
                                 Generator& gen = default_generator());
std::shared_ptr<ResNet> resnet34(int64_t num_classes = 1000, bool small_input = false,
                                 Generator& gen = default_generator());
std::shared_ptr<ResNet> resnet50(int64_t num_classes = 1000, bool small_input = false,
                                 Generator& gen = default_generator());
std::shared_ptr<ResNet> resnet101(int64_t num_classes = 1000, bool small_input = false,
                                  Generator& gen = default_generator());
// Always small-input (it is a 32 px design).
std::shared_ptr<ResNet> resnet20(int64_t num_classes = 10, Generator& gen = default_generator());

}  // namespace ompq::nn
