// CPU reductions. The dims of x are put in x's memory order and merged, then split into kept dims
// (the output's) and reduced dims. Three loop shapes cover every case efficiently:
//  - innermost dim reduced (row sums, sums over H*W, sum of everything): each output reduces
//    unit-stride runs with several independent accumulator lanes (vectorized);
//  - the same with reduced dims outside the kept ones too (per-channel sums over N, H, W of
//    NCHW): x is read in memory order, image by image, into per-output accumulators;
//  - innermost dim kept (column sums, per-channel sums of channels-last, sums over the batch):
//    a block of adjacent outputs is accumulated together, vectorized across the block.
// Work is split over outputs, or over fixed chunks of the reduced elements whose partial results
// are combined in chunk order; the result depends only on the shapes and the thread count.
#include <cmath>
#include <limits>
#include <vector>

#include "core/cpu/register.h"
#include "core/cpu/strided.h"
#include "core/ops/reduce.h"
#include "core/ops/reduce_math.h"
#include "core/parallel.h"

namespace ompq::cpu {
namespace {

constexpr int64_t kGrain = 16384;  // elements per parallel task, at least
constexpr int64_t kBlock = 256;    // adjacent outputs accumulated together (innermost dim kept)
constexpr int kLanes = 16;         // independent accumulators of a unit-stride run

// Sum in double (f32 inputs lose nothing to long accumulation chains), scaled at the end.
template <typename T>
struct SumReducer {
  using acc_t = double;
  static acc_t identity() { return 0.0; }
  static acc_t step(acc_t acc, T v) { return acc + static_cast<acc_t>(v); }
  static acc_t combine(acc_t a, acc_t b) { return a + b; }
  static T finalize(acc_t acc, double scale) { return static_cast<T>(acc * scale); }
};

// Max (kMax) or min; a NaN wins and stays, as in torch.amax.
template <typename T, bool kMax>
struct ExtremumReducer {
  using acc_t = T;
  static acc_t identity() {
    return kMax ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
  }
  static acc_t step(acc_t acc, T v) { return ((kMax ? v > acc : v < acc) || v != v) ? v : acc; }
  static acc_t combine(acc_t a, acc_t b) { return step(a, b); }
  static T finalize(acc_t acc, double) { return acc; }
};

// Reduces n elements p[0], p[stride], ...
template <typename T, typename Reducer>
typename Reducer::acc_t reduce_run(const T* p, int64_t n, int64_t stride) {
  using acc_t = typename Reducer::acc_t;
  acc_t acc = Reducer::identity();
  int64_t i = 0;
  if (stride == 1 && n >= kLanes) {
    acc_t lanes[kLanes];
    for (int k = 0; k < kLanes; ++k) lanes[k] = Reducer::identity();
    for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd  // GCC does not vectorize the lanes of a max/min on its own
      for (int k = 0; k < kLanes; ++k) lanes[k] = Reducer::step(lanes[k], p[i + k]);
    }
    for (int k = 0; k < kLanes; ++k) acc = Reducer::combine(acc, lanes[k]);
  }
  for (; i < n; ++i) acc = Reducer::step(acc, p[i * stride]);
  return acc;
}

// Calls fn(offset, n) for the runs along the innermost dim that cover the flat positions
// [begin, end) of a one-operand layout; offset is in elements of the operand.
template <typename Fn>
void for_each_run(const StridedLayout<1>& layout, int64_t begin, int64_t end, const Fn& fn) {
  const int64_t ndim = static_cast<int64_t>(layout.shape.size());
  const int64_t inner = layout.shape.back();
  Shape index(ndim);
  int64_t rem = begin;
  for (int64_t d = ndim - 1; d >= 0; --d) {
    index[d] = rem % layout.shape[d];
    rem /= layout.shape[d];
  }
  for (int64_t pos = begin; pos < end;) {
    int64_t offset = 0;
    for (int64_t d = 0; d < ndim; ++d) offset += index[d] * layout.strides[0][d];
    const int64_t n = std::min(inner - index.back(), end - pos);
    fn(offset, n);
    pos += n;
    index.back() += n;
    for (int64_t d = ndim - 1; d > 0 && index[d] == layout.shape[d]; --d) {
      index[d] = 0;
      ++index[d - 1];
    }
  }
}

// Element offsets, per operand, of flat position `flat` of a layout.
template <int N>
std::array<int64_t, N> offsets_at(const StridedLayout<N>& layout, int64_t flat) {
  std::array<int64_t, N> offsets{};
  for (int64_t d = static_cast<int64_t>(layout.shape.size()) - 1; d >= 0; --d) {
    const int64_t i = flat % layout.shape[d];
    flat /= layout.shape[d];
    for (int k = 0; k < N; ++k) offsets[k] += i * layout.strides[k][d];
  }
  return offsets;
}

// x's dims in x's memory order, merged, and split into the output's dims and the reduced ones.
struct ReduceLayout {
  StridedLayout<2> kept;     // strides of out and x; [1] with strides 0 when everything is reduced
  StridedLayout<1> reduced;  // strides of x; [1] with stride 0 when nothing is
  bool inner_kept = false;   // the innermost (smallest x stride) dim is an output dim
  // The leading reduced dims, outside every kept dim (N of NCHW per-channel sums), and the
  // product of their sizes.
  size_t outer_reduced_dims = 0;
  int64_t outer_reduced_numel = 1;
};

ReduceLayout split_layout(const Tensor& out, const Tensor& x) {
  // Operand 0: the output, with stride 0 along reduced dims; operand 1: x.
  Shape shape = x.shape();
  std::array<Shape, 2> strides = {out.strides(), x.strides()};
  for (size_t d = 0; d < shape.size(); ++d) {
    if (out.shape()[d] == 1) strides[0][d] = 0;
  }
  sort_dims_by_stride<2>(shape, strides, 1);
  const StridedLayout<2> layout = merge_dims<2>(shape, strides);
  ReduceLayout r;
  for (size_t d = 0; d < layout.shape.size(); ++d) {
    if (layout.strides[0][d] == 0) {
      r.reduced.shape.push_back(layout.shape[d]);
      r.reduced.strides[0].push_back(layout.strides[1][d]);
      if (r.kept.shape.empty()) {
        ++r.outer_reduced_dims;
        r.outer_reduced_numel *= layout.shape[d];
      }
    } else {
      r.kept.shape.push_back(layout.shape[d]);
      r.kept.strides[0].push_back(layout.strides[0][d]);
      r.kept.strides[1].push_back(layout.strides[1][d]);
    }
  }
  r.inner_kept = !r.kept.shape.empty() && layout.strides[0].back() != 0;
  if (r.kept.shape.empty()) {
    r.outer_reduced_dims = 0;  // no output dim to be outside of
    r.outer_reduced_numel = 1;
    r.kept.shape.push_back(1);
    r.kept.strides = {Shape{0}, Shape{0}};
  }
  if (r.reduced.shape.empty()) {
    r.reduced.shape.push_back(1);
    r.reduced.strides[0].push_back(0);
  }
  return r;
}

// Innermost dim reduced, with reduced dims outside the output dims too (per-channel sums of
// NCHW): x is read in memory order, one slab (one index of the outer reduced dims, e.g. one
// image) at a time, each output reducing its runs of the slab; chunks of slabs run in parallel
// into per-chunk partials that are combined in chunk order.
template <typename T, typename Reducer>
void reduce_by_slabs(const ReduceLayout& r, const T* x, T* out, double scale) {
  using acc_t = typename Reducer::acc_t;
  const int64_t num_outputs = shape_numel(r.kept.shape);
  const int64_t num_slabs = r.outer_reduced_numel;
  const int64_t slab_numel = shape_numel(r.reduced.shape) / num_slabs;
  // The slab layout: the reduced dims inside the output dims; the slab offsets: the outer ones.
  const size_t num_outer = r.outer_reduced_dims;
  StridedLayout<1> outer, inner;
  outer.shape.assign(r.reduced.shape.begin(), r.reduced.shape.begin() + num_outer);
  outer.strides[0].assign(r.reduced.strides[0].begin(), r.reduced.strides[0].begin() + num_outer);
  inner.shape.assign(r.reduced.shape.begin() + num_outer, r.reduced.shape.end());
  inner.strides[0].assign(r.reduced.strides[0].begin() + num_outer, r.reduced.strides[0].end());
  const int64_t run_stride = inner.strides[0].back();
  const bool one_run = inner.shape.size() == 1;

  std::vector<int64_t> x_base(num_outputs), out_offset(num_outputs);
  for (int64_t o = 0; o < num_outputs; ++o) {
    const auto offsets = offsets_at(r.kept, o);
    out_offset[o] = offsets[0];
    x_base[o] = offsets[1];
  }
  const int64_t total = num_outputs * slab_numel * num_slabs;
  const int64_t chunks =
      std::max<int64_t>(1, std::min<int64_t>({num_threads(), num_slabs, total / (4 * kGrain)}));
  std::vector<acc_t> partial(chunks * num_outputs, Reducer::identity());
  parallel_for(0, chunks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t chunk = lo; chunk < hi; ++chunk) {
      acc_t* acc = partial.data() + chunk * num_outputs;
      for (int64_t s = num_slabs * chunk / chunks; s < num_slabs * (chunk + 1) / chunks; ++s) {
        const T* slab = x + offsets_at(outer, s)[0];
        for (int64_t o = 0; o < num_outputs; ++o) {
          const T* p = slab + x_base[o];
          if (one_run) {
            acc[o] = Reducer::combine(acc[o], reduce_run<T, Reducer>(p, slab_numel, run_stride));
          } else {
            for_each_run(inner, 0, slab_numel, [&](int64_t offset, int64_t n) {
              acc[o] = Reducer::combine(acc[o], reduce_run<T, Reducer>(p + offset, n, run_stride));
            });
          }
        }
      }
    }
  });
  for (int64_t o = 0; o < num_outputs; ++o) {
    acc_t total_o = partial[o];
    for (int64_t chunk = 1; chunk < chunks; ++chunk) {
      total_o = Reducer::combine(total_o, partial[chunk * num_outputs + o]);
    }
    out[out_offset[o]] = Reducer::finalize(total_o, scale);
  }
}

// Every other case. A task is one output (innermost dim reduced) or a block of up to kBlock
// adjacent outputs along the innermost dim (innermost dim kept, vectorized across the block).
// Tasks run in parallel, or, when there are fewer tasks than threads, each of `threads` chunks of
// the reduced positions gives a partial per task, combined in chunk order.
template <typename T, typename Reducer>
void reduce_by_tasks(const ReduceLayout& r, const T* x_data, T* out_data, double scale) {
  using acc_t = typename Reducer::acc_t;
  const StridedLayout<2>& kept = r.kept;
  const StridedLayout<1>& reduced = r.reduced;
  const bool inner_kept = r.inner_kept;
  const int64_t width = inner_kept ? kept.shape.back() : 1;
  const int64_t blocks_per_row = (width + kBlock - 1) / kBlock;
  const int64_t num_tasks = shape_numel(kept.shape) / width * blocks_per_row;
  const int64_t reduced_numel = shape_numel(reduced.shape);
  const int64_t run_stride = reduced.strides[0].back();
  const int64_t out_col_stride = kept.strides[0].back(), x_col_stride = kept.strides[1].back();
  // Task t's first output (flat position in `kept`) and its number of outputs.
  auto task_range = [&](int64_t t) {
    const int64_t row = t / blocks_per_row, col = (t % blocks_per_row) * kBlock;
    return std::make_pair(row * width + col, std::min(kBlock, width - col));
  };
  // acc[0..count) = reduction of task t's outputs over reduced positions [begin, end).
  auto accumulate = [&](int64_t t, int64_t begin, int64_t end, acc_t* acc) {
    // Not a structured binding: the lambdas below capture `count`, which C++17 (and clang
    // before 16) does not allow for a binding.
    const auto [first, task_count] = task_range(t);
    const int64_t count = task_count;
    const T* base = x_data + offsets_at(kept, first)[1];
    for (int64_t j = 0; j < count; ++j) acc[j] = Reducer::identity();
    if (!inner_kept) {
      for_each_run(reduced, begin, end, [&](int64_t offset, int64_t n) {
        acc[0] = Reducer::combine(acc[0], reduce_run<T, Reducer>(base + offset, n, run_stride));
      });
      return;
    }
    for_each_run(reduced, begin, end, [&](int64_t offset, int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        const T* row = base + offset + i * run_stride;
        if (x_col_stride == 1) {
#pragma omp simd
          for (int64_t j = 0; j < count; ++j) acc[j] = Reducer::step(acc[j], row[j]);
        } else {
          for (int64_t j = 0; j < count; ++j) acc[j] = Reducer::step(acc[j], row[j * x_col_stride]);
        }
      }
    });
  };
  auto store = [&](int64_t t, const acc_t* acc) {
    auto [first, count] = task_range(t);
    T* o = out_data + offsets_at(kept, first)[0];
    for (int64_t j = 0; j < count; ++j) o[j * out_col_stride] = Reducer::finalize(acc[j], scale);
  };

  const int64_t task_cost = reduced_numel * std::min(width, kBlock);
  const int threads = num_threads();
  if (num_tasks >= threads || task_cost * num_tasks < 4 * kGrain) {
    parallel_for(0, num_tasks, std::max<int64_t>(1, kGrain / std::max<int64_t>(task_cost, 1)),
                 [&](int64_t lo, int64_t hi) {
                   std::vector<acc_t> acc(kBlock);
                   for (int64_t t = lo; t < hi; ++t) {
                     accumulate(t, 0, reduced_numel, acc.data());
                     store(t, acc.data());
                   }
                 });
    return;
  }
  // Few tasks, many reduced elements: each of `threads` chunks of the reduced positions gives a
  // partial result per task; partials are combined in chunk order.
  std::vector<acc_t> partial(static_cast<size_t>(threads) * num_tasks * kBlock);
  auto partial_at = [&](int64_t chunk, int64_t t) {
    return partial.data() + (chunk * num_tasks + t) * kBlock;
  };
  parallel_for(0, threads, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t chunk = lo; chunk < hi; ++chunk) {
      const int64_t begin = reduced_numel * chunk / threads;
      const int64_t end = reduced_numel * (chunk + 1) / threads;
      for (int64_t t = 0; t < num_tasks; ++t) accumulate(t, begin, end, partial_at(chunk, t));
    }
  });
  for (int64_t t = 0; t < num_tasks; ++t) {
    acc_t* total = partial_at(0, t);
    const int64_t count = task_range(t).second;
    for (int64_t chunk = 1; chunk < threads; ++chunk) {
      const acc_t* p = partial_at(chunk, t);
      for (int64_t j = 0; j < count; ++j) total[j] = Reducer::combine(total[j], p[j]);
    }
    store(t, total);
  }
}

// out = reduce(x) over the dims where out has size 1 (out contiguous, keepdim shape).
template <typename T, typename Reducer>
void reduce_typed(const Tensor& out, const Tensor& x, double scale) {
  const ReduceLayout layout = split_layout(out, x);
  const T* x_data = static_cast<const T*>(x.data_ptr());
  T* out_data = static_cast<T*>(out.data_ptr());
  if (!layout.inner_kept && layout.outer_reduced_numel > 1) {
    reduce_by_slabs<T, Reducer>(layout, x_data, out_data, scale);
  } else {
    reduce_by_tasks<T, Reducer>(layout, x_data, out_data, scale);
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

// out[k] = index of the first maximum of x along `dim` at kept position k; a NaN is the maximum.
void argmax_kernel(const Tensor& out, const Tensor& x, int64_t dim) {
  Shape shape = x.shape();
  std::array<Shape, 2> strides = {out.strides(), x.strides()};
  const int64_t n = shape[dim], x_dim_stride = x.strides()[dim];
  shape[dim] = 1;  // iterate the kept positions; the loop below walks `dim`
  const StridedLayout<2> layout = merge_dims<2>(shape, strides);
  int64_t* out_data = out.data<int64_t>();
  OMPQ_DISPATCH_FLOATING(x.dtype(), "argmax", [&] {
    const scalar_t* x_data = static_cast<const scalar_t*>(x.data_ptr());
    parallel_for(0, shape_numel(shape), std::max<int64_t>(1, kGrain / n),
                 [&](int64_t lo, int64_t hi) {
                   for (int64_t k = lo; k < hi; ++k) {
                     const auto offsets = offsets_at(layout, k);
                     out_data[offsets[0]] = argmax_along(x_data + offsets[1], n, x_dim_stride);
                   }
                 });
  });
}

}  // namespace

void register_reduce_kernels() {
  reduce_stub.register_kernel(DeviceType::kCPU, reduce_kernel);
  argmax_stub.register_kernel(DeviceType::kCPU, argmax_kernel);
}

}  // namespace ompq::cpu
