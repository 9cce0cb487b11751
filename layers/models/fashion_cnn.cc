#include "layers/models/fashion_cnn.h"

#include "core/functional/elementwise.h"
#include "core/functional/pool.h"

namespace ompq::nn {

FashionCnn::FashionCnn(int64_t num_classes, Generator& gen) {
  Conv2dParams same_3x3;
  same_3x3.padding = {1, 1};
  conv1_ = register_module("conv1", std::make_shared<Conv2d>(1, 32, std::array<int64_t, 2>{3, 3},
                                                             same_3x3, /*bias=*/false, gen));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(32));
  conv2_ = register_module("conv2", std::make_shared<Conv2d>(32, 64, std::array<int64_t, 2>{3, 3},
                                                             same_3x3, /*bias=*/false, gen));
  bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(64));
  fc_ =
      register_module("fc", std::make_shared<Linear>(64 * 7 * 7, num_classes, /*bias=*/true, gen));
}

Tensor FashionCnn::forward(const Tensor& x) {
  const Pool2dParams halve;  // 2x2, stride 2
  Tensor h = max_pool2d(relu((*bn1_)((*conv1_)(x))), halve);
  h = max_pool2d(relu((*bn2_)((*conv2_)(h))), halve);
  return (*fc_)(h.flatten(1));
}

}  // namespace ompq::nn
