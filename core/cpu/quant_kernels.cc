// CPU quantization kernels. Every tensor is a contiguous [outer, C, inner] array; a row is the
// `inner` elements that share one channel's scale and zero point. Work is split into fixed
// segments of rows (or of a long row), so that the loops over a segment run with constant
// parameters and vectorize, and reductions add fixed partial sums in a fixed order: results do not
// depend on the thread count.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/code_dtype.h"
#include "core/cpu/register.h"
#include "core/ops/quant.h"
#include "core/ops/quant_math.h"
#include "core/parallel.h"

namespace ompq::cpu {
namespace {

constexpr int64_t kSegment = 8192;  // elements per work item

// Calls fn(row, item, begin, end) for every segment [begin, end) of a row (offsets within the
// row; `item` numbers the segments of the whole array in order), on all threads.
template <typename Fn>
void for_each_segment(const ChannelLayout& layout, const Fn& fn) {
  const int64_t rows = layout.outer * layout.channels;
  const int64_t segments_per_row = (layout.inner + kSegment - 1) / kSegment;
  parallel_for(0, rows * segments_per_row, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t item = lo; item < hi; ++item) {
      const int64_t row = item / segments_per_row;
      const int64_t begin = (item % segments_per_row) * kSegment;
      fn(row, item, begin, std::min(layout.inner, begin + kSegment));
    }
  });
}

template <typename T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.data_ptr()) : nullptr;
}

// out[i] = element(x[i], scale, zero point, qmin, qmax) with row channel c's scale and zero point:
// the loop shared by fake-quantization (Out = T) and quantization to integer codes.
template <typename T, typename Out, typename Element>
void map_per_channel(const Tensor& out, const Tensor& x, const Tensor& scale,
                     const Tensor& zero_point, const ChannelLayout& layout, QuantRange range,
                     Element element) {
  const T* __restrict__ src = static_cast<const T*>(x.data_ptr());
  Out* __restrict__ dst = static_cast<Out*>(out.data_ptr());
  const T* s = static_cast<const T*>(scale.data_ptr());
  const T* z = data_or_null<T>(zero_point);
  const T qmin = static_cast<T>(range.qmin), qmax = static_cast<T>(range.qmax);
  for_each_segment(layout, [&](int64_t row, int64_t, int64_t begin, int64_t end) {
    const int64_t c = row % layout.channels;
    const T sc = s[c], zp = z ? z[c] : T(0);
    const T* __restrict__ xr = src + row * layout.inner;
    Out* __restrict__ yr = dst + row * layout.inner;
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      yr[i] = static_cast<Out>(element(xr[i], sc, zp, qmin, qmax));
    }
  });
}

// grad_input per element and, per segment, the double sum of the scale gradient; the segment sums
// are then added per channel in segment order.
template <typename T>
void fake_quantize_backward_impl(const Tensor& grad_input, const Tensor& grad_scale,
                                 const Tensor& grad_output, const Tensor& x, const Tensor& scale,
                                 const Tensor& zero_point, const ChannelLayout& layout,
                                 QuantRange range, bool clip) {
  const T* __restrict__ g = static_cast<const T*>(grad_output.data_ptr());
  const T* __restrict__ src = static_cast<const T*>(x.data_ptr());
  T* __restrict__ gx = grad_input.defined() ? static_cast<T*>(grad_input.data_ptr()) : nullptr;
  const T* s = static_cast<const T*>(scale.data_ptr());
  const T* z = data_or_null<T>(zero_point);
  const T qmin = static_cast<T>(range.qmin), qmax = static_cast<T>(range.qmax);
  const int64_t segments_per_row = (layout.inner + kSegment - 1) / kSegment;
  std::vector<double> partial(
      grad_scale.defined() ? layout.outer * layout.channels * segments_per_row : 0);
  for_each_segment(layout, [&](int64_t row, int64_t item, int64_t begin, int64_t end) {
    const int64_t c = row % layout.channels;
    const T sc = s[c], zp = z ? z[c] : T(0);
    const T* __restrict__ gr = g + row * layout.inner;
    const T* __restrict__ xr = src + row * layout.inner;
    if (gx != nullptr) {
      T* __restrict__ gxr = gx + row * layout.inner;
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) {
        gxr[i] = fake_quantize_grads(gr[i], xr[i], sc, zp, qmin, qmax, clip).input;
      }
    }
    if (!partial.empty()) {
      double sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t i = begin; i < end; ++i) {
        sum +=
            static_cast<double>(fake_quantize_grads(gr[i], xr[i], sc, zp, qmin, qmax, clip).scale);
      }
      partial[item] = sum;
    }
  });
  if (partial.empty()) return;
  T* gs = static_cast<T*>(grad_scale.data_ptr());
  std::vector<double> per_channel(layout.channels, 0.0);
  for (int64_t item = 0; item < static_cast<int64_t>(partial.size()); ++item) {
    per_channel[(item / segments_per_row) % layout.channels] += partial[item];
  }
  for (int64_t c = 0; c < layout.channels; ++c) gs[c] = static_cast<T>(per_channel[c]);
}

// The double sum of fake_quantize_lp_error over x[0, n). A function of its own, with its
// parameters in registers: inlined into the kernel's lambda, GCC kept the loop scalar.
template <typename T>
double lp_error_sum(const T* __restrict__ x, int64_t n, T scale, T zero_point, T qmin, T qmax,
                    T p) {
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) {
    sum += static_cast<double>(fake_quantize_lp_error(x[i], scale, zero_point, qmin, qmax, p));
  }
  return sum;
}

// Per segment, the K candidates' error sums in double (each candidate re-reads the segment, which
// stays in cache); then per channel in segment order.
template <typename T>
void fake_quantize_error_impl(const Tensor& errors, const Tensor& x, const Tensor& scales,
                              const Tensor& zero_points, const ChannelLayout& layout,
                              QuantRange range, double p) {
  const T* __restrict__ src = static_cast<const T*>(x.data_ptr());
  const T* s = static_cast<const T*>(scales.data_ptr());
  const T* z = data_or_null<T>(zero_points);
  const int64_t candidates = scales.size(0), channels = layout.channels;
  const T qmin = static_cast<T>(range.qmin), qmax = static_cast<T>(range.qmax);
  const T power = static_cast<T>(p);
  const int64_t segments_per_row = (layout.inner + kSegment - 1) / kSegment;
  const int64_t items = layout.outer * channels * segments_per_row;
  std::vector<double> partial(items * candidates);
  for_each_segment(layout, [&](int64_t row, int64_t item, int64_t begin, int64_t end) {
    const int64_t c = row % channels;
    const T* __restrict__ xr = src + row * layout.inner;
    for (int64_t k = 0; k < candidates; ++k) {
      const T sc = s[k * channels + c], zp = z ? z[k * channels + c] : T(0);
      partial[item * candidates + k] =
          lp_error_sum(xr + begin, end - begin, sc, zp, qmin, qmax, power);
    }
  });
  double* out = static_cast<double*>(errors.data_ptr());
  std::fill(out, out + candidates * channels, 0.0);
  for (int64_t item = 0; item < items; ++item) {
    const int64_t c = (item / segments_per_row) % channels;
    for (int64_t k = 0; k < candidates; ++k)
      out[k * channels + c] += partial[item * candidates + k];
  }
}

template <typename T, typename Code>
void dequantize_impl(const Tensor& out, const Tensor& codes, const Tensor& scale,
                     const Tensor& zero_point, const Tensor& bias, const ChannelLayout& layout) {
  const Code* __restrict__ src = static_cast<const Code*>(codes.data_ptr());
  T* __restrict__ dst = static_cast<T*>(out.data_ptr());
  const T* s = static_cast<const T*>(scale.data_ptr());
  const T* z = data_or_null<T>(zero_point);
  const T* b = data_or_null<T>(bias);
  for_each_segment(layout, [&](int64_t row, int64_t, int64_t begin, int64_t end) {
    const int64_t c = row % layout.channels;
    const T sc = s[c], zp = z ? z[c] : T(0), bc = b ? b[c] : T(0);
    const Code* __restrict__ qr = src + row * layout.inner;
    T* __restrict__ yr = dst + row * layout.inner;
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      yr[i] = dequantize_value(static_cast<T>(qr[i]), sc, zp) + bc;
    }
  });
}

template <typename Code>
void requantize_impl(const Tensor& codes, const Tensor& acc, const Tensor& multiplier,
                     const Tensor& offset, int64_t zero_point, const ChannelLayout& layout,
                     QuantRange range) {
  const int32_t* __restrict__ src = static_cast<const int32_t*>(acc.data_ptr());
  Code* __restrict__ dst = static_cast<Code*>(codes.data_ptr());
  const float* m = static_cast<const float*>(multiplier.data_ptr());
  const float* o = data_or_null<float>(offset);
  const float zp = static_cast<float>(zero_point);
  const float qmin = static_cast<float>(range.qmin), qmax = static_cast<float>(range.qmax);
  for_each_segment(layout, [&](int64_t row, int64_t, int64_t begin, int64_t end) {
    const int64_t c = row % layout.channels;
    const float mc = m[c], oc = o ? o[c] : 0.0f;
    const int32_t* __restrict__ ar = src + row * layout.inner;
    Code* __restrict__ qr = dst + row * layout.inner;
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      qr[i] = static_cast<Code>(requantize_value(ar[i], mc, oc, zp, qmin, qmax));
    }
  });
}

void fake_quantize_kernel(const Tensor& out, const Tensor& x, const Tensor& scale,
                          const Tensor& zero_point, const ChannelLayout& layout, QuantRange range) {
  OMPQ_DISPATCH_FLOATING(x.dtype(), "fake_quantize", [&] {
    map_per_channel<scalar_t, scalar_t>(
        out, x, scale, zero_point, layout, range,
        [](scalar_t v, scalar_t sc, scalar_t zp, scalar_t lo, scalar_t hi) {
          return fake_quantize_value(v, sc, zp, lo, hi);
        });
  });
}

void fake_quantize_error_kernel(const Tensor& errors, const Tensor& x, const Tensor& scales,
                                const Tensor& zero_points, const ChannelLayout& layout,
                                QuantRange range, double p) {
  OMPQ_DISPATCH_FLOATING(x.dtype(), "fake_quantize_error", [&] {
    fake_quantize_error_impl<scalar_t>(errors, x, scales, zero_points, layout, range, p);
  });
}

void fake_quantize_backward_kernel(const Tensor& grad_input, const Tensor& grad_scale,
                                   const Tensor& grad_output, const Tensor& x, const Tensor& scale,
                                   const Tensor& zero_point, const ChannelLayout& layout,
                                   QuantRange range, bool clip) {
  OMPQ_DISPATCH_FLOATING(x.dtype(), "fake_quantize_backward", [&] {
    fake_quantize_backward_impl<scalar_t>(grad_input, grad_scale, grad_output, x, scale, zero_point,
                                          layout, range, clip);
  });
}

void quantize_kernel(const Tensor& codes, const Tensor& x, const Tensor& scale,
                     const Tensor& zero_point, const ChannelLayout& layout, QuantRange range) {
  OMPQ_DISPATCH_FLOATING(x.dtype(), "quantize", [&] {
    dispatch_code_dtype(codes.dtype(), "quantize", [&](auto code) {
      map_per_channel<scalar_t, decltype(code)>(
          codes, x, scale, zero_point, layout, range,
          [](scalar_t v, scalar_t sc, scalar_t zp, scalar_t lo, scalar_t hi) {
            return quantize_value(v, sc, zp, lo, hi);
          });
    });
  });
}

void dequantize_kernel(const Tensor& out, const Tensor& codes, const Tensor& scale,
                       const Tensor& zero_point, const Tensor& bias, const ChannelLayout& layout) {
  OMPQ_DISPATCH_FLOATING(out.dtype(), "dequantize", [&] {
    dispatch_code_dtype(codes.dtype(), "dequantize", [&](auto code) {
      dequantize_impl<scalar_t, decltype(code)>(out, codes, scale, zero_point, bias, layout);
    });
  });
}

void requantize_kernel(const Tensor& codes, const Tensor& acc, const Tensor& multiplier,
                       const Tensor& offset, int64_t zero_point, const ChannelLayout& layout,
                       QuantRange range) {
  dispatch_code_dtype(codes.dtype(), "requantize", [&](auto code) {
    requantize_impl<decltype(code)>(codes, acc, multiplier, offset, zero_point, layout, range);
  });
}

}  // namespace

void register_quant_kernels() {
  fake_quantize_stub.register_kernel(DeviceType::kCPU, fake_quantize_kernel);
  fake_quantize_error_stub.register_kernel(DeviceType::kCPU, fake_quantize_error_kernel);
  fake_quantize_backward_stub.register_kernel(DeviceType::kCPU, fake_quantize_backward_kernel);
  quantize_stub.register_kernel(DeviceType::kCPU, quantize_kernel);
  dequantize_stub.register_kernel(DeviceType::kCPU, dequantize_kernel);
  requantize_stub.register_kernel(DeviceType::kCPU, requantize_kernel);
}

}  // namespace ompq::cpu
