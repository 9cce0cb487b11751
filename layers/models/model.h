// Model: the common interface of the networks in layers/models/. Besides being a Module (forward,
// state_dict with torchvision names) a model says which input it is built for and lists the layers
// that mixed-precision quantization assigns bit-widths to.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/shape.h"
#include "layers/module.h"
#include "layers/norm.h"

namespace ompq::nn {

// A Conv2d or Linear layer of a model.
struct QuantizableLayer {
  enum class Kind { kConv2d, kLinear };
  std::string name;  // dotted module path, e.g. "layer1.0.conv1"; its weight is name + ".weight"
  Kind kind = Kind::kConv2d;
  Shape weight_shape;              // [O, I / groups, kh, kw] or [O, I]
  std::shared_ptr<Module> module;  // the Conv2d or Linear itself
  // The batch norm that is the only reader of its output (null: none), which BN folding folds in.
  std::shared_ptr<BatchNorm> batch_norm;
};

// How the published OMPQ tables of a model count FLOPs (docs/METHOD.md 2.3, 2.8), which the search
// space reproduces so that BOPs budgets mean what they mean in the paper. A model file knows its
// paper; the solver reads only this declaration.
enum class FlopCounting {
  // The model takes no part in the OMPQ search (it is trained and quantized with given bits).
  kNotSearched,
  // Weights only: a conv counts C_in/groups * k * k * C_out per output pixel, an fc
  // (2 * C_in - 1) per output (the MobileNetV2 counter). The default for a new model.
  kWeightsOnly,
  // The ResNet counter: besides the weights, 5 element ops per conv output for its BN and ReLU,
  // and (2 * C_in + 1) per fc output; its reference FLOPs also carry that counter's two
  // Bottleneck bugs (docs/METHOD.md 2.8).
  kWithBnRelu,
};

class Model : public Module {
 public:
  // The [C, H, W] input the architecture is designed for (and its pretrained weights expect):
  // [3, 224, 224] for the ImageNet models, [3, 32, 32] for small-input ones. Models that end in a
  // global average pool also accept other sizes.
  virtual Shape input_shape() const = 0;

  // Every Conv2d and Linear in the order forward() runs them, read off a traced graph
  // (layers/graph/graph.h) of one input_shape() forward. A model that declares no input shape
  // (input_shape() empty: a test wrapper that takes any input) cannot be traced: its layers come
  // in registration order, each with the BatchNorm registered right after it when that has as
  // many channels.
  std::vector<QuantizableLayer> quantizable_layers() const;

  // The counting of the model's published FLOPs; kWeightsOnly unless the model says otherwise.
  virtual FlopCounting flop_counting() const { return FlopCounting::kWeightsOnly; }

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
