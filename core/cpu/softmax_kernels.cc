// CPU softmax, log-softmax and cross-entropy. A softmax input is a contiguous [outer, size, inner]
// array; each task normalizes either one contiguous row (inner = 1, softmax over the last dim) or a
// block of up to kColumns adjacent inner columns of one outer index at once, so that the vectorized
// inner loops always run along memory. Sums run in T within chunks and in double across chunks.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/cpu/register.h"
#include "core/ops/softmax.h"
#include "core/ops/softmax_math.h"
#include "core/parallel.h"

namespace ompq::cpu {
namespace {

constexpr int64_t kGrainElements = 16384;
constexpr int64_t kColumns = 64;

struct SoftmaxLayout {
  int64_t outer = 1, size, inner = 1;

  SoftmaxLayout(const Tensor& t, int64_t dim) : size(t.dim() == 0 ? 1 : t.size(dim)) {
    for (int64_t d = 0; d < dim; ++d) outer *= t.size(d);
    for (int64_t d = dim + 1; d < t.dim(); ++d) inner *= t.size(d);
  }
  int64_t blocks_per_outer() const { return (inner + kColumns - 1) / kColumns; }
  int64_t num_blocks() const { return outer * blocks_per_outer(); }
  int64_t grain() const {
    return std::max<int64_t>(1, kGrainElements / (size * std::min(inner, kColumns)));
  }
};

// Calls fn(offset, width) for every column block, threaded: `offset` is the element offset of the
// block's first value, `width` its number of columns (<= kColumns); element k of column j is at
// offset + k * inner + j.
template <typename Fn>
void for_each_column_block(const SoftmaxLayout& l, const Fn& fn) {
  const int64_t per_outer = l.blocks_per_outer();
  parallel_for(0, l.num_blocks(), l.grain(), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t o = b / per_outer;
      const int64_t j0 = (b % per_outer) * kColumns;
      fn(o * l.size * l.inner + j0, std::min(kColumns, l.inner - j0));
    }
  });
}

// Sums are accumulated in T within chunks of kSumChunk values (a loop that vectorizes) and in
// double across chunks: accurate for any length without mixing widths inside the vector loop.
constexpr int64_t kSumChunk = 256;

// The per-row and per-block workers below are [[gnu::noinline]]: inlined into the body of
// parallel_for's OpenMP region, GCC 12 no longer vectorizes their `omp simd` loops.

// Sum over k in [0, n) of term(k), a T.
template <typename T, typename Term>
double row_sum(int64_t n, const Term& term) {
  double total = 0;
  for (int64_t k0 = 0; k0 < n; k0 += kSumChunk) {
    const int64_t k1 = std::min(n, k0 + kSumChunk);
    T part = 0;
#pragma omp simd reduction(+ : part)
    for (int64_t k = k0; k < k1; ++k) part += term(k);
    total += part;
  }
  return total;
}

// sums[j] = sum over k in [0, size) of term(k, j), for the columns j < width (<= kColumns).
template <typename T, typename Term>
void column_sums(int64_t size, int64_t width, const Term& term, double* sums) {
  std::fill(sums, sums + width, 0.0);
  for (int64_t k0 = 0; k0 < size; k0 += kSumChunk) {
    const int64_t k1 = std::min(size, k0 + kSumChunk);
    T part[kColumns] = {};
    for (int64_t k = k0; k < k1; ++k) {
#pragma omp simd
      for (int64_t j = 0; j < width; ++j) part[j] += term(k, j);
    }
    for (int64_t j = 0; j < width; ++j) sums[j] += part[j];
  }
}

template <typename T>
T row_max(const T* __restrict__ in, int64_t size) {
  T max = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : max)
  for (int64_t k = 0; k < size; ++k) max = in[k] > max ? in[k] : max;
  return max;
}

// Softmax of one row of `size` contiguous values (inner = 1).
template <typename T, bool kLog>
[[gnu::noinline]] void softmax_row(const T* __restrict__ in, T* __restrict__ out, int64_t size) {
  const T max = row_max(in, size);
  const double sum = row_sum<T>(size, [=](int64_t k) {
    const T e = softmax_exp(in[k], max);
    if (!kLog) out[k] = e;  // normalized below
    return e;
  });
  if (kLog) {
    const T log_sum = static_cast<T>(std::log(sum));
#pragma omp simd
    for (int64_t k = 0; k < size; ++k) out[k] = log_softmax_value(in[k], max, log_sum);
  } else {
    const T inv_sum = static_cast<T>(1.0 / sum);
#pragma omp simd
    for (int64_t k = 0; k < size; ++k) out[k] *= inv_sum;
  }
}

// Softmax of `width` adjacent columns: element k of column j is at k * inner + j.
template <typename T, bool kLog>
[[gnu::noinline]] void softmax_columns(const T* __restrict__ in, T* __restrict__ out, int64_t size,
                                       int64_t inner, int64_t width) {
  T max[kColumns];
  std::fill(max, max + width, -std::numeric_limits<T>::infinity());
  for (int64_t k = 0; k < size; ++k) {
#pragma omp simd
    for (int64_t j = 0; j < width; ++j)
      max[j] = in[k * inner + j] > max[j] ? in[k * inner + j] : max[j];
  }
  double sum[kColumns];
  column_sums<T>(
      size, width,
      [&](int64_t k, int64_t j) {
        const T e = softmax_exp(in[k * inner + j], max[j]);
        if (!kLog) out[k * inner + j] = e;  // normalized below
        return e;
      },
      sum);
  T factor[kColumns];  // log: log(sum); softmax: 1 / sum
  for (int64_t j = 0; j < width; ++j)
    factor[j] = static_cast<T>(kLog ? std::log(sum[j]) : 1.0 / sum[j]);
  for (int64_t k = 0; k < size; ++k) {
    T* r = out + k * inner;
    const T* v = in + k * inner;
#pragma omp simd
    for (int64_t j = 0; j < width; ++j) {
      r[j] = kLog ? log_softmax_value(v[j], max[j], factor[j]) : r[j] * factor[j];
    }
  }
}

// softmax: dx = y * (dy - sum(dy * y)); log_softmax: dx = dy - exp(y) * sum(dy).
template <typename T, bool kLog>
inline T softmax_grad_term(T dy, T y) {
  return kLog ? dy : dy * y;
}

template <typename T, bool kLog>
inline T softmax_input_grad(T y, T dy, T total) {
  return kLog ? log_softmax_grad(y, dy, total) : softmax_grad(y, dy, total);
}

// Backward of one row of `size` contiguous values (inner = 1).
template <typename T, bool kLog>
[[gnu::noinline]] void softmax_backward_row(const T* __restrict__ dy, const T* __restrict__ y,
                                            T* __restrict__ dx, int64_t size) {
  const T total = static_cast<T>(
      row_sum<T>(size, [=](int64_t k) { return softmax_grad_term<T, kLog>(dy[k], y[k]); }));
#pragma omp simd
  for (int64_t k = 0; k < size; ++k) dx[k] = softmax_input_grad<T, kLog>(y[k], dy[k], total);
}

// Backward of `width` adjacent columns: element k of column j is at k * inner + j.
template <typename T, bool kLog>
[[gnu::noinline]] void softmax_backward_columns(const T* __restrict__ dy, const T* __restrict__ y,
                                                T* __restrict__ dx, int64_t size, int64_t inner,
                                                int64_t width) {
  double acc[kColumns];
  column_sums<T>(
      size, width,
      [=](int64_t k, int64_t j) {
        return softmax_grad_term<T, kLog>(dy[k * inner + j], y[k * inner + j]);
      },
      acc);
  T total[kColumns];
  for (int64_t j = 0; j < width; ++j) total[j] = static_cast<T>(acc[j]);
  for (int64_t k = 0; k < size; ++k) {
    const int64_t row = k * inner;
#pragma omp simd
    for (int64_t j = 0; j < width; ++j) {
      dx[row + j] = softmax_input_grad<T, kLog>(y[row + j], dy[row + j], total[j]);
    }
  }
}

template <typename T, bool kLog>
void softmax_forward(const Tensor& out, const Tensor& x, int64_t dim) {
  const SoftmaxLayout l(x, dim);
  const T* xp = static_cast<const T*>(x.data_ptr());
  T* op = static_cast<T*>(out.data_ptr());
  for_each_column_block(l, [&](int64_t offset, int64_t width) {
    if (l.inner == 1) {
      softmax_row<T, kLog>(xp + offset, op + offset, l.size);
    } else {
      softmax_columns<T, kLog>(xp + offset, op + offset, l.size, l.inner, width);
    }
  });
}

template <typename T, bool kLog>
void softmax_backward(const Tensor& grad_input, const Tensor& grad_output, const Tensor& output,
                      int64_t dim) {
  const SoftmaxLayout l(output, dim);
  const T* dyp = static_cast<const T*>(grad_output.data_ptr());
  const T* yp = static_cast<const T*>(output.data_ptr());
  T* dxp = static_cast<T*>(grad_input.data_ptr());
  for_each_column_block(l, [&](int64_t offset, int64_t width) {
    if (l.inner == 1) {
      softmax_backward_row<T, kLog>(dyp + offset, yp + offset, dxp + offset, l.size);
    } else {
      softmax_backward_columns<T, kLog>(dyp + offset, yp + offset, dxp + offset, l.size, l.inner,
                                        width);
    }
  });
}

// Checked before any thread starts, so that a bad target throws from the calling thread.
void check_targets(const Tensor& target, int64_t num_classes) {
  const int64_t* t = target.data<int64_t>();
  for (int64_t n = 0; n < target.numel(); ++n) {
    OMPQ_CHECK(t[n] >= 0 && t[n] < num_classes, "cross_entropy: target ", t[n], " at batch index ",
               n, " is out of range for ", num_classes, " classes (expected 0..", num_classes - 1,
               ")");
  }
}

// One row's log-sum-exp (into *log_sum_exp) and smoothed loss, from one read of the logits.
template <typename T>
[[gnu::noinline]] double cross_entropy_row(const T* __restrict__ row, int64_t classes,
                                           int64_t target, double label_smoothing, T* log_sum_exp) {
  const T max = row_max(row, classes);
  const double sum_exp = row_sum<T>(classes, [=](int64_t c) { return softmax_exp(row[c], max); });
  const double sum_x = row_sum<T>(classes, [=](int64_t c) { return row[c]; });
  const double lse = max + std::log(sum_exp);
  *log_sum_exp = static_cast<T>(lse);
  return cross_entropy_row_loss(lse, row[target], sum_x / classes, label_smoothing);
}

template <typename T>
[[gnu::noinline]] void cross_entropy_grad_row(const T* __restrict__ row, T* __restrict__ grad,
                                              int64_t classes, int64_t target, T log_sum_exp, T ls,
                                              T scale) {
  const T smoothing_per_class = ls / static_cast<T>(classes);
#pragma omp simd
  for (int64_t c = 0; c < classes; ++c) {
    grad[c] = cross_entropy_grad(row[c], log_sum_exp, smoothing_per_class, scale);
  }
  grad[target] += cross_entropy_target_grad(ls, scale);
}

// The batch mean is summed in row order, so that it does not depend on the thread count.
template <typename T>
void cross_entropy_forward(const Tensor& loss, const Tensor& log_sum_exp, const Tensor& logits,
                           const Tensor& target, double label_smoothing) {
  const int64_t batch = logits.size(0), classes = logits.size(1);
  check_targets(target, classes);
  const T* xp = static_cast<const T*>(logits.data_ptr());
  const int64_t* tp = target.data<int64_t>();
  T* lse_p = static_cast<T*>(log_sum_exp.data_ptr());
  std::vector<double> row_loss(batch);
  const int64_t grain = std::max<int64_t>(1, kGrainElements / std::max<int64_t>(classes, 1));
  parallel_for(0, batch, grain, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      row_loss[n] = cross_entropy_row(xp + n * classes, classes, tp[n], label_smoothing, lse_p + n);
    }
  });
  double total = 0;
  for (double v : row_loss) total += v;
  *static_cast<T*>(loss.data_ptr()) = static_cast<T>(total / batch);
}

template <typename T>
void cross_entropy_backward(const Tensor& grad_logits, const Tensor& grad_loss,
                            const Tensor& logits, const Tensor& target, const Tensor& log_sum_exp,
                            double label_smoothing) {
  const int64_t batch = logits.size(0), classes = logits.size(1);
  const T* xp = static_cast<const T*>(logits.data_ptr());
  const int64_t* tp = target.data<int64_t>();
  const T* lse_p = static_cast<const T*>(log_sum_exp.data_ptr());
  T* gp = static_cast<T*>(grad_logits.data_ptr());
  const T scale =
      static_cast<T>(*static_cast<const T*>(grad_loss.data_ptr()) / static_cast<double>(batch));
  const T ls = static_cast<T>(label_smoothing);
  const int64_t grain = std::max<int64_t>(1, kGrainElements / std::max<int64_t>(classes, 1));
  parallel_for(0, batch, grain, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      cross_entropy_grad_row(xp + n * classes, gp + n * classes, classes, tp[n], lse_p[n], ls,
                             scale);
    }
  });
}

void softmax_kernel(const Tensor& out, const Tensor& x, int64_t dim, bool log) {
  OMPQ_DISPATCH_FLOATING(x.dtype(), log ? "log_softmax" : "softmax", [&] {
    if (log) {
      softmax_forward<scalar_t, true>(out, x, dim);
    } else {
      softmax_forward<scalar_t, false>(out, x, dim);
    }
  });
}

void softmax_backward_kernel(const Tensor& grad_input, const Tensor& grad_output,
                             const Tensor& output, int64_t dim, bool log) {
  OMPQ_DISPATCH_FLOATING(output.dtype(), log ? "log_softmax_backward" : "softmax_backward", [&] {
    if (log) {
      softmax_backward<scalar_t, true>(grad_input, grad_output, output, dim);
    } else {
      softmax_backward<scalar_t, false>(grad_input, grad_output, output, dim);
    }
  });
}

void cross_entropy_kernel(const Tensor& loss, const Tensor& log_sum_exp, const Tensor& logits,
                          const Tensor& target, double label_smoothing) {
  OMPQ_DISPATCH_FLOATING(logits.dtype(), "cross_entropy", [&] {
    cross_entropy_forward<scalar_t>(loss, log_sum_exp, logits, target, label_smoothing);
  });
}

void cross_entropy_backward_kernel(const Tensor& grad_logits, const Tensor& grad_loss,
                                   const Tensor& logits, const Tensor& target,
                                   const Tensor& log_sum_exp, double label_smoothing) {
  OMPQ_DISPATCH_FLOATING(logits.dtype(), "cross_entropy_backward", [&] {
    cross_entropy_backward<scalar_t>(grad_logits, grad_loss, logits, target, log_sum_exp,
                                     label_smoothing);
  });
}

}  // namespace

void register_softmax_kernels() {
  softmax_stub.register_kernel(DeviceType::kCPU, softmax_kernel);
  softmax_backward_stub.register_kernel(DeviceType::kCPU, softmax_backward_kernel);
  cross_entropy_stub.register_kernel(DeviceType::kCPU, cross_entropy_kernel);
  cross_entropy_backward_stub.register_kernel(DeviceType::kCPU, cross_entropy_backward_kernel);
}

}  // namespace ompq::cpu
