// CPU integer convolution: im2row of zero-point-centred int16 input codes, then int16 x int16 ->
// int32 dot products against the centred weight rows (a loop GCC turns into vpmaddwd). Work items
// are blocks of output positions of one image and group; each builds its own rows, so threads
// share nothing but the read-only centred weights.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/code_dtype.h"
#include "core/cpu/register.h"
#include "core/ops/integer.h"
#include "core/ops/quant.h"
#include "core/parallel.h"

namespace ompq::cpu {
namespace {

constexpr int64_t kRowBlock = 32;  // output positions per work item

// Dot products of one centred input row `a` with kBlock weight rows starting at `w` (row stride
// n): the row is read once for all of them and the horizontal sums are amortized.
constexpr int64_t kBlock = 4;

void dot4_i16(const int16_t* __restrict__ a, const int16_t* __restrict__ w, int64_t n,
              int32_t* out) {
  const int16_t* __restrict__ w0 = w;
  const int16_t* __restrict__ w1 = w + n;
  const int16_t* __restrict__ w2 = w + 2 * n;
  const int16_t* __restrict__ w3 = w + 3 * n;
  int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int64_t k = 0; k < n; ++k) {
    const int32_t x = a[k];
    s0 += x * w0[k];
    s1 += x * w1[k];
    s2 += x * w2[k];
    s3 += x * w3[k];
  }
  out[0] = s0;
  out[1] = s1;
  out[2] = s2;
  out[3] = s3;
}

int32_t dot_i16(const int16_t* __restrict__ a, const int16_t* __restrict__ b, int64_t n) {
  int32_t sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t k = 0; k < n; ++k) sum += static_cast<int32_t>(a[k]) * static_cast<int32_t>(b[k]);
  return sum;
}

// Writes the window of output position (oh, ow) of channels [c0, c0 + cg) of image `image`
// ([C, H, W] codes) as a centred row of cg * kh * kw values, in weight order (c, i, j).
template <typename Code>
void window_row(int16_t* row, const Code* image, int64_t c0, int64_t cg, int64_t height,
                int64_t width, int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                const Conv2dParams& p, int32_t zero_point) {
  const int64_t ih0 = oh * p.stride[0] - p.padding[0];
  const int64_t iw0 = ow * p.stride[1] - p.padding[1];
  for (int64_t c = 0; c < cg; ++c) {
    const Code* plane = image + (c0 + c) * height * width;
    for (int64_t i = 0; i < kh; ++i) {
      const int64_t ih = ih0 + i * p.dilation[0];
      const bool row_inside = ih >= 0 && ih < height;
      for (int64_t j = 0; j < kw; ++j) {
        const int64_t iw = iw0 + j * p.dilation[1];
        *row++ =
            (row_inside && iw >= 0 && iw < width)
                ? static_cast<int16_t>(static_cast<int32_t>(plane[ih * width + iw]) - zero_point)
                : int16_t{0};
      }
    }
  }
}

template <typename XCode, typename WCode>
void int_conv2d_impl(const Tensor& out, const Tensor& x, int64_t x_zero_point, const Tensor& w,
                     const Tensor& w_zero_point, const Conv2dParams& p) {
  const int64_t batch = x.size(0), channels = x.size(1), height = x.size(2), width = x.size(3);
  const int64_t out_channels = w.size(0), kh = w.size(2), kw = w.size(3);
  const int64_t out_h = out.size(2), out_w = out.size(3), positions = out_h * out_w;
  const int64_t groups = p.groups, cg = channels / groups, og = out_channels / groups;
  const int64_t k = cg * kh * kw;

  // Centred weights [O, K].
  std::vector<int16_t> weights(out_channels * k);
  const WCode* wsrc = static_cast<const WCode*>(w.data_ptr());
  const int32_t* wzp =
      w_zero_point.defined() ? static_cast<const int32_t*>(w_zero_point.data_ptr()) : nullptr;
  for (int64_t o = 0; o < out_channels; ++o) {
    const int32_t zp = wzp ? wzp[o] : 0;
    for (int64_t i = 0; i < k; ++i) {
      weights[o * k + i] = static_cast<int16_t>(static_cast<int32_t>(wsrc[o * k + i]) - zp);
    }
  }

  const XCode* xsrc = static_cast<const XCode*>(x.data_ptr());
  int32_t* dst = static_cast<int32_t*>(out.data_ptr());
  const int32_t xzp = static_cast<int32_t>(x_zero_point);
  const int64_t blocks = (positions + kRowBlock - 1) / kRowBlock;
  parallel_for(0, batch * groups * blocks, 1, [&](int64_t lo, int64_t hi) {
    std::vector<int16_t> rows(kRowBlock * k);
    for (int64_t item = lo; item < hi; ++item) {
      const int64_t n = item / (groups * blocks);
      const int64_t g = (item / blocks) % groups;
      const int64_t p0 = (item % blocks) * kRowBlock;
      const int64_t count = std::min(kRowBlock, positions - p0);
      const XCode* image = xsrc + n * channels * height * width;
      for (int64_t r = 0; r < count; ++r) {
        const int64_t pos = p0 + r;
        window_row(rows.data() + r * k, image, g * cg, cg, height, width, kh, kw, pos / out_w,
                   pos % out_w, p, xzp);
      }
      // Blocks of kBlock weight rows outside, so they stay in cache across the input rows.
      int32_t* y = dst + n * out_channels * positions + p0;
      const int64_t o_end = (g + 1) * og;
      int64_t o = g * og;
      for (; o + kBlock <= o_end; o += kBlock) {
        for (int64_t r = 0; r < count; ++r) {
          int32_t sums[kBlock];
          dot4_i16(rows.data() + r * k, weights.data() + o * k, k, sums);
          for (int64_t b = 0; b < kBlock; ++b) y[(o + b) * positions + r] = sums[b];
        }
      }
      for (; o < o_end; ++o) {
        for (int64_t r = 0; r < count; ++r) {
          y[o * positions + r] = dot_i16(rows.data() + r * k, weights.data() + o * k, k);
        }
      }
    }
  });
}

void int_conv2d_kernel(const Tensor& out, const Tensor& x, int64_t x_zero_point, const Tensor& w,
                       const Tensor& w_zero_point, const Conv2dParams& p) {
  dispatch_code_dtype(x.dtype(), "int_conv2d", [&](auto x_code) {
    dispatch_code_dtype(w.dtype(), "int_conv2d", [&](auto w_code) {
      int_conv2d_impl<decltype(x_code), decltype(w_code)>(out, x, x_zero_point, w, w_zero_point, p);
    });
  });
}

// The reference composition: unpacked codes (in the weight's order), int_conv2d, then requantize
// when asked.
void packed_conv2d_kernel(const Tensor& out, const Tensor& x, int64_t x_zero_point,
                          const PackedWeight& w, const Conv2dParams& p,
                          const std::optional<Requantization>& requant) {
  const Tensor codes = ops::unpack_weight_codes(w.packed, w.shape, w.bits, w.qmin,
                                                w.qmin < 0 ? DType::kI8 : DType::kU8);
  if (!requant) {
    int_conv2d_kernel(out, x, x_zero_point, codes, w.zero_point, p);
    return;
  }
  const Tensor acc = Tensor::empty(out.shape(), DType::kI32, out.device());
  int_conv2d_kernel(acc, x, x_zero_point, codes, w.zero_point, p);
  requantize_stub(out.device(), out, acc, requant->multiplier.contiguous(),
                  requant->offset.defined() ? requant->offset.contiguous() : Tensor(),
                  requant->zero_point,
                  ops::quant_layout(acc.shape(), requant->multiplier, Tensor(), 1, "packed_conv2d"),
                  requant->range);
}

}  // namespace

void register_integer_kernels() {
  int_conv2d_stub.register_kernel(DeviceType::kCPU, int_conv2d_kernel);
  packed_conv2d_stub.register_kernel(DeviceType::kCPU, packed_conv2d_kernel);
}

}  // namespace ompq::cpu
