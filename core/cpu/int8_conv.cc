// Int8Conv2d on oneDNN 2.6 (see core/ops/int8_conv.h): one int8 convolution primitive per input
// shape with the layer's scales baked in (AVX2's int8 kernels take no runtime output scales), the
// activation zero point passed at run time, and the weights reordered once per primitive.
#include "core/ops/int8_conv.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "core/cpu/dnnl_context.h"
#include "core/ops/memory_format.h"
#include "core/ops/quant_math.h"
#include "core/parallel.h"

namespace ompq {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using cpu::dnnl_engine;
using cpu::dnnl_stream;

// A split weight w = kSplitFactor * high + low.
constexpr int32_t kSplitFactor = 64;

// Whether oneDNN's int8 kernels use VNNI here (vpdpbusd sums four u8 x s8 products in int32,
// exactly); without it (AVX2) they use vpmaddubsw, whose int16 sum of two products saturates.
bool has_vnni() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx512_core_vnni:
    case dnnl::cpu_isa::avx512_core_bf16:
    case dnnl::cpu_isa::avx512_core_amx:
    case dnnl::cpu_isa::avx2_vnni:
      return true;
    default:
      return false;
  }
}

// Without VNNI, every input code times two weights within this bound fits int16 (255 * 128).
constexpr int32_t kAvx2ExactWeight = 64;

// oneDNN's type for codes (u8, i8) and real outputs (f32).
memory::data_type element_type(DType dtype) {
  switch (dtype) {
    case DType::kU8:
      return memory::data_type::u8;
    case DType::kI8:
      return memory::data_type::s8;
    default:
      return memory::data_type::f32;
  }
}

void check_vector(const Tensor& t, const char* what, DType dtype, int64_t length) {
  OMPQ_CHECK(t.defined() && t.dtype() == dtype && t.shape() == Shape{length} && t.device().is_cpu(),
             "Int8Conv2d: ", what, " of ",
             t.defined() ? dtype_name(t.dtype()) + std::string(" ") + shape_str(t.shape())
                         : std::string("undefined"),
             " (expected a CPU ", dtype_name(dtype), " [", length, "])");
}

// The smallest and largest of n bytes read as T (uint8_t or int8_t).
template <typename T>
std::pair<int32_t, int32_t> code_range(const T* codes, int64_t n) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<std::pair<int32_t, int32_t>> ranges(chunks);
  parallel_for(0, chunks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      T low = codes[c * kChunk], high = low;
      const int64_t end = std::min(n, (c + 1) * kChunk);
#pragma omp simd reduction(min : low) reduction(max : high)
      for (int64_t i = c * kChunk; i < end; ++i) {
        low = std::min(low, codes[i]);
        high = std::max(high, codes[i]);
      }
      ranges[c] = {low, high};
    }
  });
  std::pair<int32_t, int32_t> range = ranges[0];
  for (const auto& [low, high] : ranges) {
    range = {std::min(range.first, low), std::max(range.second, high)};
  }
  return range;
}

// The input as the primitive reads it: channels_last codes read as u8, their zero point and (when
// measured) their largest code.
struct PrimitiveInput {
  Tensor codes;  // u8, or s8 without negative codes (the same bytes)
  int32_t zero_point = 0;
  int32_t largest = 255;
};

// oneDNN 2.6's AVX2 int8 convolutions get two cases wrong when the source has a zero point
// (measured against ops::int_conv2d: s8 sources at every shape, and strided 1x1 convolutions over
// a batch), so the primitive sees neither: s8 codes become u8 ones (unchanged when none is
// negative, else + 128 with the zero point + 128: the centred values stay the same), and a 1x1
// convolution without padding reads the input subsampled by its stride and runs at stride 1.
// s8 inputs are always measured (to choose); u8 ones when `measure`.
PrimitiveInput primitive_input(const Tensor& x, int64_t x_zero_point, const Conv2dParams& layer,
                               const Conv2dParams& primitive, bool measure) {
  Tensor src = x;
  if (layer.stride != primitive.stride) {
    src = src.slice(2, 0, src.size(2), layer.stride[0]).slice(3, 0, src.size(3), layer.stride[1]);
  }
  src = in_memory_format(src, /*channels_last=*/true);
  PrimitiveInput in{src, static_cast<int32_t>(x_zero_point)};
  if (x.dtype() == DType::kU8) {
    if (measure)
      in.largest = code_range(static_cast<const uint8_t*>(src.data_ptr()), src.numel()).second;
    return in;
  }
  const auto [low, high] = code_range(static_cast<const int8_t*>(src.data_ptr()), src.numel());
  if (low >= 0 && x_zero_point >= 0) {
    in.largest = high;  // the bytes are their own u8 codes: the primitive reads them as they are
    return in;
  }
  in.codes = empty_nchw(src.shape(), /*channels_last=*/true, DType::kU8, src.device());
  in.zero_point += 128;
  in.largest = high + 128;
  const uint8_t* from = static_cast<const uint8_t*>(src.data_ptr());
  uint8_t* to = static_cast<uint8_t*>(in.codes.data_ptr());
  parallel_for(0, src.numel(), 1 << 16, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) to[i] = from[i] ^ 0x80;  // two's complement + 128
  });
  return in;
}

}  // namespace

struct Int8Conv2d::Impl {
  struct Part {
    Tensor weight;   // i8 [O, C/groups, kh, kw] (contiguous)
    int32_t factor;  // this part's accumulator counts `factor` times
  };
  struct Conv {
    dnnl::convolution_forward::primitive_desc pd;
    dnnl::convolution_forward primitive;
    memory weights;  // reordered for pd
  };
  // One input shape's primitives with their reordered weights.
  struct Entry {
    std::optional<Conv> whole;
    std::vector<Conv> split;
  };

  Shape weight_shape;
  Conv2dParams params;     // the layer's
  Conv2dParams primitive;  // what the primitive runs: stride 1 for a subsampled 1x1 (see source)
  int32_t largest_weight = 0;             // the largest |centred weight|
  bool whole_always_exact = false;        // the whole form is exact for every input
  std::optional<Part> whole;              // the centred weights, where they fit s8
  std::vector<Part> split;                // high and low parts, where the whole form may saturate
  std::vector<float> multiplier, offset;  // offset: empty when undefined
  Tensor scaled_bias;                     // offset / multiplier for the whole form, or undefined
  std::optional<Int8OutputCodes> output;
  std::optional<Int8Residual> residual;
  mutable cpu::PrimitiveCache<Entry> cache;

  DType out_dtype() const { return output ? code_dtype(output->range) : DType::kF32; }

  // Whether the whole form's primitive writes the outputs itself: always but for a residual added
  // to real outputs, which the combining pass adds (the sum post-op would need the shortcut as f32
  // in the output buffer, one more pass anyway).
  bool epilogue_in_primitive() const { return !residual || output; }

  // Whether u8 inputs up to `largest` run the split form: without VNNI, vpmaddubsw's int16 sum of
  // two products is exact while largest * 2 * |weight| fits.
  bool splits(int32_t largest) const {
    if (!whole) return true;
    return !whole_always_exact && 2 * largest_weight * largest > 32767;
  }

  memory::desc weights_desc(Tag tag) const {
    const Shape& s = weight_shape;
    const int64_t g = params.groups;
    return g == 1 ? memory::desc(s, memory::data_type::s8, tag)
                  : memory::desc({g, s[0] / g, s[1], s[2], s[3]}, memory::data_type::s8,
                                 tag == Tag::any ? Tag::any : Tag::goihw);
  }

  // The whole form's primitive carries the epilogue: output scales, bias (added before the scale
  // in oneDNN 2.6, hence divided by it), the shortcut (a sum post-op reading the output buffer's
  // codes with their scale and zero point), a clip to the output range when it is narrower than
  // the dtype, and the output zero point (added last). Split parts write plain int32.
  dnnl::primitive_attr attr(bool with_epilogue) const {
    dnnl::primitive_attr a = cpu::primitive_attr();
    a.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
    if (!with_epilogue) return a;
    a.set_output_scales(multiplier.size() > 1 ? 2 : 0, multiplier);
    if (output) {
      a.set_zero_points(DNNL_ARG_DST, 0, {DNNL_RUNTIME_S32_VAL});
      dnnl::post_ops ops;
      if (residual) {
        ops.append_sum(residual->scale, static_cast<int32_t>(residual->zero_point),
                       element_type(residual->dtype));
      }
      const QuantRange r = output->range;
      const bool full = out_dtype() == DType::kU8 ? (r.qmin <= 0 && r.qmax >= 255)
                                                  : (r.qmin <= -128 && r.qmax >= 127);
      if (!full) {
        ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip,
                           static_cast<float>(r.qmin - output->zero_point),
                           static_cast<float>(r.qmax - output->zero_point));
      }
      a.set_post_ops(ops);
    }
    return a;
  }

  Conv make_conv(const Tensor& x, const Shape& out_shape, const Part& part,
                 bool with_epilogue) const {
    const memory::desc src(x.shape(), memory::data_type::u8, Tag::nhwc);
    const memory::desc dst(
        out_shape, with_epilogue ? element_type(out_dtype()) : memory::data_type::s32, Tag::nhwc);
    const memory::desc bias({weight_shape[0]}, memory::data_type::f32, Tag::a);
    const Conv2dParams& p = primitive;
    const memory::dims strides = {p.stride[0], p.stride[1]};
    const memory::dims dilates = {p.dilation[0] - 1, p.dilation[1] - 1};
    const memory::dims padding = {p.padding[0], p.padding[1]};
    using Fwd = dnnl::convolution_forward;
    const auto desc =
        with_epilogue && scaled_bias.defined()
            ? Fwd::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                        src, weights_desc(Tag::any), bias, dst, strides, dilates, padding, padding)
            : Fwd::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                        src, weights_desc(Tag::any), dst, strides, dilates, padding, padding);
    Fwd::primitive_desc pd(desc, attr(with_epilogue), dnnl_engine());
    // The reorder also computes the compensation oneDNN keeps beside s8 weights.
    memory user(weights_desc(Tag::oihw), dnnl_engine(), part.weight.data_ptr());
    memory weights(pd.weights_desc(), dnnl_engine());
    dnnl::reorder(user, weights)
        .execute(dnnl_stream(), {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, weights}});
    return {pd, Fwd(pd), weights};
  }

  Entry make_entry(const Tensor& x, const Shape& out_shape) const {
    Entry entry;
    if (whole) entry.whole = make_conv(x, out_shape, *whole, epilogue_in_primitive());
    for (const Part& part : split) {
      entry.split.push_back(make_conv(x, out_shape, part, /*with_epilogue=*/false));
    }
    return entry;
  }

  void run(const Conv& conv, const Tensor& x, int32_t x_zero_point, const Tensor& out,
           bool with_epilogue) const {
    memory src(conv.pd.src_desc(), dnnl_engine(), x.data_ptr());
    memory dst(conv.pd.dst_desc(), dnnl_engine(), out.data_ptr());
    int32_t src_zp = x_zero_point;
    int32_t dst_zp = output ? static_cast<int32_t>(output->zero_point) : 0;
    const memory::desc scalar({1}, memory::data_type::s32, Tag::x);
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src},
        {DNNL_ARG_WEIGHTS, conv.weights},
        {DNNL_ARG_DST, dst},
        {DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, memory(scalar, dnnl_engine(), &src_zp)}};
    if (with_epilogue && output) {
      args[DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST] = memory(scalar, dnnl_engine(), &dst_zp);
    }
    if (with_epilogue && scaled_bias.defined()) {
      args[DNNL_ARG_BIAS] = memory(conv.pd.bias_desc(), dnnl_engine(), scaled_bias.data_ptr());
    }
    Tensor scratch;
    cpu::add_scratchpad(conv.pd, &args, &scratch);
    conv.primitive.execute(dnnl_stream(), args);
  }

  // The epilogue as a pass of its own (the split form, and residuals added to real outputs): acc =
  // sum of factor * part accumulator, then the reference's requantize_value (requantize_add_value
  // with a shortcut) or dequantize_value + bias (+ the shortcut's real value), per element of the
  // NHWC outputs. shortcut: channels_last codes of Shortcut's type, or null.
  template <typename Out, typename Shortcut>
  void combine(const std::vector<Tensor>& accs, const std::vector<int32_t>& factors,
               const Shortcut* shortcut, const Tensor& out) const {
    const int64_t channels = weight_shape[0], rows = out.numel() / channels;
    std::vector<const int32_t*> parts;
    for (const Tensor& acc : accs) parts.push_back(static_cast<const int32_t*>(acc.data_ptr()));
    Out* dst = static_cast<Out*>(out.data_ptr());
    const float* m = multiplier.data();
    const float* off = offset.empty() ? nullptr : offset.data();
    const float shortcut_scale = residual ? residual->scale : 0.0f;
    const float shortcut_zero_point = residual ? static_cast<float>(residual->zero_point) : 0.0f;
    parallel_for(0, rows, 64, [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        for (int64_t o = 0; o < channels; ++o) {
          const int64_t i = r * channels + o;
          int32_t acc = 0;
          for (size_t p = 0; p < parts.size(); ++p) acc += factors[p] * parts[p][i];
          const float b = off ? off[o] : 0.0f;
          const float added = shortcut ? dequantize_value(static_cast<float>(shortcut[i]),
                                                          shortcut_scale, shortcut_zero_point)
                                       : 0.0f;
          if constexpr (std::is_same_v<Out, float>) {
            dst[i] = dequantize_value(static_cast<float>(acc), m[o], 0.0f) + b + added;
          } else {
            const float zp = static_cast<float>(output->zero_point);
            const float qmin = static_cast<float>(output->range.qmin);
            const float qmax = static_cast<float>(output->range.qmax);
            dst[i] = static_cast<Out>(
                shortcut ? requantize_add_value(acc, m[o], b, added, zp, qmin, qmax)
                         : requantize_value(acc, m[o], b, zp, qmin, qmax));
          }
        }
      }
    });
  }

  template <typename Out>
  void combine(const std::vector<Tensor>& accs, const std::vector<int32_t>& factors,
               const Tensor& shortcut, const Tensor& out) const {
    if (!shortcut.defined()) {
      combine<Out, uint8_t>(accs, factors, nullptr, out);
    } else if (shortcut.dtype() == DType::kU8) {
      combine<Out>(accs, factors, static_cast<const uint8_t*>(shortcut.data_ptr()), out);
    } else {
      combine<Out>(accs, factors, static_cast<const int8_t*>(shortcut.data_ptr()), out);
    }
  }

  void combine(const std::vector<Tensor>& accs, const std::vector<int32_t>& factors,
               const Tensor& shortcut, const Tensor& out) const {
    switch (out_dtype()) {
      case DType::kF32:
        return combine<float>(accs, factors, shortcut, out);
      case DType::kU8:
        return combine<uint8_t>(accs, factors, shortcut, out);
      default:
        return combine<int8_t>(accs, factors, shortcut, out);
    }
  }
};

Int8Conv2d::Int8Conv2d(const Int8Conv2dSpec& spec) {
  auto impl = std::make_shared<Impl>();
  const Tensor& w = spec.weight_codes;
  OMPQ_CHECK(w.defined() && (w.dtype() == DType::kI8 || w.dtype() == DType::kU8) && w.dim() == 4 &&
                 w.device().is_cpu() && w.numel() > 0,
             "Int8Conv2d: weight codes of ",
             w.defined() ? dtype_name(w.dtype()) + std::string(" ") + shape_str(w.shape())
                         : std::string("undefined"),
             " (expected CPU i8 or u8 [O, C/groups, kh, kw])");
  const int64_t out_channels = w.size(0);
  const Conv2dParams& p = spec.params;
  OMPQ_CHECK(p.groups >= 1 && out_channels % p.groups == 0, "Int8Conv2d: ", out_channels,
             " output channels in ", p.groups, " groups");
  impl->weight_shape = w.shape();
  impl->params = p;
  impl->primitive = p;
  const bool pointwise = w.size(2) == 1 && w.size(3) == 1 && p.padding[0] == 0 && p.padding[1] == 0;
  if (pointwise) impl->primitive.stride = {1, 1};
  check_vector(spec.multiplier, "multiplier", DType::kF32, out_channels);
  impl->multiplier = spec.multiplier.contiguous().to_vector<float>();
  for (float m : impl->multiplier) {
    OMPQ_CHECK(std::isfinite(m) && m > 0, "Int8Conv2d: multiplier ", m, " (expected > 0)");
  }
  if (spec.offset.defined()) {
    check_vector(spec.offset, "offset", DType::kF32, out_channels);
    impl->offset = spec.offset.contiguous().to_vector<float>();
  }
  if (spec.output) {
    const QuantRange r = spec.output->range;
    OMPQ_CHECK(r.qmin < r.qmax && code_dtype(r) != DType::kI32 &&
                   spec.output->zero_point >= r.qmin && spec.output->zero_point <= r.qmax,
               "Int8Conv2d: output codes [", r.qmin, ", ", r.qmax, "] with zero point ",
               spec.output->zero_point, " (expected 8-bit codes containing the zero point)");
  }
  impl->output = spec.output;
  if (spec.residual) {
    const Int8Residual& r = *spec.residual;
    const int64_t r_lo = r.dtype == DType::kI8 ? -128 : 0;
    OMPQ_CHECK((r.dtype == DType::kU8 || r.dtype == DType::kI8) && r.zero_point >= r_lo &&
                   r.zero_point <= r_lo + 255 && std::isfinite(r.scale) && r.scale > 0,
               "Int8Conv2d: residual of ", dtype_name(r.dtype), " codes with zero point ",
               r.zero_point, " and scale ", r.scale,
               " (expected u8 or i8 codes, a zero point among them and a scale > 0)");
  }
  impl->residual = spec.residual;

  // Centred weights, and the split when they exceed what this CPU multiplies exactly.
  std::vector<int32_t> centred = w.contiguous().to(DType::kI32).to_vector<int32_t>();
  std::vector<int32_t> zero_points(out_channels, 0);
  if (spec.weight_zero_point.defined()) {
    check_vector(spec.weight_zero_point, "weight zero point", DType::kI32, out_channels);
    zero_points = spec.weight_zero_point.contiguous().to_vector<int32_t>();
  }
  const int64_t row = w.numel() / out_channels;
  int32_t lowest = 0, highest = 0, largest = 0;  // centred weights: min, max, max |.|
  for (int64_t o = 0; o < out_channels; ++o) {
    for (int64_t k = 0; k < row; ++k) {
      int32_t& c = centred[o * row + k];
      c -= zero_points[o];
      largest = std::max(largest, std::abs(c));
      lowest = std::min(lowest, c);
      highest = std::max(highest, c);
    }
  }
  const bool fits_s8 = lowest >= -128 && highest <= 127;
  OMPQ_CHECK(largest <= kSplitFactor * kAvx2ExactWeight,
             "Int8Conv2d: centred weight code of magnitude ", largest,
             " (weight zero points must keep codes - zero point within +-",
             kSplitFactor * kAvx2ExactWeight, ")");
  impl->largest_weight = largest;
  impl->whole_always_exact = fits_s8 && (has_vnni() || largest <= kAvx2ExactWeight);
  auto make_part = [&](auto&& value, int32_t factor) {
    std::vector<int8_t> codes(centred.size());
    for (size_t i = 0; i < centred.size(); ++i) codes[i] = static_cast<int8_t>(value(centred[i]));
    return Impl::Part{Tensor::from_vector(codes, w.shape()), factor};
  };
  if (fits_s8) {
    impl->whole = make_part([](int32_t c) { return c; }, 1);
    if (!impl->offset.empty()) {
      std::vector<float> scaled(out_channels);
      for (int64_t o = 0; o < out_channels; ++o) {
        scaled[o] = impl->offset[o] / impl->multiplier[o];
      }
      impl->scaled_bias = Tensor::from_vector(scaled, {out_channels});
    }
  }
  if (!impl->whole_always_exact) {
    auto high = [](int32_t c) {
      return static_cast<int32_t>(std::nearbyint(static_cast<double>(c) / kSplitFactor));
    };
    impl->split.push_back(make_part(high, kSplitFactor));
    impl->split.push_back(make_part([&](int32_t c) { return c - kSplitFactor * high(c); }, 1));
  }
  impl_ = std::move(impl);
}

bool Int8Conv2d::splits(int32_t largest_input_code) const {
  return impl_->splits(largest_input_code);
}

Tensor Int8Conv2d::forward(const Tensor& x, int64_t x_zero_point, const Tensor& residual) const {
  const Impl& impl = *impl_;
  OMPQ_CHECK(x.defined() && (x.dtype() == DType::kI8 || x.dtype() == DType::kU8) && x.dim() == 4 &&
                 x.device().is_cpu(),
             "Int8Conv2d: input of ",
             x.defined() ? dtype_name(x.dtype()) + std::string(" ") + shape_str(x.shape())
                         : std::string("undefined"),
             " (expected CPU i8 or u8 codes [N, C, H, W])");
  const int64_t x_lo = x.dtype() == DType::kI8 ? -128 : 0;
  OMPQ_CHECK(x_zero_point >= x_lo && x_zero_point <= x_lo + 255, "Int8Conv2d: input zero point ",
             x_zero_point, " is not a code of the input's dtype ", dtype_name(x.dtype()));
  const Shape out_shape = ops::conv2d_output_shape(x.shape(), impl.weight_shape,
                                                   impl.params);  // checks channels and geometry
  OMPQ_CHECK(residual.defined() == impl.residual.has_value(), "Int8Conv2d: ",
             residual.defined() ? "a residual given to a convolution without one"
                                : "no residual given to a convolution that adds one");
  Tensor shortcut;
  if (residual.defined()) {
    OMPQ_CHECK(residual.dtype() == impl.residual->dtype && residual.shape() == out_shape &&
                   residual.device().is_cpu(),
               "Int8Conv2d: residual of ", dtype_name(residual.dtype()), " ",
               shape_str(residual.shape()), " (expected CPU ", dtype_name(impl.residual->dtype),
               " codes ", shape_str(out_shape), ")");
    shortcut = in_memory_format(residual, /*channels_last=*/true);
  }
  Tensor out = empty_nchw(out_shape, /*channels_last=*/true, impl.out_dtype(), x.device());
  if (out.numel() == 0) return out;
  const bool measure = impl.whole && !impl.split.empty();
  const PrimitiveInput in = primitive_input(x, x_zero_point, impl.params, impl.primitive, measure);
  cpu::PrimitiveKey key;
  key.insert(key.end(), in.codes.shape().begin(), in.codes.shape().end());
  const Impl::Entry& entry =
      impl.cache.get(key, [&] { return impl.make_entry(in.codes, out_shape); });
  const bool whole = !impl.splits(in.largest);
  if (whole && impl.epilogue_in_primitive()) {
    if (shortcut.defined()) {
      // The sum post-op reads the shortcut from the output buffer (same size of code).
      const uint8_t* from = static_cast<const uint8_t*>(shortcut.data_ptr());
      uint8_t* to = static_cast<uint8_t*>(out.data_ptr());
      parallel_for(0, out.numel(), 1 << 16,
                   [&](int64_t lo, int64_t hi) { std::memcpy(to + lo, from + lo, hi - lo); });
    }
    impl.run(*entry.whole, in.codes, in.zero_point, out, /*with_epilogue=*/true);
    return out;
  }
  std::vector<Tensor> accs;
  std::vector<int32_t> factors;
  auto accumulate = [&](const Impl::Conv& conv, int32_t factor) {
    accs.push_back(empty_nchw(out_shape, /*channels_last=*/true, DType::kI32, x.device()));
    factors.push_back(factor);
    impl.run(conv, in.codes, in.zero_point, accs.back(), /*with_epilogue=*/false);
  };
  if (whole) {
    accumulate(*entry.whole, impl.whole->factor);
  } else {
    for (size_t p = 0; p < entry.split.size(); ++p) {
      accumulate(entry.split[p], impl.split[p].factor);
    }
  }
  impl.combine(accs, factors, shortcut, out);
  return out;
}

}  // namespace ompq
