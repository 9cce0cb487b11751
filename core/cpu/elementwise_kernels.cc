// CPU kernels of the elementwise ops: out[i] = f(in_0[i], ...) over operands that the front half
// has expanded to the output's shape. Dims are put in the output's memory order and merged, so a
// dense output (contiguous or channels-last) with same-layout inputs is one flat loop, and a
// broadcast input (bias [C,1,1] against [N,C,H,W]) is a run of inner loops with that input fixed.
// bf16 and f16 operands are computed in f32 (core/cpu/storage_dispatch.h).
#include <tuple>
#include <utility>

#include "core/cpu/register.h"
#include "core/cpu/storage_dispatch.h"
#include "core/cpu/strided.h"
#include "core/ops/elementwise.h"
#include "core/parallel.h"

namespace ompq::cpu {
namespace {

// Elements per parallel chunk: large enough that thread start-up is amortized on cheap ops.
constexpr int64_t kGrain = 16384;

// An input seen from a unit-stride inner loop: either walking (stride 1) or held fixed (stride 0,
// a broadcast dim), decided at compile time so that the loop vectorizes.
template <typename T, bool kFixed>
struct InnerInput {
  const T* p;
  T operator[](int64_t i) const {
    if constexpr (kFixed)
      return *p;
    else
      return p[i];
  }
};

template <unsigned kNumMasks, unsigned kMask = 0, typename Fn>
void with_mask(unsigned mask, const Fn& fn) {
  if constexpr (kMask + 1 == kNumMasks) {
    fn(std::integral_constant<unsigned, kMask>());
  } else if (mask == kMask) {
    fn(std::integral_constant<unsigned, kMask>());
  } else {
    with_mask<kNumMasks, kMask + 1>(mask, fn);
  }
}

// One inner run of n elements. Unit-stride output with inputs of stride 0 or 1 takes a vectorized
// loop (bit k of the mask: input k is fixed); anything else a plain strided loop.
template <typename OutT, typename... InT, typename Fn, size_t... I>
void inner_run(const Fn& fn, OutT* out, int64_t out_stride, const std::tuple<const InT*...>& in,
               const std::array<int64_t, sizeof...(InT)>& in_strides, int64_t n,
               std::index_sequence<I...>) {
  constexpr size_t kNumInputs = sizeof...(InT);
  bool unit = out_stride == 1;
  unsigned mask = 0;
  for (size_t k = 0; k < kNumInputs; ++k) {
    unit = unit && (in_strides[k] == 0 || in_strides[k] == 1);
    if (in_strides[k] == 0) mask |= 1u << k;
  }
  if (!unit) {
    for (int64_t i = 0; i < n; ++i) out[i * out_stride] = fn(std::get<I>(in)[i * in_strides[I]]...);
    return;
  }
  with_mask<(1u << kNumInputs)>(mask, [&](auto mask_constant) {
    constexpr unsigned kMask = decltype(mask_constant)::value;
    std::tuple<InnerInput<InT, ((kMask >> I) & 1u) != 0>...> inputs{{std::get<I>(in)}...};
    OutT* __restrict o = out;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) o[i] = fn(std::get<I>(inputs)[i]...);
  });
}

// The input pointers advanced by offsets[1..] (offsets[0] is the output's).
template <typename... InT, size_t N, size_t... I>
std::tuple<const InT*...> shift_inputs(const std::tuple<const InT*...>& base,
                                       const std::array<int64_t, N>& offsets,
                                       std::index_sequence<I...>) {
  return {(std::get<I>(base) + offsets[I + 1])...};
}

// out = fn(inputs...) elementwise, threaded over chunks of about kGrain elements. OutT and InT...
// are the operands' element types; inputs have out's shape.
template <typename OutT, typename... InT, typename Fn, typename... Inputs>
void elementwise(const Fn& fn, const Tensor& out, const Inputs&... inputs) {
  static_assert(sizeof...(InT) == sizeof...(Inputs), "one element type per input");
  constexpr int N = 1 + sizeof...(InT);
  Shape shape = out.shape();
  std::array<Shape, N> strides = {out.strides(), inputs.strides()...};
  sort_dims_by_stride<N>(shape, strides, 0);
  const StridedLayout<N> layout = merge_dims<N>(shape, strides);
  OutT* out_data = static_cast<OutT*>(out.data_ptr());
  const std::tuple<const InT*...> in_data{static_cast<const InT*>(inputs.data_ptr())...};

  auto run = [&](const std::array<int64_t, N>& offsets, int64_t n,
                 const std::array<int64_t, N>& inner_strides) {
    std::array<int64_t, N - 1> in_strides;
    for (int k = 1; k < N; ++k) in_strides[k - 1] = inner_strides[k];
    auto index = std::index_sequence_for<InT...>();
    const auto in = shift_inputs(in_data, offsets, index);
    inner_run<OutT, InT...>(fn, out_data + offsets[0], inner_strides[0], in, in_strides, n, index);
  };

  const int64_t inner = layout.shape.back();
  const int64_t outer = outer_count(layout);
  if (outer == 1) {  // one merged dim: split it
    parallel_for(0, inner, kGrain, [&](int64_t lo, int64_t hi) {
      std::array<int64_t, N> offsets, inner_strides;
      for (int k = 0; k < N; ++k) {
        inner_strides[k] = layout.strides[k].back();
        offsets[k] = lo * inner_strides[k];
      }
      run(offsets, hi - lo, inner_strides);
    });
    return;
  }
  parallel_for(0, outer, std::max<int64_t>(1, kGrain / inner),
               [&](int64_t lo, int64_t hi) { for_each_inner(layout, lo, hi, run); });
}

void unary_kernel(const Tensor& out, const Tensor& x, UnaryOp op, ScalarParams params) {
  dispatch_floating_storage(out.dtype(), unary_op_name(op), [&](auto types) {
    using S = typename decltype(types)::storage;
    using C = typename decltype(types)::compute;
    const C a = static_cast<C>(params.a), b = static_cast<C>(params.b);
    with_unary_op(op, [&](auto op_constant) {
      constexpr UnaryOp kOp = decltype(op_constant)::value;
      elementwise<S, S>([a, b](S v) { return convert<S>(unary_apply<kOp>(convert<C>(v), a, b)); },
                        out, x);
    });
  });
}

void binary_kernel(const Tensor& out, const Tensor& x, const Tensor& y, BinaryOp op,
                   ScalarParams params) {
  dispatch_floating_storage(out.dtype(), binary_op_name(op), [&](auto types) {
    using S = typename decltype(types)::storage;
    using C = typename decltype(types)::compute;
    const C a = static_cast<C>(params.a), b = static_cast<C>(params.b);
    with_binary_op(op, [&](auto op_constant) {
      constexpr BinaryOp kOp = decltype(op_constant)::value;
      elementwise<S, S, S>(
          [a, b](S u, S v) {
            return convert<S>(binary_apply<kOp>(convert<C>(u), convert<C>(v), a, b));
          },
          out, x, y);
    });
  });
}

// The selected element is copied, never converted.
template <typename Cond>
void where_typed(const Tensor& out, const Tensor& cond, const Tensor& x, const Tensor& y) {
  dispatch_floating_storage(out.dtype(), "where", [&](auto types) {
    using S = typename decltype(types)::storage;
    elementwise<S, Cond, S, S>([](Cond c, S u, S v) { return where_apply(c, u, v); }, out, cond, x,
                               y);
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
  unary_stub.register_kernel(DeviceType::kCPU, unary_kernel);
  binary_stub.register_kernel(DeviceType::kCPU, binary_kernel);
  where_stub.register_kernel(DeviceType::kCPU, where_kernel);
}

}  // namespace ompq::cpu
