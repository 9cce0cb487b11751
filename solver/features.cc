#include "solver/features.h"

#include <memory>
#include <utility>
#include <vector>

#include "core/autograd.h"
#include "core/functional/elementwise.h"
#include "core/functional/pool.h"
#include "layers/conv.h"
#include "layers/linear.h"
#include "layers/models/mobilenet_v2.h"
#include "layers/models/resnet.h"
#include "layers/norm.h"

namespace ompq::solver {
namespace {

using Record = std::function<void(const std::string&, const Tensor&)>;

// Puts every BatchNorm of a model in training mode and everything else in eval mode, and restores
// the flags and the BN running statistics (which training-mode forwards update) when destroyed.
class SearchModeGuard {
 public:
  explicit SearchModeGuard(nn::Model& model) {
    flags_.emplace_back(&model, model.is_training());
    for (const auto& [name, module] : model.named_modules()) {
      flags_.emplace_back(module.get(), module->is_training());
    }
    for (const auto& [name, buffer] : model.named_buffers()) {
      buffers_.emplace_back(buffer, buffer.clone());
    }
    model.eval();
    for (const auto& [name, module] : model.named_modules()) {
      if (dynamic_cast<nn::BatchNorm*>(module.get())) module->train(true);
    }
  }
  ~SearchModeGuard() {
    // Parents come before their children in flags_, so each train() call is overridden by the
    // descendants' own flags that follow it.
    for (const auto& [module, training] : flags_) module->train(training);
    for (auto& [buffer, saved] : buffers_) buffer.copy_(saved);
  }
  SearchModeGuard(const SearchModeGuard&) = delete;
  SearchModeGuard& operator=(const SearchModeGuard&) = delete;

 private:
  std::vector<std::pair<nn::Module*, bool>> flags_;
  std::vector<std::pair<Tensor, Tensor>> buffers_;
};

const std::shared_ptr<nn::Module>& child(const nn::Module& parent, const std::string& name) {
  for (const auto& [child_name, module] : parent.named_children()) {
    if (child_name == name) return module;
  }
  OMPQ_CHECK(false, "capture_features: the model has no submodule \"", name, "\"");
}

// ReLU(BN(conv(x))) from a ResNet block's (or the stem's) convK and bnK.
Tensor conv_bn_relu(const nn::Module& parent, const std::string& k, const Tensor& x) {
  return relu(child(parent, "bn" + k)->forward(child(parent, "conv" + k)->forward(x)));
}

Tensor classifier_input(const Tensor& h) { return adaptive_avg_pool2d(h, {1, 1}).flatten(1); }

void resnet_features(nn::Module& model, const Tensor& images, const Record& record) {
  Tensor h = conv_bn_relu(model, "1", images);
  record("conv1", h);
  const auto& stem = static_cast<const nn::Conv2d&>(*child(model, "conv1"));
  if (stem.params().stride[0] > 1) {  // torchvision's max-pool; the small-input stem has none
    Pool2dParams pool;
    pool.kernel = {3, 3};
    pool.stride = {2, 2};
    pool.padding = {1, 1};
    h = max_pool2d(h, pool);
  }
  for (const auto& [stage_name, stage] : model.named_children()) {
    if (stage_name.rfind("layer", 0) != 0) continue;
    for (const auto& [index, block] : stage->named_children()) {
      const std::string prefix = stage_name + "." + index + ".";
      const bool bottleneck = dynamic_cast<const nn::Bottleneck*>(block.get()) != nullptr;
      Tensor inner = conv_bn_relu(*block, "1", h);
      record(prefix + "conv1", inner);
      if (bottleneck) record(prefix + "conv2", conv_bn_relu(*block, "2", inner));
      h = block->forward(h);
      record(prefix + (bottleneck ? "conv3" : "conv2"), h);
    }
  }
  record("fc", child(model, "fc")->forward(classifier_input(h)));
}

void mobilenet_v2_features(nn::Module& model, const Tensor& images, const Record& record) {
  Tensor h = images;
  for (const auto& [index, layer] : child(model, "features")->named_children()) {
    const std::string prefix = "features." + index;
    if (!dynamic_cast<const nn::InvertedResidual*>(layer.get())) {  // conv + BN + ReLU6
      h = layer->forward(h);
      record(prefix + ".0", h);
      continue;
    }
    // The block's "conv" holds conv+BN+ReLU6 stages, then the pw-linear conv and its BN.
    Tensor inner = h;
    std::string linear_name;
    for (const auto& [k, part] : child(*layer, "conv")->named_children()) {
      if (dynamic_cast<const nn::Conv2d*>(part.get())) {
        linear_name = prefix + ".conv." + k;
        break;
      }
      inner = part->forward(inner);
      record(prefix + ".conv." + k + ".0", inner);
    }
    h = layer->forward(h);
    record(linear_name, h);
  }
  const nn::Module& classifier = *child(model, "classifier");
  Tensor logits = classifier_input(h);
  std::string linear_name;
  for (const auto& [k, part] : classifier.named_children()) {
    logits = part->forward(logits);
    if (dynamic_cast<const nn::Linear*>(part.get())) linear_name = "classifier." + k;
  }
  record(linear_name, logits);
}

}  // namespace

void capture_features(nn::Model& model, const Tensor& images, QuantMode mode,
                      const FeatureVisitor& visit) {
  OMPQ_CHECK(images.dim() == 4 && images.size(0) >= 2,
             "capture_features: expected images [N, C, H, W] with N >= 2, got shape ",
             shape_str(images.shape()));
  const bool is_resnet = dynamic_cast<nn::ResNet*>(&model) != nullptr;
  OMPQ_CHECK(is_resnet || dynamic_cast<nn::MobileNetV2*>(&model) != nullptr,
             "capture_features: the OMPQ search supports ResNets and mobilenet_v2 only");
  const std::vector<nn::QuantizableLayer> layers = model.quantizable_layers();
  const std::string& stem = layers.front().name;
  const std::string& classifier = layers.back().name;
  const Record record = [&](const std::string& unit, const Tensor& feature) {
    if (mode == QuantMode::kQat && (unit == stem || unit == classifier)) return;
    visit(unit, feature);
  };
  NoGradGuard no_grad;
  SearchModeGuard search_mode(model);
  if (is_resnet) {
    resnet_features(model, images, record);
  } else {
    mobilenet_v2_features(model, images, record);
  }
}

}  // namespace ompq::solver
