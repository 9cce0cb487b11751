#include "layers/models/mobilenet_v2.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "core/functional/pool.h"
#include "layers/activation.h"
#include "layers/conv.h"
#include "layers/dropout.h"
#include "layers/init.h"
#include "layers/linear.h"
#include "layers/norm.h"

namespace ompq::nn {
namespace {

std::shared_ptr<Conv2d> make_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride,
                                  int64_t groups, Generator& gen) {
  Conv2dParams p;
  p.stride = {stride, stride};
  p.padding = {kernel / 2, kernel / 2};
  p.groups = groups;
  return std::make_shared<Conv2d>(in, out, std::array<int64_t, 2>{kernel, kernel}, p,
                                  /*bias=*/false, gen);
}

// torchvision's Conv2dNormActivation(in, out, kernel, stride, groups, activation=ReLU6): children
// "0" (conv), "1" (BN) and "2" (ReLU6) as there, but the BN and the ReLU6 run as one pass
// (BatchNorm::forward_act).
class ConvBnRelu6 : public Sequential {
 public:
  ConvBnRelu6(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups,
              Generator& gen)
      : conv_(make_conv(in, out, kernel, stride, groups, gen)),
        bn_(std::make_shared<BatchNorm2d>(out)) {
    push_back(conv_);
    push_back(bn_);
    push_back(std::make_shared<ReLU6>());
  }
  Tensor forward(const Tensor& x) override {
    return bn_->forward_act(conv_->forward(x), NormActivation::kRelu6);
  }

 private:
  std::shared_ptr<Conv2d> conv_;
  std::shared_ptr<BatchNorm2d> bn_;
};

struct StageSetting {
  int64_t expand_ratio, channels, blocks, stride;  // torchvision's t, c, n, s
};

constexpr std::array<StageSetting, 7> kStages = {{{1, 16, 1, 1},
                                                  {6, 24, 2, 2},
                                                  {6, 32, 3, 2},
                                                  {6, 64, 4, 2},
                                                  {6, 96, 3, 1},
                                                  {6, 160, 3, 2},
                                                  {6, 320, 1, 1}}};

}  // namespace

int64_t make_divisible(double v, int64_t divisor) {
  int64_t rounded = std::max(
      divisor, static_cast<int64_t>(v + static_cast<double>(divisor) / 2) / divisor * divisor);
  if (static_cast<double>(rounded) < 0.9 * v) rounded += divisor;
  return rounded;
}

InvertedResidual::InvertedResidual(int64_t in_channels, int64_t out_channels, int64_t stride,
                                   int64_t expand_ratio, Generator& gen)
    : use_residual_(stride == 1 && in_channels == out_channels) {
  OMPQ_CHECK(stride == 1 || stride == 2, "InvertedResidual: stride ", stride, " (expected 1 or 2)");
  const int64_t hidden = in_channels * expand_ratio;
  conv_ = register_module("conv", std::make_shared<Sequential>());
  if (expand_ratio != 1)
    conv_->push_back(std::make_shared<ConvBnRelu6>(in_channels, hidden, 1, 1, 1, gen));
  conv_->push_back(std::make_shared<ConvBnRelu6>(hidden, hidden, 3, stride, hidden, gen));
  conv_->push_back(make_conv(hidden, out_channels, 1, 1, 1, gen));
  conv_->push_back(std::make_shared<BatchNorm2d>(out_channels));
}

// conv_'s stages, the last (the pw-linear conv's BN) fused with the residual add.
Tensor InvertedResidual::forward(const Tensor& x) {
  const Sequential& stages = *conv_;
  Tensor out = x;
  for (size_t i = 0; i + 1 < stages.size(); ++i) out = (*stages[i])(out);
  const auto bn = std::dynamic_pointer_cast<BatchNorm>(stages[stages.size() - 1]);
  OMPQ_CHECK(bn != nullptr, "InvertedResidual: the last stage of \"conv\" is not a BatchNorm");
  return bn->forward_act(out, NormActivation::kIdentity, use_residual_ ? x : Tensor());
}

MobileNetV2::MobileNetV2(const MobileNetV2Options& options, Generator& gen) : options_(options) {
  OMPQ_CHECK(options.num_classes > 0, "MobileNetV2: num_classes ", options.num_classes,
             " (expected > 0)");
  OMPQ_CHECK(std::isfinite(options.width_mult) && options.width_mult > 0,
             "MobileNetV2: width_mult ", options.width_mult, " (expected > 0)");
  constexpr int64_t kRound = 8;
  int64_t channels = make_divisible(32 * options.width_mult, kRound);
  const int64_t last_channels = make_divisible(1280 * std::max(1.0, options.width_mult), kRound);
  features_ = register_module("features", std::make_shared<Sequential>());
  features_->push_back(
      std::make_shared<ConvBnRelu6>(3, channels, 3, options.small_input ? 1 : 2, 1, gen));
  for (size_t s = 0; s < kStages.size(); ++s) {
    const StageSetting& stage = kStages[s];
    const int64_t out_channels = make_divisible(stage.channels * options.width_mult, kRound);
    // The small-input variant keeps the resolution through the first downsampling stage (s = 1).
    const int64_t first_stride = (options.small_input && s == 1) ? 1 : stage.stride;
    for (int64_t b = 0; b < stage.blocks; ++b) {
      features_->push_back(std::make_shared<InvertedResidual>(
          channels, out_channels, b == 0 ? first_stride : 1, stage.expand_ratio, gen));
      channels = out_channels;
    }
  }
  features_->push_back(std::make_shared<ConvBnRelu6>(channels, last_channels, 1, 1, 1, gen));
  classifier_ = register_module(
      "classifier", std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
                        std::make_shared<Dropout>(options.dropout, gen),
                        std::make_shared<Linear>(last_channels, options.num_classes, true, gen)}));
  for (const auto& [name, module] : named_modules()) {
    if (auto conv = std::dynamic_pointer_cast<Conv2d>(module)) {
      init::kaiming_normal_(conv->weight(), 0.0, init::FanMode::kFanOut,
                            init::Nonlinearity::kLeakyRelu, gen);
    } else if (auto fc = std::dynamic_pointer_cast<Linear>(module)) {
      init::normal_(fc->weight(), 0.0, 0.01, gen);
      init::zeros_(fc->bias());
    }
  }
}

Tensor MobileNetV2::forward(const Tensor& x) {
  Tensor h = (*features_)(in_model_layout(x));
  return (*classifier_)(adaptive_avg_pool2d(h, {1, 1}).flatten(1));
}

Shape MobileNetV2::input_shape() const {
  return options_.small_input ? Shape{3, 32, 32} : Shape{3, 224, 224};
}

}  // namespace ompq::nn
