// 2-D pooling layers over [N, C, H, W] inputs (torch.nn.MaxPool2d, AvgPool2d, AdaptiveAvgPool2d).
#pragma once

#include <array>
#include <cstdint>

#include "core/ops/pool.h"
#include "layers/module.h"

namespace ompq::nn {

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(const Pool2dParams& params);
  Tensor forward(const Tensor& x) override;

 private:
  Pool2dParams params_;
};

// Averages count the zero padding (count_include_pad = true).
class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(const Pool2dParams& params);
  Tensor forward(const Tensor& x) override;

 private:
  Pool2dParams params_;
};

class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(std::array<int64_t, 2> output_size);
  Tensor forward(const Tensor& x) override;

 private:
  std::array<int64_t, 2> output_size_;
};

}  // namespace ompq::nn
