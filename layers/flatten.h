// Flatten (torch.nn.Flatten): merges dims start_dim..end_dim, by default all but the batch dim.
#pragma once

#include <cstdint>

#include "layers/module.h"

namespace ompq::nn {

class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1);
  Tensor forward(const Tensor& x) override;

 private:
  int64_t start_dim_;
  int64_t end_dim_;
};

}  // namespace ompq::nn
