#include "core/functional/pool.h"

#include "core/autograd.h"
#include "core/ops/conv.h"
#include "core/trace.h"

namespace ompq {

// Each backward rule gives the input gradient x's layout (x_channels_last), so that a
// channels_last network stays channels_last in its backward pass too.

Tensor max_pool2d(const Tensor& x, const Pool2dParams& p) {
  return trace::traced(
      [&]() -> Tensor {
        ops::MaxPool2dResult r = ops::max_pool2d(x, p);
        return record(r.output, {x}, "MaxPool2dBackward",
                      [indices = r.indices, x_shape = x.shape(),
                       x_channels_last = is_channels_last(x)](const Tensor& grad) {
                        return std::vector<Tensor>{
                            ops::max_pool2d_backward(grad, indices, x_shape, x_channels_last)};
                      });
      },
      [&] {
        trace::OpCall c{trace::Op::kMaxPool2d, {x}};
        c.attributes.pool = p;
        return c;
      });
}

Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p) {
  return trace::traced(
      [&]() -> Tensor {
        return record(
            ops::avg_pool2d(x, p), {x}, "AvgPool2dBackward",
            [x_shape = x.shape(), p, x_channels_last = is_channels_last(x)](const Tensor& grad) {
              return std::vector<Tensor>{
                  ops::avg_pool2d_backward(grad, x_shape, p, x_channels_last)};
            });
      },
      [&] {
        trace::OpCall c{trace::Op::kAvgPool2d, {x}};
        c.attributes.pool = p;
        return c;
      });
}

Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size) {
  return trace::traced(
      [&]() -> Tensor {
        return record(
            ops::adaptive_avg_pool2d(x, output_size), {x}, "AdaptiveAvgPool2dBackward",
            [x_shape = x.shape(), x_channels_last = is_channels_last(x)](const Tensor& grad) {
              return std::vector<Tensor>{
                  ops::adaptive_avg_pool2d_backward(grad, x_shape, x_channels_last)};
            });
      },
      [&] {
        trace::OpCall c{trace::Op::kAdaptiveAvgPool2d, {x}};
        c.attributes.output_size = output_size;
        return c;
      });
}

}  // namespace ompq
