#include "layers/activation.h"

#include "core/functional/elementwise.h"

namespace ompq::nn {

Tensor ReLU::forward(const Tensor& x) { return relu(x); }
Tensor ReLU6::forward(const Tensor& x) { return relu6(x); }

}  // namespace ompq::nn
