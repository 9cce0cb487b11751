#include "core/convert.h"
#include "cuda/copy_kernels.h"
#include "cuda/launch.cuh"

namespace ompq::cuda {
namespace {

// dst[offset 0] = convert(src[offset 1]): one element of a strided copy, any dtype pair.
template <typename Dst, typename Src>
struct CopyOp {
  Dst* dst;
  const Src* src;
  template <typename index_t>
  __device__ void operator()(index_t, const index_t* offsets) const {
    dst[offsets[0]] = convert<Dst>(src[offsets[1]]);
  }
};

// dst[offset] = value: one element of a strided fill.
template <typename T>
struct FillOp {
  T* dst;
  T value;
  template <typename index_t>
  __device__ void operator()(index_t, const index_t* offsets) const {
    dst[offsets[0]] = value;
  }
};

}  // namespace

void launch_copy(const Tensor& dst, const Tensor& src) {
  check_same_device(dst, src, "copy_");
  OMPQ_CHECK(dst.shape() == src.shape(), "copy_: CUDA kernel got shapes ", shape_str(dst.shape()),
             " and ", shape_str(src.shape()));
  const auto layout = memory_ordered_layout<2>(dst.shape(), {dst.strides(), src.strides()});
  OMPQ_DISPATCH_ALL(dst.dtype(), "copy_", [&] {
    using dst_t = scalar_t;
    OMPQ_DISPATCH_ALL(src.dtype(), "copy_", [&] {
      launch_strided(layout, dst.device().index,
                     CopyOp<dst_t, scalar_t>{static_cast<dst_t*>(dst.data_ptr()),
                                             static_cast<const scalar_t*>(src.data_ptr())});
    });
  });
}

void launch_fill(const Tensor& dst, double value) {
  const auto layout = memory_ordered_layout<1>(dst.shape(), {dst.strides()});
  OMPQ_DISPATCH_ALL(dst.dtype(), "fill_", [&] {
    launch_strided(layout, dst.device().index,
                   FillOp<scalar_t>{static_cast<scalar_t*>(dst.data_ptr()),
                                    convert_from_double<scalar_t>(value)});
  });
}

}  // namespace ompq::cuda
