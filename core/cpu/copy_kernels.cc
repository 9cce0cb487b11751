// CPU copy (with dtype conversion) and fill.
#include <cstring>
#include <type_traits>

#include "core/convert.h"
#include "core/cpu/register.h"
#include "core/cpu/strided.h"
#include "core/ops/copy.h"
#include "core/parallel.h"

namespace ompq::cpu {
namespace {

void copy_kernel(const Tensor& dst, const Tensor& src) {
  OMPQ_CHECK(dst.device().is_cpu() && src.device().is_cpu(),
             "copy_: CPU kernel called with a non-CPU tensor (", dst.device().str(), " <- ",
             src.device().str(), ")");
  // Dims in dst's memory order, so that a channels_last copy (the dtype conversions around a
  // low-precision convolution) is one unit-stride run rather than a walk along W with stride C.
  Shape shape = dst.shape();
  std::array<Shape, 2> strides = {dst.strides(), src.strides()};
  sort_dims_by_stride<2>(shape, strides, 0);
  auto layout = merge_dims<2>(shape, strides);
  const int64_t outer = outer_count(layout);
  const int64_t grain = std::max<int64_t>(1, 32768 / layout.shape.back());
  OMPQ_DISPATCH_ALL(dst.dtype(), "copy_", [&] {
    using dst_t = scalar_t;
    dst_t* d = static_cast<dst_t*>(dst.data_ptr());
    OMPQ_DISPATCH_ALL(src.dtype(), "copy_", [&] {
      using src_t = scalar_t;
      const src_t* s = static_cast<const src_t*>(src.data_ptr());
      parallel_for(0, outer, grain, [&](int64_t lo, int64_t hi) {
        for_each_inner(layout, lo, hi, [&](const auto& off, int64_t n, const auto& st) {
          dst_t* dp = d + off[0];
          const src_t* sp = s + off[1];
          if constexpr (std::is_same_v<dst_t, src_t>) {
            if (st[0] == 1 && st[1] == 1) {
              std::memcpy(dp, sp, n * sizeof(dst_t));
              return;
            }
          }
          for (int64_t i = 0; i < n; ++i) dp[i * st[0]] = convert<dst_t>(sp[i * st[1]]);
        });
      });
    });
  });
}

void fill_kernel(const Tensor& dst, double value) {
  auto layout = merge_dims<1>(dst.shape(), {dst.strides()});
  const int64_t outer = outer_count(layout);
  const int64_t grain = std::max<int64_t>(1, 32768 / layout.shape.back());
  OMPQ_DISPATCH_ALL(dst.dtype(), "fill_", [&] {
    const scalar_t v = convert_from_double<scalar_t>(value);
    scalar_t* d = static_cast<scalar_t*>(dst.data_ptr());
    parallel_for(0, outer, grain, [&](int64_t lo, int64_t hi) {
      for_each_inner(layout, lo, hi, [&](const auto& off, int64_t n, const auto& st) {
        for (int64_t i = 0; i < n; ++i) d[off[0] + i * st[0]] = v;
      });
    });
  });
}

}  // namespace

void register_copy_kernels() {
  copy_stub.register_kernel(DeviceType::kCPU, copy_kernel);
  fill_stub.register_kernel(DeviceType::kCPU, fill_kernel);
}

}  // namespace ompq::cpu
