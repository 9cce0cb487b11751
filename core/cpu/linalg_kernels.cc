// CPU matrix products: f32 on oneDNN's matmul (transposed operands described by their strides,
// bias fused), f64 on plain loops (gradient checks and the reference for the f32 path).
#include <algorithm>

#include "core/cpu/dnnl_context.h"
#include "core/cpu/register.h"
#include "core/ops/linalg.h"
#include "core/parallel.h"

namespace ompq::cpu {
namespace {

struct Matmul {
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul primitive;
};

dnnl::memory::desc bias_row_desc(int64_t n) {
  return dnnl::memory::desc({1, 1, n}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::abc);
}

void matmul_f32(const Tensor& out, const Tensor& a, const Tensor& w, const Tensor& bias) {
  static PrimitiveCache<Matmul> cache;
  PrimitiveKey key = {bias.defined()};
  append_layout(&key, a);
  append_layout(&key, w);
  const dnnl::memory::desc a_desc = dnnl_desc(a), w_desc = dnnl_desc(w), out_desc = dnnl_desc(out);
  const int64_t n = out.size(2);
  const Matmul& mm = cache.get(key, [&] {
    auto desc = bias.defined() ? dnnl::matmul::desc(a_desc, w_desc, bias_row_desc(n), out_desc)
                               : dnnl::matmul::desc(a_desc, w_desc, out_desc);
    dnnl::matmul::primitive_desc pd(desc, primitive_attr(), dnnl_engine());
    return Matmul{pd, dnnl::matmul(pd)};
  });
  std::unordered_map<int, dnnl::memory> args = {{DNNL_ARG_SRC, dnnl_memory(a_desc, a)},
                                                {DNNL_ARG_WEIGHTS, dnnl_memory(w_desc, w)},
                                                {DNNL_ARG_DST, dnnl_memory(out_desc, out)}};
  if (bias.defined()) args[DNNL_ARG_BIAS] = dnnl_memory(bias_row_desc(n), bias);
  Tensor scratchpad;
  add_scratchpad(mm.pd, &args, &scratchpad);
  mm.primitive.execute(dnnl_stream(), args);
}

// out[b, i, :] = bias + sum_k a[b, i, k] * w[b, k, :], rows of out split across threads.
template <typename T>
void matmul_loops(const Tensor& out, const Tensor& a, const Tensor& w, const Tensor& bias) {
  const int64_t batches = out.size(0), m = out.size(1), n = out.size(2), k = a.size(2);
  const T* A = a.data<T>();
  const T* W = w.data<T>();
  const T* bias_data = bias.defined() ? bias.data<T>() : nullptr;
  T* O = out.data<T>();
  const int64_t as0 = a.stride(0), as1 = a.stride(1), as2 = a.stride(2);
  const int64_t ws0 = w.stride(0), ws1 = w.stride(1), ws2 = w.stride(2);
  // Tiny products (gradient checks) stay on one thread: waking the pool costs more than they do.
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, n * k));
  parallel_for(0, batches * m, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row) {
      const int64_t b = row / m, i = row % m;
      T* o = O + row * n;
      for (int64_t j = 0; j < n; ++j) o[j] = bias_data ? bias_data[j] : T(0);
      for (int64_t kk = 0; kk < k; ++kk) {
        const T aik = A[b * as0 + i * as1 + kk * as2];
        const T* wk = W + b * ws0 + kk * ws1;
        for (int64_t j = 0; j < n; ++j) o[j] += aik * wk[j * ws2];
      }
    }
  });
}

void matmul_kernel(const Tensor& out, const Tensor& a, const Tensor& w, const Tensor& bias) {
  OMPQ_DISPATCH_FLOATING(a.dtype(), "matmul", [&] {
    if constexpr (std::is_same_v<scalar_t, float>)
      matmul_f32(out, a, w, bias);
    else
      matmul_loops<scalar_t>(out, a, w, bias);
  });
}

}  // namespace

void register_linalg_kernels() { matmul_stub.register_kernel(DeviceType::kCPU, matmul_kernel); }

}  // namespace ompq::cpu
