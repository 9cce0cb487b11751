// The small CNN of the first real training run (Fashion-MNIST, 1x28x28): two 3x3 conv + BN + ReLU
// + 2x2 max-pool stages and a linear classifier. scripts/fashion_cnn_torch.py is its PyTorch twin,
// with the same parameter names.
#pragma once

#include <memory>

#include "layers/conv.h"
#include "layers/linear.h"
#include "layers/models/model.h"
#include "layers/norm.h"

namespace ompq::nn {

class FashionCnn : public Model {
 public:
  explicit FashionCnn(int64_t num_classes = 10, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  Shape input_shape() const override { return {1, 28, 28}; }
  // The training smoke model: no published search, it is quantized with given bits.
  FlopCounting flop_counting() const override { return FlopCounting::kNotSearched; }

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_;
  std::shared_ptr<Linear> fc_;
};

}  // namespace ompq::nn
