// CUDA kernels of the elementwise ops (unary, broadcasting binary, where). The per-element math is
// core/ops/elementwise_math.h, the same functions the CPU kernels call. Operands arrive expanded
// to the output's shape (stride 0 along broadcast dims); the dims are put in the output's memory
// order and merged, so consecutive threads write consecutive addresses of a dense output
// (contiguous or channels-last) and a contiguous case is a flat loop without index division.
#include "core/ops/elementwise.h"
#include "cuda/launch.cuh"
#include "cuda/register.h"

namespace ompq::cuda {
namespace {

// out = unary_apply<kOp>(x, a, b) per element.
template <UnaryOp kOp, typename T>
struct UnaryFunctor {
  T* out;
  const T* x;
  T a, b;
  template <typename index_t>
  __device__ void operator()(index_t, const index_t* offsets) const {
    out[offsets[0]] = unary_apply<kOp, T>(x[offsets[1]], a, b);
  }
};

// out = binary_apply<kOp>(x, y, a, b) per element.
template <BinaryOp kOp, typename T>
struct BinaryFunctor {
  T* out;
  const T* x;
  const T* y;
  T a, b;
  template <typename index_t>
  __device__ void operator()(index_t, const index_t* offsets) const {
    out[offsets[0]] = binary_apply<kOp, T>(x[offsets[1]], y[offsets[2]], a, b);
  }
};

// out = cond != 0 ? x : y per element.
template <typename C, typename T>
struct WhereFunctor {
  T* out;
  const C* cond;
  const T* x;
  const T* y;
  template <typename index_t>
  __device__ void operator()(index_t, const index_t* offsets) const {
    out[offsets[0]] = where_apply(cond[offsets[1]], x[offsets[2]], y[offsets[3]]);
  }
};

template <typename T>
const T* data_of(const Tensor& t) {
  return static_cast<const T*>(t.data_ptr());
}

void unary_kernel(const Tensor& out, const Tensor& x, UnaryOp op, ScalarParams params) {
  const auto layout = memory_ordered_layout<2>(out.shape(), {out.strides(), x.strides()});
  OMPQ_DISPATCH_FLOATING(out.dtype(), unary_op_name(op), [&] {
    const scalar_t a = static_cast<scalar_t>(params.a), b = static_cast<scalar_t>(params.b);
    with_unary_op(op, [&](auto op_constant) {
      constexpr UnaryOp kOp = decltype(op_constant)::value;
      launch_strided(layout, out.device().index,
                     UnaryFunctor<kOp, scalar_t>{static_cast<scalar_t*>(out.data_ptr()),
                                                 data_of<scalar_t>(x), a, b});
    });
  });
}

void binary_kernel(const Tensor& out, const Tensor& x, const Tensor& y, BinaryOp op,
                   ScalarParams params) {
  const auto layout =
      memory_ordered_layout<3>(out.shape(), {out.strides(), x.strides(), y.strides()});
  OMPQ_DISPATCH_FLOATING(out.dtype(), binary_op_name(op), [&] {
    const scalar_t a = static_cast<scalar_t>(params.a), b = static_cast<scalar_t>(params.b);
    with_binary_op(op, [&](auto op_constant) {
      constexpr BinaryOp kOp = decltype(op_constant)::value;
      launch_strided(
          layout, out.device().index,
          BinaryFunctor<kOp, scalar_t>{static_cast<scalar_t*>(out.data_ptr()), data_of<scalar_t>(x),
                                       data_of<scalar_t>(y), a, b});
    });
  });
}

template <typename C>
void where_typed(const Tensor& out, const Tensor& cond, const Tensor& x, const Tensor& y) {
  const auto layout = memory_ordered_layout<4>(
      out.shape(), {out.strides(), cond.strides(), x.strides(), y.strides()});
  OMPQ_DISPATCH_FLOATING(out.dtype(), "where", [&] {
    launch_strided(
        layout, out.device().index,
        WhereFunctor<C, scalar_t>{static_cast<scalar_t*>(out.data_ptr()), data_of<C>(cond),
                                  data_of<scalar_t>(x), data_of<scalar_t>(y)});
  });
}

void where_kernel(const Tensor& out, const Tensor& cond, const Tensor& x, const Tensor& y) {
  switch (cond.dtype()) {
    case DType::kU8:
      return where_typed<uint8_t>(out, cond, x, y);
    case DType::kF32:
      return where_typed<float>(out, cond, x, y);
    case DType::kF64:
      return where_typed<double>(out, cond, x, y);
    default:
      OMPQ_CHECK(false, "where: unsupported condition dtype ", dtype_name(cond.dtype()));
  }
}

}  // namespace

void register_elementwise_kernels() {
  unary_stub.register_kernel(DeviceType::kCUDA, unary_kernel);
  binary_stub.register_kernel(DeviceType::kCUDA, binary_kernel);
  where_stub.register_kernel(DeviceType::kCUDA, where_kernel);
}

}  // namespace ompq::cuda
