#include "layers/linear.h"

#include <cmath>

#include "core/functional/linalg.h"
#include "layers/init.h"

namespace ompq::nn {

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, Generator& gen)
    : in_features_(in_features), out_features_(out_features) {
  OMPQ_CHECK(in_features > 0 && out_features > 0, "Linear: features must be positive (in ",
             in_features, ", out ", out_features, ")");
  weight_ = register_parameter("weight", Tensor::empty({out_features, in_features}));
  init::kaiming_uniform_(weight_, std::sqrt(5.0), init::FanMode::kFanIn,
                         init::Nonlinearity::kLeakyRelu, gen);
  if (bias) {
    bias_ = register_parameter("bias", Tensor::empty({out_features}));
    double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
    init::uniform_(bias_, -bound, bound, gen);
  }
}

Tensor Linear::forward(const Tensor& x) {
  OMPQ_CHECK(x.dim() >= 1 && x.size(-1) == in_features_, "Linear: input of shape ",
             shape_str(x.shape()), " does not end in in_features ", in_features_);
  if (replacement_ && !float_layers()) return replacement_->forward(x);
  return linear(x, weight_, bias_);
}

void Linear::set_replacement(std::shared_ptr<Module> replacement) {
  OMPQ_CHECK(replacement_ == nullptr, "Linear: the layer is already replaced");
  replacement_ = register_module("quant", std::move(replacement));
}

}  // namespace ompq::nn
