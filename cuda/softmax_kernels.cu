// CUDA softmax, log-softmax and cross-entropy, forward and backward, with the CPU kernels'
// numerics: the per-element formulas (including the f32 exp polynomial) are
// core/ops/softmax_math.h's, sums along the softmax dim accumulate T-valued terms in double, and
// the scalars derived from them (1 / sum, log(sum), log-sum-exp) are formed in double and rounded
// to T as the CPU does.
//
// A softmax input is a contiguous [outer, size, inner] array, normalized along `size`:
//  - inner = 1 (the last dim): one block per row; threads read consecutive elements and combine
//    their partial max and sums through the block;
//  - inner > 1: one thread per (outer, inner) column, walking the column with stride `inner`, so
//    that a warp reads 32 adjacent columns at once.
// Cross-entropy (logits [N, C]) runs one block per row, then one block sums the row losses in a
// fixed order; its backward is one thread per logit. Results are deterministic.
#include <limits>
#include <vector>

#include "core/ops/softmax.h"
#include "core/ops/softmax_math.h"
#include "cuda/block_reduce.cuh"
#include "cuda/launch.cuh"
#include "cuda/launch_config.h"
#include "cuda/register.h"

namespace ompq::cuda {
namespace {

using softmax_launch::kRowThreads;

struct MaxOp {
  template <typename T>
  __device__ T operator()(T a, T b) const {
    return b > a ? b : a;
  }
};

struct SoftmaxLayout {
  int64_t outer = 1, size, inner = 1;

  SoftmaxLayout(const Tensor& t, int64_t dim) : size(t.dim() == 0 ? 1 : t.size(dim)) {
    for (int64_t d = 0; d < dim; ++d) outer *= t.size(d);
    for (int64_t d = dim + 1; d < t.dim(); ++d) inner *= t.size(d);
  }
};

// The summed term of the backward pass and the input gradient given the sum (softmax: dy * y and
// y * (dy - sum); log-softmax: dy and dy - exp(y) * sum).
template <bool kLog, typename T>
__device__ T backward_term(T dy, T y) {
  return kLog ? dy : dy * y;
}

template <bool kLog, typename T>
__device__ T input_grad(T y, T dy, T total) {
  return kLog ? log_softmax_grad(y, dy, total) : softmax_grad(y, dy, total);
}

// The per-row scalar of the forward pass from the sum of exps: log(sum) or 1 / sum.
template <bool kLog, typename T>
__device__ T row_factor(double sum) {
  return static_cast<T>(kLog ? log(sum) : 1.0 / sum);
}

template <bool kLog, typename T>
__device__ T forward_value(T x, T max, T factor) {
  return kLog ? log_softmax_value(x, max, factor) : softmax_exp(x, max) * factor;
}

// Rows of `size` contiguous values: block b normalizes rows b, b + gridDim.x, ...
template <bool kLog, typename T>
__global__ void softmax_rows_kernel(T* out, const T* x, int64_t rows, int64_t size) {
  __shared__ T shared_max[32];
  __shared__ double shared_sum[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* in = x + r * size;
    T max = -std::numeric_limits<T>::infinity();
    for (int64_t k = threadIdx.x; k < size; k += kRowThreads) max = MaxOp()(max, in[k]);
    max = block_allreduce(max, -std::numeric_limits<T>::infinity(), MaxOp(), shared_max);
    double sum = 0;
    for (int64_t k = threadIdx.x; k < size; k += kRowThreads) sum += softmax_exp(in[k], max);
    sum = block_allreduce(sum, 0.0, SumOp(), shared_sum);
    const T factor = row_factor<kLog, T>(sum);
    for (int64_t k = threadIdx.x; k < size; k += kRowThreads) {
      out[r * size + k] = forward_value<kLog>(in[k], max, factor);
    }
  }
}

// Columns: thread t normalizes column t of [outer, size, inner] (element k at k * inner).
template <bool kLog, typename T>
struct SoftmaxColumns {
  T* out;
  const T* x;
  int64_t size, inner;
  template <typename index_t>
  __device__ void operator()(index_t column, const index_t*) const {
    const index_t o = column / static_cast<index_t>(inner);
    const int64_t base = static_cast<int64_t>(o) * size * inner + (column - o * inner);
    T max = -std::numeric_limits<T>::infinity();
    for (int64_t k = 0; k < size; ++k) max = MaxOp()(max, x[base + k * inner]);
    double sum = 0;
    for (int64_t k = 0; k < size; ++k) sum += softmax_exp(x[base + k * inner], max);
    const T factor = row_factor<kLog, T>(sum);
    for (int64_t k = 0; k < size; ++k) {
      out[base + k * inner] = forward_value<kLog>(x[base + k * inner], max, factor);
    }
  }
};

template <bool kLog, typename T>
__global__ void softmax_backward_rows_kernel(T* dx, const T* dy, const T* y, int64_t rows,
                                             int64_t size) {
  __shared__ double shared_sum[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t base = r * size;
    double sum = 0;
    for (int64_t k = threadIdx.x; k < size; k += kRowThreads) {
      sum += backward_term<kLog>(dy[base + k], y[base + k]);
    }
    const T total = static_cast<T>(block_allreduce(sum, 0.0, SumOp(), shared_sum));
    for (int64_t k = threadIdx.x; k < size; k += kRowThreads) {
      dx[base + k] = input_grad<kLog>(y[base + k], dy[base + k], total);
    }
  }
}

template <bool kLog, typename T>
struct SoftmaxBackwardColumns {
  T* dx;
  const T* dy;
  const T* y;
  int64_t size, inner;
  template <typename index_t>
  __device__ void operator()(index_t column, const index_t*) const {
    const index_t o = column / static_cast<index_t>(inner);
    const int64_t base = static_cast<int64_t>(o) * size * inner + (column - o * inner);
    double sum = 0;
    for (int64_t k = 0; k < size; ++k) {
      sum += backward_term<kLog>(dy[base + k * inner], y[base + k * inner]);
    }
    const T total = static_cast<T>(sum);
    for (int64_t k = 0; k < size; ++k) {
      const int64_t i = base + k * inner;
      dx[i] = input_grad<kLog>(y[i], dy[i], total);
    }
  }
};

unsigned row_blocks(int64_t rows) {
  return static_cast<unsigned>(softmax_launch::row_blocks(rows));
}

template <bool kLog, typename T>
void softmax_forward(const Tensor& out, const Tensor& x, int64_t dim) {
  const SoftmaxLayout l(x, dim);
  const int device = x.device().index;
  T* op = static_cast<T*>(out.data_ptr());
  const T* xp = static_cast<const T*>(x.data_ptr());
  if (l.inner == 1) {
    DeviceGuard guard(device);
    softmax_rows_kernel<kLog, T>
        <<<row_blocks(l.outer), kRowThreads, 0, default_stream(device).get()>>>(op, xp, l.outer,
                                                                                l.size);
    OMPQ_CUDA_CHECK_LAUNCH();
  } else {
    launch_contiguous(l.outer * l.inner, device, SoftmaxColumns<kLog, T>{op, xp, l.size, l.inner});
  }
}

template <bool kLog, typename T>
void softmax_backward(const Tensor& grad_input, const Tensor& grad_output, const Tensor& output,
                      int64_t dim) {
  const SoftmaxLayout l(output, dim);
  const int device = output.device().index;
  T* dxp = static_cast<T*>(grad_input.data_ptr());
  const T* dyp = static_cast<const T*>(grad_output.data_ptr());
  const T* yp = static_cast<const T*>(output.data_ptr());
  if (l.inner == 1) {
    DeviceGuard guard(device);
    softmax_backward_rows_kernel<kLog, T>
        <<<row_blocks(l.outer), kRowThreads, 0, default_stream(device).get()>>>(dxp, dyp, yp,
                                                                                l.outer, l.size);
    OMPQ_CUDA_CHECK_LAUNCH();
  } else {
    launch_contiguous(l.outer * l.inner, device,
                      SoftmaxBackwardColumns<kLog, T>{dxp, dyp, yp, l.size, l.inner});
  }
}

// ---- cross-entropy
// -------------------------------------------------------------------------------

// Row n: log_sum_exp[n] and row_loss[n] (double), from one block.
template <typename T>
__global__ void cross_entropy_rows_kernel(const T* logits, const int64_t* target, int64_t batch,
                                          int64_t classes, double label_smoothing, T* log_sum_exp,
                                          double* row_loss) {
  __shared__ T shared_max[32];
  __shared__ double shared_sum[32];
  for (int64_t n = blockIdx.x; n < batch; n += gridDim.x) {
    const T* row = logits + n * classes;
    T max = -std::numeric_limits<T>::infinity();
    for (int64_t c = threadIdx.x; c < classes; c += kRowThreads) max = MaxOp()(max, row[c]);
    max = block_allreduce(max, -std::numeric_limits<T>::infinity(), MaxOp(), shared_max);
    double sum_exp = 0, sum_x = 0;
    for (int64_t c = threadIdx.x; c < classes; c += kRowThreads) {
      sum_exp += softmax_exp(row[c], max);
      sum_x += row[c];
    }
    sum_exp = block_allreduce(sum_exp, 0.0, SumOp(), shared_sum);
    sum_x = block_allreduce(sum_x, 0.0, SumOp(), shared_sum);
    if (threadIdx.x == 0) {
      const double lse = max + log(sum_exp);
      log_sum_exp[n] = static_cast<T>(lse);
      row_loss[n] = cross_entropy_row_loss(lse, row[target[n]], sum_x / classes, label_smoothing);
    }
  }
}

// *loss = the mean of the row losses, summed by one block in a fixed order.
template <typename T>
__global__ void cross_entropy_mean_kernel(const double* row_loss, int64_t batch, T* loss) {
  __shared__ double shared_sum[32];
  double sum = 0;
  for (int64_t n = threadIdx.x; n < batch; n += kRowThreads) sum += row_loss[n];
  sum = block_allreduce(sum, 0.0, SumOp(), shared_sum);
  if (threadIdx.x == 0) *loss = static_cast<T>(sum / batch);
}

// grad[n, c] = d loss / d logits[n, c] (softmax_math.h), the incoming gradient read on the device.
template <typename T>
struct CrossEntropyGrad {
  T* grad;
  const T* logits;
  const int64_t* target;
  const T* log_sum_exp;
  const T* grad_loss;
  int64_t batch, classes;
  T label_smoothing;
  template <typename index_t>
  __device__ void operator()(index_t i, const index_t*) const {
    const index_t n = i / static_cast<index_t>(classes);
    const int64_t c = static_cast<int64_t>(i - n * static_cast<index_t>(classes));
    const T scale = static_cast<T>(*grad_loss / static_cast<double>(batch));
    const T smoothing_per_class = label_smoothing / static_cast<T>(classes);
    T g = cross_entropy_grad(logits[i], log_sum_exp[n], smoothing_per_class, scale);
    if (c == target[n]) g += cross_entropy_target_grad(label_smoothing, scale);
    grad[i] = g;
  }
};

// The targets are checked on the host, before any kernel reads them: the check waits for the
// device, but a bad class index then throws with the CPU's message instead of reading out of
// bounds.
void check_targets(const Tensor& target, int64_t num_classes) {
  const std::vector<int64_t> t = target.to_vector<int64_t>();
  for (size_t n = 0; n < t.size(); ++n) {
    OMPQ_CHECK(t[n] >= 0 && t[n] < num_classes, "cross_entropy: target ", t[n], " at batch index ",
               n, " is out of range for ", num_classes, " classes (expected 0..", num_classes - 1,
               ")");
  }
}

template <typename T>
void cross_entropy_forward(const Tensor& loss, const Tensor& log_sum_exp, const Tensor& logits,
                           const Tensor& target, double label_smoothing) {
  const int64_t batch = logits.size(0), classes = logits.size(1);
  check_targets(target, classes);
  const int device = logits.device().index;
  DeviceGuard guard(device);
  const cudaStream_t stream = default_stream(device).get();
  const Tensor row_loss = Tensor::empty({batch}, DType::kF64, logits.device());
  if (batch > 0) {
    cross_entropy_rows_kernel<T><<<row_blocks(batch), kRowThreads, 0, stream>>>(
        static_cast<const T*>(logits.data_ptr()), target.data<int64_t>(), batch, classes,
        label_smoothing, static_cast<T*>(log_sum_exp.data_ptr()), row_loss.data<double>());
    OMPQ_CUDA_CHECK_LAUNCH();
  }
  cross_entropy_mean_kernel<T><<<1, kRowThreads, 0, stream>>>(row_loss.data<double>(), batch,
                                                              static_cast<T*>(loss.data_ptr()));
  OMPQ_CUDA_CHECK_LAUNCH();
}

template <typename T>
void cross_entropy_backward(const Tensor& grad_logits, const Tensor& grad_loss,
                            const Tensor& logits, const Tensor& target, const Tensor& log_sum_exp,
                            double label_smoothing) {
  OMPQ_CHECK(grad_loss.device() == logits.device(), "cross_entropy_backward: grad_loss is on ",
             grad_loss.device().str(), ", the logits on ", logits.device().str());
  launch_contiguous(
      logits.numel(), logits.device().index,
      CrossEntropyGrad<T>{static_cast<T*>(grad_logits.data_ptr()),
                          static_cast<const T*>(logits.data_ptr()), target.data<int64_t>(),
                          static_cast<const T*>(log_sum_exp.data_ptr()),
                          static_cast<const T*>(grad_loss.data_ptr()), logits.size(0),
                          logits.size(1), static_cast<T>(label_smoothing)});
}

void softmax_kernel(const Tensor& out, const Tensor& x, int64_t dim, bool log) {
  OMPQ_DISPATCH_FLOATING(x.dtype(), log ? "log_softmax" : "softmax", [&] {
    if (log) {
      softmax_forward<true, scalar_t>(out, x, dim);
    } else {
      softmax_forward<false, scalar_t>(out, x, dim);
    }
  });
}

void softmax_backward_kernel(const Tensor& grad_input, const Tensor& grad_output,
                             const Tensor& output, int64_t dim, bool log) {
  OMPQ_DISPATCH_FLOATING(output.dtype(), log ? "log_softmax_backward" : "softmax_backward", [&] {
    if (log) {
      softmax_backward<true, scalar_t>(grad_input, grad_output, output, dim);
    } else {
      softmax_backward<false, scalar_t>(grad_input, grad_output, output, dim);
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
  softmax_stub.register_kernel(DeviceType::kCUDA, softmax_kernel);
  softmax_backward_stub.register_kernel(DeviceType::kCUDA, softmax_backward_kernel);
  cross_entropy_stub.register_kernel(DeviceType::kCUDA, cross_entropy_kernel);
  cross_entropy_backward_stub.register_kernel(DeviceType::kCUDA, cross_entropy_backward_kernel);
}

}  // namespace ompq::cuda
