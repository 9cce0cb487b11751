// Model: the common interface of the networks in layers/models/. Besides being a Module (forward,
// state_dict with torchvision names) a model says which input it is built for and lists the layers
// that mixed-precision quantization assigns bit-widths to.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/shape.h"
#include "layers/module.h"

namespace ompq::nn {

// A Conv2d or Linear layer of a model.
struct QuantizableLayer {
  enum class Kind { kConv2d, kLinear };
  std::string name;  // dotted module path, e.g. "layer1.0.conv1"; its weight is name + ".weight"
  Kind kind = Kind::kConv2d;
  Shape weight_shape;              // [O, I / groups, kh, kw] or [O, I]
  std::shared_ptr<Module> module;  // the Conv2d or Linear itself
};

class Model : public Module {
 public:
  // The [C, H, W] input the architecture is designed for (and its pretrained weights expect):
  // [3, 224, 224] for the ImageNet models, [3, 32, 32] for small-input ones. Models that end in a
  // global average pool also accept other sizes.
  virtual Shape input_shape() const = 0;

  // Every Conv2d and Linear in execution order. Every model in layers/models/ registers its
  // submodules in the order forward() runs them, so this walks the module tree depth first.
  // A residual block's projection shortcut ("<block>.downsample.0") comes right after the block's
  // last main-branch conv, whose output it is added to (as in torchvision, where it runs last).
  std::vector<QuantizableLayer> quantizable_layers() const;

  // Memory layout of the activations (off by default): with channels_last on, the forward() of
  // ResNet and MobileNetV2 copies an NCHW image batch to channels_last (NHWC in memory) once, and
  // every layer after it (conv, batch norm, pooling, activations, residual adds) keeps that
  // layout up to the global pool, in the backward pass too. Results are the same up to rounding.
  // On the CPU this is the faster layout for whole networks (docs/PERF.md). An input that is
  // channels_last already is taken as it is, switch or not.
  void set_channels_last(bool on) { channels_last_ = on; }
  bool channels_last() const { return channels_last_; }

 protected:
  // The model's input in the layout set_channels_last() asked for; forward() starts with it.
  Tensor in_model_layout(const Tensor& x) const;

 private:
  bool channels_last_ = false;
};

}  // namespace ompq::nn
