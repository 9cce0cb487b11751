#include "layers/pooling.h"

#include "core/functional/pool.h"

namespace ompq::nn {
namespace {

const Pool2dParams& checked(const Pool2dParams& p, const char* who) {
  for (int i = 0; i < 2; ++i) {
    OMPQ_CHECK(
        p.kernel[i] > 0 && p.stride[i] > 0 && p.padding[i] >= 0 && 2 * p.padding[i] <= p.kernel[i],
        who, ": kernel [", p.kernel[0], ", ", p.kernel[1], "], stride [", p.stride[0], ", ",
        p.stride[1], "], padding [", p.padding[0], ", ", p.padding[1],
        "] (expected positive kernel and stride, 0 <= padding <= kernel / 2)");
  }
  return p;
}

}  // namespace

MaxPool2d::MaxPool2d(const Pool2dParams& params) : params_(checked(params, "MaxPool2d")) {}
Tensor MaxPool2d::forward(const Tensor& x) { return max_pool2d(x, params_); }

AvgPool2d::AvgPool2d(const Pool2dParams& params) : params_(checked(params, "AvgPool2d")) {}
Tensor AvgPool2d::forward(const Tensor& x) { return avg_pool2d(x, params_); }

AdaptiveAvgPool2d::AdaptiveAvgPool2d(std::array<int64_t, 2> output_size)
    : output_size_(output_size) {
  OMPQ_CHECK(output_size[0] > 0 && output_size[1] > 0, "AdaptiveAvgPool2d: output size [",
             output_size[0], ", ", output_size[1], "] must be positive");
}
Tensor AdaptiveAvgPool2d::forward(const Tensor& x) { return adaptive_avg_pool2d(x, output_size_); }

}  // namespace ompq::nn
