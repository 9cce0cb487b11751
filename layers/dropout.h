// Dropout (torch.nn.Dropout): inverted dropout in training mode, identity in eval mode. The masks
// come from `gen`'s Philox stream, so a run is reproducible from its seed.
#pragma once

#include "core/random.h"
#include "layers/module.h"

namespace ompq::nn {

class Dropout : public Module {
 public:
  // p in [0, 1): the probability of zeroing an element.
  explicit Dropout(double p = 0.5, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  double p() const { return p_; }

 private:
  double p_;
  Generator* gen_;
};

}  // namespace ompq::nn
