#include "layers/models/resnet.h"

#include <array>
#include <string>
#include <utility>

#include "core/functional/pool.h"
#include "layers/init.h"

namespace ompq::nn {
namespace {

std::shared_ptr<Conv2d> make_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride,
                                  Generator& gen) {
  Conv2dParams p;
  p.stride = {stride, stride};
  p.padding = {kernel / 2, kernel / 2};
  return std::make_shared<Conv2d>(in, out, std::array<int64_t, 2>{kernel, kernel}, p,
                                  /*bias=*/false, gen);
}

// torchvision's projection shortcut, used where the block changes the resolution or the width.
std::shared_ptr<Sequential> make_downsample(int64_t in, int64_t out, int64_t stride,
                                            Generator& gen) {
  if (stride == 1 && in == out) return nullptr;
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      make_conv(in, out, 1, stride, gen), std::make_shared<BatchNorm2d>(out)});
}

Tensor shortcut(const std::shared_ptr<Sequential>& downsample, const Tensor& x) {
  return downsample ? downsample->forward(x) : x;
}

}  // namespace

BasicBlock::BasicBlock(int64_t in_channels, int64_t planes, int64_t stride, Generator& gen) {
  conv1_ = register_module("conv1", make_conv(in_channels, planes, 3, stride, gen));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
  conv2_ = register_module("conv2", make_conv(planes, planes, 3, 1, gen));
  bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
  downsample_ = make_downsample(in_channels, planes * kExpansion, stride, gen);
  if (downsample_) register_module("downsample", downsample_);
}

// The batch norms run fused with what follows them: relu, and for the last one the shortcut add
// and relu (torchvision's relu(bn2(conv2(out)) + identity)). The shortcut runs after the main
// path's last conv, as in torchvision (statements, not arguments, fix the order).
Tensor BasicBlock::forward(const Tensor& x) {
  Tensor out = bn1_->forward_act(conv1_->forward(x), NormActivation::kRelu);
  out = conv2_->forward(out);
  return bn2_->forward_act(out, NormActivation::kRelu, shortcut(downsample_, x));
}

Bottleneck::Bottleneck(int64_t in_channels, int64_t planes, int64_t stride, Generator& gen) {
  conv1_ = register_module("conv1", make_conv(in_channels, planes, 1, 1, gen));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
  conv2_ = register_module("conv2", make_conv(planes, planes, 3, stride, gen));
  bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
  conv3_ = register_module("conv3", make_conv(planes, planes * kExpansion, 1, 1, gen));
  bn3_ = register_module("bn3", std::make_shared<BatchNorm2d>(planes * kExpansion));
  downsample_ = make_downsample(in_channels, planes * kExpansion, stride, gen);
  if (downsample_) register_module("downsample", downsample_);
}

Tensor Bottleneck::forward(const Tensor& x) {
  Tensor out = bn1_->forward_act(conv1_->forward(x), NormActivation::kRelu);
  out = bn2_->forward_act(conv2_->forward(out), NormActivation::kRelu);
  out = conv3_->forward(out);
  return bn3_->forward_act(out, NormActivation::kRelu, shortcut(downsample_, x));
}

ResNet::ResNet(const ResNetConfig& config, Generator& gen) : config_(config) {
  OMPQ_CHECK(config.num_classes > 0, "ResNet: num_classes ", config.num_classes, " (expected > 0)");
  OMPQ_CHECK(!config.blocks.empty() && config.blocks.size() == config.planes.size(),
             "ResNet: ", config.blocks.size(), " stage block counts for ", config.planes.size(),
             " stage widths (expected the same non-zero number)");
  const bool bottleneck = config.block == ResNetConfig::Block::kBottleneck;
  const int64_t expansion = bottleneck ? Bottleneck::kExpansion : BasicBlock::kExpansion;
  conv1_ =
      register_module("conv1", config.small_stem ? make_conv(3, config.stem_channels, 3, 1, gen)
                                                 : make_conv(3, config.stem_channels, 7, 2, gen));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(config.stem_channels));
  int64_t channels = config.stem_channels;
  for (size_t s = 0; s < config.blocks.size(); ++s) {
    auto stage = std::make_shared<Sequential>();
    for (int64_t b = 0; b < config.blocks[s]; ++b) {
      const int64_t stride = (s > 0 && b == 0) ? 2 : 1;
      if (bottleneck) {
        stage->push_back(std::make_shared<Bottleneck>(channels, config.planes[s], stride, gen));
      } else {
        stage->push_back(std::make_shared<BasicBlock>(channels, config.planes[s], stride, gen));
      }
      channels = config.planes[s] * expansion;
    }
    stages_.push_back(register_module("layer" + std::to_string(s + 1), stage));
  }
  fc_ = register_module("fc", std::make_shared<Linear>(channels, config.num_classes, true, gen));
  for (const auto& [name, module] : named_modules()) {
    if (auto conv = std::dynamic_pointer_cast<Conv2d>(module)) {
      init::kaiming_normal_(conv->weight(), 0.0, init::FanMode::kFanOut, init::Nonlinearity::kRelu,
                            gen);
    }
  }
}

Tensor ResNet::forward(const Tensor& x) {
  Tensor h = bn1_->forward_act(conv1_->forward(in_model_layout(x)), NormActivation::kRelu);
  if (!config_.small_stem) {
    Pool2dParams pool;
    pool.kernel = {3, 3};
    pool.stride = {2, 2};
    pool.padding = {1, 1};
    h = max_pool2d(h, pool);
  }
  for (auto& stage : stages_) h = stage->forward(h);
  return fc_->forward(adaptive_avg_pool2d(h, {1, 1}).flatten(1));
}

Shape ResNet::input_shape() const {
  return config_.small_stem ? Shape{3, 32, 32} : Shape{3, 224, 224};
}

namespace {

std::shared_ptr<ResNet> imagenet_resnet(ResNetConfig::Block block, std::vector<int64_t> blocks,
                                        int64_t num_classes, bool small_input, Generator& gen) {
  ResNetConfig config;
  config.block = block;
  config.blocks = std::move(blocks);
  config.small_stem = small_input;
  config.num_classes = num_classes;
  return std::make_shared<ResNet>(config, gen);
}

}  // namespace

std::shared_ptr<ResNet> resnet18(int64_t num_classes, bool small_input, Generator& gen) {
  return imagenet_resnet(ResNetConfig::Block::kBasic, {2, 2, 2, 2}, num_classes, small_input, gen);
}

std::shared_ptr<ResNet> resnet34(int64_t num_classes, bool small_input, Generator& gen) {
  return imagenet_resnet(ResNetConfig::Block::kBasic, {3, 4, 6, 3}, num_classes, small_input, gen);
}

std::shared_ptr<ResNet> resnet50(int64_t num_classes, bool small_input, Generator& gen) {
  return imagenet_resnet(ResNetConfig::Block::kBottleneck, {3, 4, 6, 3}, num_classes, small_input,
                         gen);
}

std::shared_ptr<ResNet> resnet101(int64_t num_classes, bool small_input, Generator& gen) {
  return imagenet_resnet(ResNetConfig::Block::kBottleneck, {3, 4, 23, 3}, num_classes, small_input,
                         gen);
}

std::shared_ptr<ResNet> resnet20(int64_t num_classes, Generator& gen) {
  ResNetConfig config;
  config.blocks = {3, 3, 3};
  config.planes = {16, 32, 64};
  config.stem_channels = 16;
  config.small_stem = true;
  config.num_classes = num_classes;
  return std::make_shared<ResNet>(config, gen);
}

}  // namespace ompq::nn
