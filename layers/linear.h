// Fully connected layer (torch.nn.Linear): y = x W^T + b with weight [out, in] and bias [out].
#pragma once

#include <cstdint>
#include <memory>

#include "core/random.h"
#include "layers/module.h"

namespace ompq::nn {

class Linear : public Module {
 public:
  // PyTorch's default initialization: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)).
  Linear(int64_t in_features, int64_t out_features, bool bias = true,
         Generator& gen = default_generator());

  // x: [..., in_features].
  Tensor forward(const Tensor& x) override;

  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }  // undefined without bias
  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }

  // Quantization swaps a layer for a quantized (or integer) version in place, because models hold
  // typed handles to their layers: `replacement` is registered as the child "quant" and forward()
  // runs it instead. It keeps handles to this layer's weight and bias, which stay registered here.
  // A layer is replaced at most once.
  void set_replacement(std::shared_ptr<Module> replacement);
  const std::shared_ptr<Module>& replacement() const { return replacement_; }

 private:
  int64_t in_features_;
  int64_t out_features_;
  Tensor weight_;
  Tensor bias_;
  std::shared_ptr<Module> replacement_;
};

}  // namespace ompq::nn
