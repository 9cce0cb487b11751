// 2-D convolution layer (torch.nn.Conv2d): weight [out, in/groups, kh, kw] and optional bias [out].
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "core/ops/conv.h"
#include "core/random.h"
#include "layers/module.h"

namespace ompq::nn {

class Conv2d : public Module {
 public:
  // PyTorch's default initialization: weight ~ kaiming_uniform_(a = sqrt(5)), i.e.
  // U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  Conv2d(int64_t in_channels, int64_t out_channels, std::array<int64_t, 2> kernel_size,
         const Conv2dParams& params = {}, bool bias = true, Generator& gen = default_generator());

  Tensor forward(const Tensor& x) override;

  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }  // undefined without bias
  const Conv2dParams& params() const { return params_; }
  int64_t in_channels() const { return in_channels_; }
  int64_t out_channels() const { return out_channels_; }

  // Quantization swaps a layer for a quantized (or integer) version in place, because models hold
  // typed handles to their layers: `replacement` is registered as the child "quant" and forward()
  // runs it instead. It keeps handles to this layer's weight and bias, which stay registered here.
  // A layer is replaced at most once.
  void set_replacement(std::shared_ptr<Module> replacement);
  const std::shared_ptr<Module>& replacement() const { return replacement_; }

 private:
  int64_t in_channels_;
  int64_t out_channels_;
  Conv2dParams params_;
  Tensor weight_;
  Tensor bias_;
  std::shared_ptr<Module> replacement_;
};

}  // namespace ompq::nn
