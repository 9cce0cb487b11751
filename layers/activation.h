// Parameter-free activation layers.
#pragma once

#include "layers/module.h"

namespace ompq::nn {

// max(x, 0).
class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

// min(max(x, 0), 6) (MobileNetV2).
class ReLU6 : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

}  // namespace ompq::nn
