#include "layers/norm.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_join.h"
#include "core/functional/elementwise.h"
#include "core/functional/norm.h"

namespace ompq::nn {

BatchNorm::BatchNorm(const char* name, int64_t num_features, const BatchNormOptions& options,
                     std::vector<int64_t> input_dims)
    : name_(name),
      num_features_(num_features),
      options_(options),
      input_dims_(std::move(input_dims)) {
  OMPQ_CHECK(num_features > 0, name_, ": num_features ", num_features, " (expected > 0)");
  OMPQ_CHECK(std::isfinite(options.eps) && options.eps > 0, name_, ": eps ", options.eps,
             " (expected > 0)");
  OMPQ_CHECK(options.momentum >= 0 && options.momentum <= 1, name_, ": momentum ", options.momentum,
             " (expected in [0, 1])");
  if (options.affine) {
    weight_ = register_parameter("weight", Tensor::ones({num_features}));
    bias_ = register_parameter("bias", Tensor::zeros({num_features}));
  }
  running_mean_ = register_buffer("running_mean", Tensor::zeros({num_features}));
  running_var_ = register_buffer("running_var", Tensor::ones({num_features}));
  num_batches_tracked_ = register_buffer("num_batches_tracked", Tensor::zeros({}, DType::kI64));
}

Tensor BatchNorm::forward(const Tensor& x) { return forward_act(x, NormActivation::kIdentity); }

Tensor BatchNorm::forward_act(const Tensor& x, NormActivation activation, const Tensor& residual) {
  OMPQ_CHECK(std::count(input_dims_.begin(), input_dims_.end(), x.dim()) > 0, name_,
             ": input of shape ", shape_str(x.shape()), " has ", x.dim(), " dims (expected ",
             absl::StrJoin(input_dims_, " or "), ")");
  OMPQ_CHECK(x.size(1) == num_features_, name_, ": input of shape ", shape_str(x.shape()), " has ",
             x.size(1), " channels (expected ", num_features_, ")");
  const bool adds_residual = residual.defined() && !(folded_ && residual_in_producer_);
  if (folded_ && activation_in_producer_) {
    OMPQ_CHECK(!adds_residual, name_,
               ": a residual was given to a layer whose activation the preceding integer layer "
               "applies (expected none)");
    return x;
  }
  if (folded_) {
    // The convolution before this layer normalized already: what remains is the epilogue.
    const Tensor sum = adds_residual ? add(x, residual) : x;
    switch (activation) {
      case NormActivation::kRelu:
        return relu(sum);
      case NormActivation::kRelu6:
        return relu6(sum);
      case NormActivation::kIdentity:
        break;
    }
    return sum;
  }
  if (is_training()) {
    num_batches_tracked_.fill_(static_cast<double>(num_batches_tracked_.item<int64_t>() + 1));
  }
  return batch_norm_act(x, weight_, bias_, running_mean_, running_var_, is_training(), activation,
                        residual, options_.momentum, options_.eps);
}

BatchNorm1d::BatchNorm1d(int64_t num_features, const BatchNormOptions& options)
    : BatchNorm("BatchNorm1d", num_features, options, {2, 3}) {}

BatchNorm2d::BatchNorm2d(int64_t num_features, const BatchNormOptions& options)
    : BatchNorm("BatchNorm2d", num_features, options, {4}) {}

}  // namespace ompq::nn
