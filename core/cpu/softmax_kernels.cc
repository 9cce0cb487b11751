// CPU softmax, log-softmax and cross-entropy. A softmax input is a contiguous [outer, size, inner]
// array; each task normalizes a block of up to kColumns adjacent inner columns of one outer index
// at once, so that for inner > 1 the loops run along memory, and inner = 1 (softmax over the last
// dim) is the same code with one column. Sums of exponentials are accumulated in double.
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
  int64_t grain() const { return std::max<int64_t>(1, kGrainElements / (size * std::min(inner, kColumns))); }
};

// Calls fn(offset, width) for the column blocks [b0, b1): `offset` is the element offset of the
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

template <typename T>
void softmax_forward(const Tensor& out, const Tensor& x, int64_t dim, bool log) {
  const SoftmaxLayout l(x, dim);
  const T* xp = static_cast<const T*>(x.data_ptr());
  T* op = static_cast<T*>(out.data_ptr());
  for_each_column_block(l, [&](int64_t offset, int64_t width) {
    const T* in = xp + offset;
    T* res = op + offset;
    T max[kColumns];
    double sum[kColumns];
    std::fill(max, max + width, -std::numeric_limits<T>::infinity());
    std::fill(sum, sum + width, 0.0);
    for (int64_t k = 0; k < l.size; ++k) {
      for (int64_t j = 0; j < width; ++j) max[j] = std::max(max[j], in[k * l.inner + j]);
    }
    for (int64_t k = 0; k < l.size; ++k) {
      for (int64_t j = 0; j < width; ++j) {
        const T e = softmax_exp(in[k * l.inner + j], max[j]);
        sum[j] += e;
        if (!log) res[k * l.inner + j] = e;  // normalized below
      }
    }
    T factor[kColumns];  // log: log(sum); softmax: 1 / sum
    for (int64_t j = 0; j < width; ++j) {
      factor[j] = static_cast<T>(log ? std::log(sum[j]) : 1.0 / sum[j]);
    }
    for (int64_t k = 0; k < l.size; ++k) {
      T* r = res + k * l.inner;
      const T* v = in + k * l.inner;
      if (log) {
        for (int64_t j = 0; j < width; ++j) r[j] = log_softmax_value(v[j], max[j], factor[j]);
      } else {
        for (int64_t j = 0; j < width; ++j) r[j] *= factor[j];
      }
    }
  });
}

// softmax: dx = y * (dy - sum(dy * y)); log_softmax: dx = dy - exp(y) * sum(dy).
template <typename T>
void softmax_backward(const Tensor& grad_input, const Tensor& grad_output, const Tensor& output,
                      int64_t dim, bool log) {
  const SoftmaxLayout l(output, dim);
  const T* dyp = static_cast<const T*>(grad_output.data_ptr());
  const T* yp = static_cast<const T*>(output.data_ptr());
  T* dxp = static_cast<T*>(grad_input.data_ptr());
  for_each_column_block(l, [&](int64_t offset, int64_t width) {
    const T* dy = dyp + offset;
    const T* y = yp + offset;
    T* dx = dxp + offset;
    double acc[kColumns];
    std::fill(acc, acc + width, 0.0);
    for (int64_t k = 0; k < l.size; ++k) {
      const int64_t row = k * l.inner;
      if (log) {
        for (int64_t j = 0; j < width; ++j) acc[j] += dy[row + j];
      } else {
        for (int64_t j = 0; j < width; ++j) acc[j] += static_cast<double>(dy[row + j]) * y[row + j];
      }
    }
    T total[kColumns];
    for (int64_t j = 0; j < width; ++j) total[j] = static_cast<T>(acc[j]);
    for (int64_t k = 0; k < l.size; ++k) {
      const int64_t row = k * l.inner;
      if (log) {
        for (int64_t j = 0; j < width; ++j) dx[row + j] = log_softmax_grad(y[row + j], dy[row + j], total[j]);
      } else {
        for (int64_t j = 0; j < width; ++j) dx[row + j] = softmax_grad(y[row + j], dy[row + j], total[j]);
      }
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

// Per row: log-sum-exp and the smoothed loss in one read of the logits; the batch mean is summed in
// row order so that it does not depend on the thread count.
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
      const T* row = xp + n * classes;
      const T max = *std::max_element(row, row + classes);
      double sum_exp = 0, sum_x = 0;
      for (int64_t c = 0; c < classes; ++c) {
        sum_exp += softmax_exp(row[c], max);
        sum_x += row[c];
      }
      const double lse = max + std::log(sum_exp);
      lse_p[n] = static_cast<T>(lse);
      row_loss[n] = cross_entropy_row_loss(lse, row[tp[n]], sum_x / classes, label_smoothing);
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
  const T scale = static_cast<T>(*static_cast<const T*>(grad_loss.data_ptr()) / static_cast<double>(batch));
  const T ls = static_cast<T>(label_smoothing);
  const T num_classes = static_cast<T>(classes);
  const int64_t grain = std::max<int64_t>(1, kGrainElements / std::max<int64_t>(classes, 1));
  parallel_for(0, batch, grain, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const T* row = xp + n * classes;
      T* g = gp + n * classes;
      for (int64_t c = 0; c < classes; ++c) {
        g[c] = cross_entropy_grad(row[c], lse_p[n], c == tp[n], ls, num_classes, scale);
      }
    }
  });
}

void softmax_kernel(const Tensor& out, const Tensor& x, int64_t dim, bool log) {
  OMPQ_DISPATCH_FLOATING(x.dtype(), log ? "log_softmax" : "softmax",
                         [&] { softmax_forward<scalar_t>(out, x, dim, log); });
}

void softmax_backward_kernel(const Tensor& grad_input, const Tensor& grad_output,
                             const Tensor& output, int64_t dim, bool log) {
  OMPQ_DISPATCH_FLOATING(output.dtype(), log ? "log_softmax_backward" : "softmax_backward", [&] {
    softmax_backward<scalar_t>(grad_input, grad_output, output, dim, log);
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
