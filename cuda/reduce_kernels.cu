// CUDA reductions (sum/mean, max, min over dims; argmax along one dim), with the CPU kernel's
// semantics: sums accumulate in double and are scaled once at the end; a NaN wins a max/min.
//
// Layout: x's dims are put in x's memory order and merged, then split into kept dims (the
// output's) and reduced dims. Two block shapes, chosen by whether the innermost (unit-stride) dim
// of x is reduced or kept:
//  - reduced (row sums, sums over H*W, sum of everything): a block of 256 threads per output,
//    reading consecutive elements of the row, combined by a shared-memory tree;
//  - kept (column sums, per-channel sums of channels-last): a block of 32 adjacent outputs x 8
//    slices of the reduced range, so that a warp reads 32 consecutive elements.
// When the outputs alone cannot fill the GPU, the reduced range is split over gridDim.y blocks
// whose partial results go to a workspace and are combined in split order by a second kernel. The
// order of every combination is fixed by the shapes, so results are deterministic.
#include <limits>

#include "core/ops/reduce.h"
#include "core/ops/reduce_math.h"
#include "cuda/launch.cuh"
#include "cuda/launch_config.h"
#include "cuda/register.h"

namespace ompq::cuda {
namespace {

using reduce_launch::kColOutputs;
using reduce_launch::kColSlices;
using reduce_launch::kRowThreads;

// Sum in double, scaled once when stored.
template <typename T>
struct SumReducer {
  using acc_t = double;
  static OMPQ_HD acc_t identity() { return 0.0; }
  static OMPQ_HD acc_t step(acc_t acc, T v) { return acc + static_cast<acc_t>(v); }
  static OMPQ_HD acc_t combine(acc_t a, acc_t b) { return a + b; }
  static OMPQ_HD T finalize(acc_t acc, double scale) { return static_cast<T>(acc * scale); }
};

// Max (kMax) or min; a NaN wins and stays.
template <typename T, bool kMax>
struct ExtremumReducer {
  using acc_t = T;
  static OMPQ_HD acc_t identity() {
    return kMax ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
  }
  static OMPQ_HD acc_t step(acc_t acc, T v) {
    return ((kMax ? v > acc : v < acc) || v != v) ? v : acc;
  }
  static OMPQ_HD acc_t combine(acc_t a, acc_t b) { return step(a, b); }
  static OMPQ_HD T finalize(acc_t acc, double) { return acc; }
};

template <typename T, typename Reducer, typename index_t>
struct ReduceArgs {
  const T* x;
  T* out;
  typename Reducer::acc_t* partial;    // [num_outputs, splits] when split, else null
  StridedIndexer<2, index_t> kept;     // output index -> (out offset, x offset)
  StridedIndexer<1, index_t> reduced;  // reduced index -> x offset from the output's base
  index_t num_outputs;
  index_t reduced_numel;
  index_t chunk;  // reduced elements per split
  double scale;

  // Stores output o's result of split `split`: partial when split, else the final value.
  __device__ void store(index_t o, index_t out_offset, typename Reducer::acc_t acc) const {
    if (partial != nullptr) {
      partial[static_cast<int64_t>(o) * gridDim.y + blockIdx.y] = acc;
    } else {
      out[out_offset] = Reducer::finalize(acc, scale);
    }
  }
};

// Reduced-inner: block (blockIdx.x, split blockIdx.y) reduces outputs blockIdx.x, +gridDim.x, ...
template <typename T, typename Reducer, typename index_t>
__global__ void reduce_rows_kernel(ReduceArgs<T, Reducer, index_t> args) {
  using acc_t = typename Reducer::acc_t;
  __shared__ acc_t shared[kRowThreads];
  const index_t begin = static_cast<index_t>(blockIdx.y) * args.chunk;
  const index_t end =
      begin + args.chunk < args.reduced_numel ? begin + args.chunk : args.reduced_numel;
  for (index_t o = blockIdx.x; o < args.num_outputs; o += gridDim.x) {
    index_t kept_offsets[2];
    args.kept.offsets(o, kept_offsets);
    const T* base = args.x + kept_offsets[1];
    acc_t acc = Reducer::identity();
    for (index_t i = begin + threadIdx.x; i < end; i += kRowThreads) {
      index_t offset;
      args.reduced.offsets(i, &offset);
      acc = Reducer::step(acc, base[offset]);
    }
    shared[threadIdx.x] = acc;
    __syncthreads();
    for (int width = kRowThreads / 2; width > 0; width /= 2) {
      if (static_cast<int>(threadIdx.x) < width) {
        shared[threadIdx.x] = Reducer::combine(shared[threadIdx.x], shared[threadIdx.x + width]);
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) args.store(o, kept_offsets[0], shared[0]);
    __syncthreads();  // shared[0] is read before the next output overwrites it
  }
}

// Kept-inner: block (blockIdx.x, split blockIdx.y) reduces groups of kColOutputs adjacent
// outputs; threadIdx.x picks the output, threadIdx.y the slice of the reduced range.
template <typename T, typename Reducer, typename index_t>
__global__ void reduce_columns_kernel(ReduceArgs<T, Reducer, index_t> args) {
  using acc_t = typename Reducer::acc_t;
  __shared__ acc_t shared[kColSlices][kColOutputs];
  const index_t begin = static_cast<index_t>(blockIdx.y) * args.chunk;
  const index_t end =
      begin + args.chunk < args.reduced_numel ? begin + args.chunk : args.reduced_numel;
  const index_t num_groups = (args.num_outputs + kColOutputs - 1) / kColOutputs;
  for (index_t group = blockIdx.x; group < num_groups; group += gridDim.x) {
    const index_t o = group * kColOutputs + threadIdx.x;
    const bool active = o < args.num_outputs;
    index_t kept_offsets[2] = {0, 0};
    acc_t acc = Reducer::identity();
    if (active) {
      args.kept.offsets(o, kept_offsets);
      const T* base = args.x + kept_offsets[1];
      for (index_t i = begin + threadIdx.y; i < end; i += kColSlices) {
        index_t offset;
        args.reduced.offsets(i, &offset);
        acc = Reducer::step(acc, base[offset]);
      }
    }
    shared[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && active) {
      for (int s = 1; s < kColSlices; ++s) acc = Reducer::combine(acc, shared[s][threadIdx.x]);
      args.store(o, kept_offsets[0], acc);
    }
    __syncthreads();
  }
}

// out[o] = finalize(partial[o, 0] + ... + partial[o, splits-1]), combined in split order.
template <typename T, typename Reducer, typename index_t>
__global__ void combine_splits_kernel(ReduceArgs<T, Reducer, index_t> args, int splits) {
  const index_t step = static_cast<index_t>(blockDim.x) * gridDim.x;
  for (index_t o = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       o < args.num_outputs; o += step) {
    const typename Reducer::acc_t* p = args.partial + static_cast<int64_t>(o) * splits;
    typename Reducer::acc_t acc = p[0];
    for (int s = 1; s < splits; ++s) acc = Reducer::combine(acc, p[s]);
    index_t kept_offsets[2];
    args.kept.offsets(o, kept_offsets);
    args.out[kept_offsets[0]] = Reducer::finalize(acc, args.scale);
  }
}

// The kept and reduced parts of the merged (out, x) layout, in x's memory order.
struct ReduceLayout {
  cpu::StridedLayout<2> full;
  cpu::StridedLayout<2> kept;     // out and x strides of the output dims
  cpu::StridedLayout<1> reduced;  // x strides of the reduced dims
  bool inner_kept;
};

ReduceLayout split_layout(const Tensor& out, const Tensor& x) {
  Shape shape = x.shape();
  // Operand 0 is the output with stride 0 along reduced dims.
  std::array<Shape, 2> strides = {out.strides(), x.strides()};
  for (size_t d = 0; d < shape.size(); ++d) {
    if (out.shape()[d] == 1) strides[0][d] = 0;
  }
  cpu::sort_dims_by_stride<2>(shape, strides, 1);
  ReduceLayout r;
  r.full = cpu::merge_dims<2>(shape, strides);
  for (size_t d = 0; d < r.full.shape.size(); ++d) {
    if (r.full.strides[0][d] == 0 && r.full.shape[d] != 1) {
      r.reduced.shape.push_back(r.full.shape[d]);
      r.reduced.strides[0].push_back(r.full.strides[1][d]);
    } else {
      r.kept.shape.push_back(r.full.shape[d]);
      r.kept.strides[0].push_back(r.full.strides[0][d]);
      r.kept.strides[1].push_back(r.full.strides[1][d]);
    }
  }
  r.inner_kept = !r.kept.shape.empty() && r.full.strides[0].back() != 0;
  if (r.kept.shape.empty()) r.kept = {Shape{1}, {Shape{0}, Shape{0}}};
  if (r.reduced.shape.empty()) r.reduced = {Shape{1}, {Shape{0}}};
  return r;
}

template <typename T, typename Reducer, typename index_t>
void launch_reduce(const Tensor& out, const Tensor& x, const ReduceLayout& layout, double scale) {
  using acc_t = typename Reducer::acc_t;
  const int device = x.device().index;
  const int64_t num_outputs = shape_numel(layout.kept.shape);
  const int64_t reduced_numel = shape_numel(layout.reduced.shape);
  const int64_t output_blocks = reduce_launch::output_blocks(num_outputs, layout.inner_kept);
  // Split the reduced range when the outputs give fewer blocks than a few waves of the GPU.
  const int sm_count = device_properties(device).multiProcessorCount;
  int64_t splits = split_count(output_blocks, reduce_launch::target_blocks(sm_count), reduced_numel,
                               reduce_launch::kMinSplitElements);
  const int64_t chunk = splits == 1 ? reduced_numel : (reduced_numel + splits - 1) / splits;
  if (chunk > 0) splits = (reduced_numel + chunk - 1) / chunk;  // no empty split
  splits = std::max<int64_t>(splits, 1);

  Tensor workspace;
  if (splits > 1) {
    workspace = Tensor::empty({num_outputs * splits}, DTypeOf<acc_t>::value, x.device());
  }
  ReduceArgs<T, Reducer, index_t> args{
      static_cast<const T*>(x.data_ptr()),
      static_cast<T*>(out.data_ptr()),
      splits > 1 ? static_cast<acc_t*>(workspace.data_ptr()) : nullptr,
      make_indexer<2, index_t>(layout.kept),
      make_indexer<1, index_t>(layout.reduced),
      static_cast<index_t>(num_outputs),
      static_cast<index_t>(reduced_numel),
      static_cast<index_t>(chunk),
      scale};
  DeviceGuard guard(device);
  const cudaStream_t stream = default_stream(device).get();
  const dim3 grid(static_cast<unsigned>(reduce_launch::grid_x(output_blocks, sm_count)),
                  static_cast<unsigned>(splits));
  if (layout.inner_kept) {
    reduce_columns_kernel<T, Reducer, index_t>
        <<<grid, dim3(kColOutputs, kColSlices), 0, stream>>>(args);
  } else {
    reduce_rows_kernel<T, Reducer, index_t><<<grid, kRowThreads, 0, stream>>>(args);
  }
  OMPQ_CUDA_CHECK_LAUNCH();
  if (splits > 1) {
    combine_splits_kernel<T, Reducer, index_t>
        <<<grid_blocks(num_outputs, device), kBlockThreads, 0, stream>>>(args,
                                                                         static_cast<int>(splits));
    OMPQ_CUDA_CHECK_LAUNCH();
  }
  // The workspace returns to the cache here; stream order keeps it alive for the kernels above.
}

template <typename T, typename Reducer>
void reduce_typed(const Tensor& out, const Tensor& x, double scale) {
  const ReduceLayout layout = split_layout(out, x);
  if (fits_in_int32(layout.full)) {
    launch_reduce<T, Reducer, uint32_t>(out, x, layout, scale);
  } else {
    launch_reduce<T, Reducer, int64_t>(out, x, layout, scale);
  }
}

void reduce_kernel(const Tensor& out, const Tensor& x, ReduceOp op, double scale) {
  OMPQ_DISPATCH_FLOATING(x.dtype(), "reduce", [&] {
    switch (op) {
      case ReduceOp::kSum:
        return reduce_typed<scalar_t, SumReducer<scalar_t>>(out, x, scale);
      case ReduceOp::kMax:
        return reduce_typed<scalar_t, ExtremumReducer<scalar_t, true>>(out, x, scale);
      case ReduceOp::kMin:
        return reduce_typed<scalar_t, ExtremumReducer<scalar_t, false>>(out, x, scale);
    }
  });
}

// out[offset 0] = index of the first maximum of the n elements x[offset 1 + i * stride]; a NaN
// is the maximum (the first NaN wins). One thread per output.
template <typename T>
struct ArgmaxFunctor {
  int64_t* out;
  const T* x;
  int64_t n;
  int64_t stride;
  template <typename index_t>
  __device__ void operator()(index_t, const index_t* offsets) const {
    out[offsets[0]] = argmax_along(x + offsets[1], n, stride);
  }
};

void argmax_kernel(const Tensor& out, const Tensor& x, int64_t dim) {
  Shape shape = x.shape();
  const int64_t n = shape[dim];
  shape[dim] = 1;  // threads cover the kept positions; each walks `dim`
  const auto layout = cpu::merge_dims<2>(shape, {out.strides(), x.strides()});
  OMPQ_DISPATCH_FLOATING(x.dtype(), "argmax", [&] {
    launch_strided(
        layout, x.device().index,
        ArgmaxFunctor<scalar_t>{out.data<int64_t>(), static_cast<const scalar_t*>(x.data_ptr()), n,
                                x.strides()[dim]});
  });
}

}  // namespace

void register_reduce_kernels() {
  reduce_stub.register_kernel(DeviceType::kCUDA, reduce_kernel);
  argmax_stub.register_kernel(DeviceType::kCUDA, argmax_kernel);
}

}  // namespace ompq::cuda
