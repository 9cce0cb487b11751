// CPU matrix products: f32 on oneDNN's matmul (transposed operands described by their strides,
// bias fused), and so bf16 where oneDNN has bf16 on this CPU (onednn_has_bf16; bf16 operands may
// give an f32 output); f16, and bf16 elsewhere, widened to f32 (oneDNN 2.6 has f16 matmul only on
// AVX512-FP16 CPUs and bf16 only on AVX-512 cores; widening is exact, and so are the products of
// two widened values, so the result is a tensor core's: exact products, f32 accumulation); f64 on
// plain loops (gradient checks and the reference for the oneDNN path).
#include <algorithm>

#include "absl/strings/str_cat.h"
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

// The bias as a [1, 1, n] row of the output's data type.
dnnl::memory::desc bias_row_desc(int64_t n, DType dtype) {
  return dnnl::memory::desc({1, 1, n}, dnnl_data_type(dtype), dnnl::memory::format_tag::abc);
}

void matmul_onednn(const Tensor& out, const Tensor& a, const Tensor& w, const Tensor& bias) {
  static PrimitiveCache<Matmul> cache;
  PrimitiveKey key = {bias.defined(), static_cast<int64_t>(a.dtype()),
                      static_cast<int64_t>(out.dtype())};
  append_layout(&key, a);
  append_layout(&key, w);
  const dnnl::memory::desc a_desc = dnnl_desc(a), w_desc = dnnl_desc(w), out_desc = dnnl_desc(out);
  const dnnl::memory::desc bias_desc = bias_row_desc(out.size(2), out.dtype());
  const Matmul& mm = cache.get(key, [&] {
    auto desc = bias.defined() ? dnnl::matmul::desc(a_desc, w_desc, bias_desc, out_desc)
                               : dnnl::matmul::desc(a_desc, w_desc, out_desc);
    dnnl::matmul::primitive_desc pd(desc, primitive_attr(), dnnl_engine());
    return Matmul{pd, dnnl::matmul(pd)};
  });
  std::unordered_map<int, dnnl::memory> args = {{DNNL_ARG_SRC, dnnl_memory(a_desc, a)},
                                                {DNNL_ARG_WEIGHTS, dnnl_memory(w_desc, w)},
                                                {DNNL_ARG_DST, dnnl_memory(out_desc, out)}};
  if (bias.defined()) args[DNNL_ARG_BIAS] = dnnl_memory(bias_desc, bias);
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

// f16 or bf16 operands widened to f32; a low-precision output is rounded once from the f32
// product.
void matmul_widened(const Tensor& out, const Tensor& a, const Tensor& w, const Tensor& bias) {
  const Tensor out32 = out.dtype() == DType::kF32 ? out : Tensor::empty(out.shape());
  matmul_onednn(out32, a.to(DType::kF32), w.to(DType::kF32),
                bias.defined() ? bias.to(DType::kF32) : Tensor());
  if (!out32.same(out)) Tensor(out).copy_(out32);
}

void matmul_kernel(const Tensor& out, const Tensor& a, const Tensor& w, const Tensor& bias) {
  switch (a.dtype()) {
    case DType::kBF16:
      if (!onednn_has_bf16()) return matmul_widened(out, a, w, bias);
      [[fallthrough]];
    case DType::kF32:
      return matmul_onednn(out, a, w, bias);
    case DType::kF16:
      return matmul_widened(out, a, w, bias);
    case DType::kF64:
      return matmul_loops<double>(out, a, w, bias);
    default:
      throw Error(absl::StrCat("matmul on CPU: unsupported dtype ", dtype_name(a.dtype()),
                               " (expected f32, f64, bf16 or f16)"));
  }
}

}  // namespace

void register_linalg_kernels() { matmul_stub.register_kernel(DeviceType::kCPU, matmul_kernel); }

}  // namespace ompq::cpu
