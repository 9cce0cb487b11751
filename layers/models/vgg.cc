#include "layers/models/vgg.h"

#include <array>

#include "layers/activation.h"
#include "layers/conv.h"
#include "layers/dropout.h"
#include "layers/init.h"
#include "layers/linear.h"
#include "layers/norm.h"
#include "layers/pooling.h"

namespace ompq::nn {
namespace {

constexpr int64_t kPooledSide = 7;  // torchvision's AdaptiveAvgPool2d((7, 7))
constexpr int64_t kHidden = 4096;

std::shared_ptr<Conv2d> make_conv3x3(int64_t in, int64_t out, Generator& gen) {
  Conv2dParams p;
  p.padding = {1, 1};
  return std::make_shared<Conv2d>(in, out, std::array<int64_t, 2>{3, 3}, p, /*bias=*/true, gen);
}

}  // namespace

Vgg::Vgg(const VggOptions& options, Generator& gen) : options_(options) {
  OMPQ_CHECK(options.num_classes > 0, "Vgg: num_classes ", options.num_classes, " (expected > 0)");
  OMPQ_CHECK(!options.stages.empty(), "Vgg: no stages (expected at least one)");
  features_ = register_module("features", std::make_shared<Sequential>());
  int64_t channels = 3;
  for (const std::vector<int64_t>& stage : options.stages) {
    OMPQ_CHECK(!stage.empty(), "Vgg: a stage without convs (expected at least one per stage)");
    for (int64_t width : stage) {
      OMPQ_CHECK(width > 0, "Vgg: conv width ", width, " (expected > 0)");
      features_->push_back(make_conv3x3(channels, width, gen));
      features_->push_back(std::make_shared<BatchNorm2d>(width));
      features_->push_back(std::make_shared<ReLU>());
      channels = width;
    }
    features_->push_back(std::make_shared<MaxPool2d>(Pool2dParams{}));  // 2x2, stride 2
  }
  avgpool_ = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(
                                            std::array<int64_t, 2>{kPooledSide, kPooledSide}));
  classifier_ = register_module(
      "classifier",
      std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
          std::make_shared<Linear>(channels * kPooledSide * kPooledSide, kHidden, true, gen),
          std::make_shared<ReLU>(), std::make_shared<Dropout>(options.dropout, gen),
          std::make_shared<Linear>(kHidden, kHidden, true, gen), std::make_shared<ReLU>(),
          std::make_shared<Dropout>(options.dropout, gen),
          std::make_shared<Linear>(kHidden, options.num_classes, true, gen)}));
  for (const auto& [name, module] : named_modules()) {
    if (auto conv = std::dynamic_pointer_cast<Conv2d>(module)) {
      init::kaiming_normal_(conv->weight(), 0.0, init::FanMode::kFanOut, init::Nonlinearity::kRelu,
                            gen);
      init::zeros_(conv->bias());
    } else if (auto fc = std::dynamic_pointer_cast<Linear>(module)) {
      init::normal_(fc->weight(), 0.0, 0.01, gen);
      init::zeros_(fc->bias());
    }
  }
}

// features_ in order, each batch norm fused with the ReLU after it (BatchNorm::forward_act): the
// same result as running the three entries one by one, in one pass over the activations. Children
// run through operator(), so that a traced graph names the module of each op.
Tensor Vgg::forward(const Tensor& x) {
  const Sequential& features = *features_;
  Tensor h = in_model_layout(x);
  for (size_t i = 0; i < features.size(); ++i) {
    const auto bn = std::dynamic_pointer_cast<BatchNorm>(features[i]);
    if (bn && i + 1 < features.size() && std::dynamic_pointer_cast<ReLU>(features[i + 1])) {
      h = bn->forward_act(h, NormActivation::kRelu);
      ++i;
    } else {
      h = (*features[i])(h);
    }
  }
  return (*classifier_)((*avgpool_)(h).flatten(1));
}

Shape Vgg::input_shape() const {
  return options_.small_input ? Shape{3, 32, 32} : Shape{3, 224, 224};
}

std::shared_ptr<Vgg> vgg16_bn(int64_t num_classes, bool small_input, Generator& gen) {
  VggOptions options;
  options.num_classes = num_classes;
  options.small_input = small_input;
  return std::make_shared<Vgg>(options, gen);
}

}  // namespace ompq::nn
