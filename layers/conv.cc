#include "layers/conv.h"

#include <cmath>

#include "core/functional/conv.h"
#include "layers/init.h"

namespace ompq::nn {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, std::array<int64_t, 2> kernel_size,
               const Conv2dParams& params, bool bias, Generator& gen)
    : in_channels_(in_channels), out_channels_(out_channels), params_(params) {
  OMPQ_CHECK(in_channels > 0 && out_channels > 0, "Conv2d: channels must be positive (in ",
             in_channels, ", out ", out_channels, ")");
  OMPQ_CHECK(kernel_size[0] > 0 && kernel_size[1] > 0, "Conv2d: kernel size [", kernel_size[0],
             ", ", kernel_size[1], "] must be positive");
  OMPQ_CHECK(
      params.groups > 0 && in_channels % params.groups == 0 && out_channels % params.groups == 0,
      "Conv2d: groups ", params.groups, " must divide in_channels ", in_channels,
      " and out_channels ", out_channels);
  weight_ = register_parameter("weight", Tensor::empty({out_channels, in_channels / params.groups,
                                                        kernel_size[0], kernel_size[1]}));
  init::kaiming_uniform_(weight_, std::sqrt(5.0), init::FanMode::kFanIn,
                         init::Nonlinearity::kLeakyRelu, gen);
  if (bias) {
    bias_ = register_parameter("bias", Tensor::empty({out_channels}));
    double bound =
        1.0 / std::sqrt(static_cast<double>(init::calculate_fan_in_and_fan_out(weight_).first));
    init::uniform_(bias_, -bound, bound, gen);
  }
}

Tensor Conv2d::forward(const Tensor& x) {
  if (replacement_ && !float_layers()) return replacement_->forward(x);
  return conv2d(x, weight_, bias_, params_);
}

void Conv2d::set_replacement(std::shared_ptr<Module> replacement) {
  OMPQ_CHECK(replacement_ == nullptr, "Conv2d: the layer is already replaced");
  replacement_ = register_module("quant", std::move(replacement));
}

}  // namespace ompq::nn
