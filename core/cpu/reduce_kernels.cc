// CPU reductions. The dims of x are put in x's memory order and merged, then split into kept dims
// (the output's) and reduced dims. Two loop shapes cover every case efficiently:
//  - innermost dim reduced (row sums, sums over H*W of NCHW, sum of everything): each output
//    reduces unit-stride runs with several independent accumulator lanes (vectorized);
//  - innermost dim kept (column sums, per-channel sums of channels-last, sums over the batch):
//    a block of adjacent outputs is accumulated together, vectorized across the block.
// Work is split over outputs, or, when there are fewer output tasks than threads, over fixed
// chunks of the reduced elements whose partial results are combined in chunk order; either way
// the result depends only on the shapes and the thread count.
#include <cmath>
#include <limits>
#include <vector>

#include "core/cpu/register.h"
#include "core/cpu/strided.h"
#include "core/ops/reduce.h"
#include "core/parallel.h"

namespace ompq::cpu {
namespace {

constexpr int64_t kGrain = 16384;   // elements per parallel task, at least
constexpr int64_t kBlock = 256;     // adjacent outputs accumulated together (innermost dim kept)
constexpr int kLanes = 16;          // independent accumulators of a unit-stride run

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

// out = reduce(x) over the dims where out has size 1 (out contiguous, keepdim shape).
template <typename T, typename Reducer>
void reduce_typed(const Tensor& out, const Tensor& x, double scale) {
  using acc_t = typename Reducer::acc_t;
  // Operand 0: the output, with stride 0 along reduced dims; operand 1: x.
  Shape shape = x.shape();
  std::array<Shape, 2> strides = {out.strides(), x.strides()};
  for (size_t d = 0; d < shape.size(); ++d) {
    if (out.shape()[d] == 1) strides[0][d] = 0;
  }
  sort_dims_by_stride<2>(shape, strides, 1);
  const StridedLayout<2> layout = merge_dims<2>(shape, strides);

  StridedLayout<2> kept;     // output dims: strides of out and x
  StridedLayout<1> reduced;  // reduced dims: strides of x
  for (size_t d = 0; d < layout.shape.size(); ++d) {
    if (layout.strides[0][d] == 0) {
      reduced.shape.push_back(layout.shape[d]);
      reduced.strides[0].push_back(layout.strides[1][d]);
    } else {
      kept.shape.push_back(layout.shape[d]);
      kept.strides[0].push_back(layout.strides[0][d]);
      kept.strides[1].push_back(layout.strides[1][d]);
    }
  }
  // With the innermost dim kept, a task is a block of up to kBlock outputs along it.
  const bool inner_kept = !kept.shape.empty() && layout.strides[0].back() != 0;
  if (reduced.shape.empty()) {
    reduced.shape.push_back(1);
    reduced.strides[0].push_back(0);
  }
  if (kept.shape.empty()) {
    kept.shape.push_back(1);
    kept.strides = {Shape{0}, Shape{0}};
  }
  const int64_t width = inner_kept ? kept.shape.back() : 1;
  const int64_t blocks_per_row = (width + kBlock - 1) / kBlock;
  const int64_t num_tasks = shape_numel(kept.shape) / width * blocks_per_row;
  const int64_t reduced_numel = shape_numel(reduced.shape);
  const int64_t run_stride = reduced.strides[0].back();
  const int64_t out_col_stride = kept.strides[0].back(), x_col_stride = kept.strides[1].back();
  const T* x_data = static_cast<const T*>(x.data_ptr());
  T* out_data = static_cast<T*>(out.data_ptr());

  // Task t's first output (flat position in `kept`) and its number of outputs.
  auto task_range = [&](int64_t t) {
    const int64_t row = t / blocks_per_row, col = (t % blocks_per_row) * kBlock;
    return std::make_pair(row * width + col, std::min(kBlock, width - col));
  };
  // acc[0..count) = reduction of task t's outputs over reduced positions [begin, end).
  auto accumulate = [&](int64_t t, int64_t begin, int64_t end, acc_t* acc) {
    auto [first, count] = task_range(t);
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
  if (num_tasks >= threads || reduced_numel * num_tasks * std::min(width, kBlock) < 4 * kGrain) {
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

void reduce_kernel(const Tensor& out, const Tensor& x, ReduceOp op, double scale) {
  OMPQ_DISPATCH_FLOATING(x.dtype(), "reduce", [&] {
    switch (op) {
      case ReduceOp::kSum: return reduce_typed<scalar_t, SumReducer<scalar_t>>(out, x, scale);
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
    parallel_for(0, shape_numel(shape), std::max<int64_t>(1, kGrain / n), [&](int64_t lo, int64_t hi) {
      for (int64_t k = lo; k < hi; ++k) {
        const auto offsets = offsets_at(layout, k);
        const scalar_t* p = x_data + offsets[1];
        int64_t best = 0;
        scalar_t best_value = p[0];
        for (int64_t i = 1; i < n && best_value == best_value; ++i) {
          const scalar_t v = p[i * x_dim_stride];
          if (v > best_value || v != v) {
            best = i;
            best_value = v;
          }
        }
        out_data[offsets[0]] = best;
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
