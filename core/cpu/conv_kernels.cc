// CPU 2-D convolution. f32 runs on oneDNN (forward, backward data, backward weights + bias), with
// primitives cached per shape, parameters and data types; so does bf16 where oneDNN has bf16 on
// this CPU (onednn_has_bf16). bf16 operands may give f32 outputs and gradients (f32 accumulation
// either way). f16, and bf16 elsewhere, are widened to f32 and run the f32 primitives (see
// conv2d_forward_widened). f64 runs direct loops that serve finite-difference gradient checks and
// are the reference the oneDNN path is tested against. Activations are NCHW or channels_last (the
// tensors' strides say which); weights are contiguous [O, C/groups, kh, kw].
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/cpu/dnnl_context.h"
#include "core/cpu/register.h"
#include "core/ops/conv.h"
#include "core/parallel.h"

namespace ompq::cpu {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;

// ---- oneDNN (f32, bf16) -------------------------------------------------------------------------

// The layout oneDNN computes activations in. Measured with oneDNN 2.6 on AVX-512 at batch 32
// (ResNet-18 / MobileNetV2 shapes): for NCHW tensors, the blocked layouts that format `any`
// selects (nChw16c) beat plain NCHW (gemm-based) by 20-50% on 3x3 convolutions with many channels
// even after paying the reorders, while 1x1 convolutions and the few-channel first layer are
// faster on plain NCHW. Grouped and depthwise convolutions on plain NCHW fall back to per-group
// gemm, 20-200x slower in backward than blocked. channels_last tensors run as NHWC directly.
// OMPQ_CONV_LAYOUT=plain|blocked|nhwc forces one choice, for re-measuring this on another CPU.
enum class ComputeLayout : int64_t { kAsGiven, kBlocked, kNhwc };

ComputeLayout choose_layout(const Shape& x_shape, const Shape& w_shape, bool channels_last,
                            const Conv2dParams& p) {
  if (const char* forced = std::getenv("OMPQ_CONV_LAYOUT")) {  // for layout measurements
    if (std::strcmp(forced, "plain") == 0) return ComputeLayout::kAsGiven;
    if (std::strcmp(forced, "blocked") == 0) return ComputeLayout::kBlocked;
    if (std::strcmp(forced, "nhwc") == 0) return ComputeLayout::kNhwc;
  }
  if (channels_last) return ComputeLayout::kAsGiven;
  if (p.groups > 1) return ComputeLayout::kBlocked;
  const bool pointwise = w_shape[2] == 1 && w_shape[3] == 1;
  if (pointwise || x_shape[1] < 16) return ComputeLayout::kAsGiven;
  return ComputeLayout::kBlocked;
}

// The data types of one convolution: `compute` for x, the weights and (in backward) grad_out as
// the primitives read them; `result` for the output, the bias and the gradients.
struct ConvTypes {
  memory::data_type compute, result;
};

// A primitive's descriptor for tensor t (its dims; its strides when `layout` keeps them).
memory::desc compute_desc(const Tensor& t, ComputeLayout layout, memory::data_type type) {
  switch (layout) {
    case ComputeLayout::kBlocked:
      return memory::desc(t.shape(), type, Tag::any);
    case ComputeLayout::kNhwc:
      return memory::desc(t.shape(), type, Tag::nhwc);
    case ComputeLayout::kAsGiven:
      break;
  }
  return memory::desc(t.shape(), type, t.strides());
}

memory::desc user_weights_desc(const Tensor& w, int64_t groups) {
  return groups == 1 ? dnnl_desc(w) : dnnl_grouped_weights_desc(w, groups);
}

memory::desc any_weights_desc(const Tensor& w, int64_t groups, memory::data_type type) {
  const Shape& s = w.shape();
  memory::dims dims =
      groups == 1 ? memory::dims(s) : memory::dims{groups, s[0] / groups, s[1], s[2], s[3]};
  return memory::desc(dims, type, Tag::any);
}

memory::desc bias_desc(int64_t channels, memory::data_type type) {
  return memory::desc({channels}, type, Tag::a);
}

struct ConvGeometry {
  memory::dims strides, dilates, padding;
};

ConvGeometry geometry(const Conv2dParams& p) {
  // oneDNN counts dilation from 0; symmetric padding gives PyTorch's floor-mode output size.
  return {{p.stride[0], p.stride[1]},
          {p.dilation[0] - 1, p.dilation[1] - 1},
          {p.padding[0], p.padding[1]}};
}

dnnl::convolution_forward::primitive_desc forward_pd(const memory::desc& src,
                                                     const memory::desc& weights,
                                                     const memory::desc* bias,
                                                     const memory::desc& dst,
                                                     const ConvGeometry& g) {
  using Fwd = dnnl::convolution_forward;
  auto desc =
      bias ? Fwd::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, src,
                       weights, *bias, dst, g.strides, g.dilates, g.padding, g.padding)
           : Fwd::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, src,
                       weights, dst, g.strides, g.dilates, g.padding, g.padding);
  return Fwd::primitive_desc(desc, primitive_attr(), dnnl_engine());
}

// Each kind of primitive has its own cache; the layouts of the tensors not in the key follow from
// those in it (outputs take their inputs' memory format).
PrimitiveKey conv_key(ComputeLayout layout, const ConvTypes& types, const Tensor& activation,
                      const Tensor& other, const Shape& out_shape, bool with_bias,
                      const Conv2dParams& p) {
  PrimitiveKey key = {static_cast<int64_t>(layout), static_cast<int64_t>(types.compute),
                      static_cast<int64_t>(types.result), with_bias, p.groups};
  for (int i = 0; i < 2; ++i) {
    key.insert(key.end(), {p.stride[i], p.padding[i], p.dilation[i]});
  }
  append_layout(&key, activation);
  append_layout(&key, other);
  key.insert(key.end(), out_shape.begin(), out_shape.end());
  return key;
}

struct ConvForward {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward primitive;
};
struct ConvBackwardData {
  dnnl::convolution_backward_data::primitive_desc pd;
  dnnl::convolution_backward_data primitive;
};
struct ConvBackwardWeights {
  dnnl::convolution_backward_weights::primitive_desc pd;
  dnnl::convolution_backward_weights primitive;
};

void conv2d_forward_onednn(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                           const Conv2dParams& p) {
  static PrimitiveCache<ConvForward> cache;
  const ComputeLayout layout = choose_layout(x.shape(), w.shape(), is_channels_last(x), p);
  const ConvTypes types = {dnnl_data_type(x.dtype()), dnnl_data_type(out.dtype())};
  const memory::desc user_x = dnnl_desc(x), user_w = user_weights_desc(w, p.groups),
                     user_out = dnnl_desc(out), user_bias = bias_desc(w.size(0), types.result);
  const ConvForward& conv =
      cache.get(conv_key(layout, types, x, w, out.shape(), bias.defined(), p), [&] {
        auto pd = forward_pd(compute_desc(x, layout, types.compute),
                             any_weights_desc(w, p.groups, types.compute),
                             bias.defined() ? &user_bias : nullptr,
                             compute_desc(out, layout, types.result), geometry(p));
        return ConvForward{pd, dnnl::convolution_forward(pd)};
      });
  Tensor x_scratch, w_scratch, out_scratch;
  memory src = reorder_to(dnnl_memory(user_x, x), conv.pd.src_desc(), &x_scratch);
  memory weights = reorder_to(dnnl_memory(user_w, w), conv.pd.weights_desc(), &w_scratch);
  memory dst_user = dnnl_memory(user_out, out);
  memory dst = output_as(dst_user, conv.pd.dst_desc(), &out_scratch);
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
  if (bias.defined()) args[DNNL_ARG_BIAS] = dnnl_memory(user_bias, bias);
  Tensor scratchpad;
  add_scratchpad(conv.pd, &args, &scratchpad);
  conv.primitive.execute(dnnl_stream(), args);
  finish_output(dst, dst_user);
}

// grad_out as oneDNN memory, reordered (and converted to the compute type) at most once for the
// primitives that read it (backward data and backward weights usually want the same layout).
class SharedReorder {
 public:
  explicit SharedReorder(const Tensor& t) : tensor_(t), user_(dnnl_memory(dnnl_desc(t), t)) {}
  const Tensor& tensor() const { return tensor_; }
  memory as(const memory::desc& desc) {
    if (!converted_ || converted_.get_desc() != desc) {
      converted_ = reorder_to(user_, desc, &scratch_);
    }
    return converted_;
  }

 private:
  Tensor tensor_;
  memory user_, converted_;
  Tensor scratch_;
};

void conv2d_backward_data_onednn(const Tensor& grad_x, SharedReorder& grad_out, const Tensor& w,
                                 ComputeLayout layout, const ConvTypes& types,
                                 const Conv2dParams& p) {
  static PrimitiveCache<ConvBackwardData> cache;
  const memory::desc user_gx = dnnl_desc(grad_x), user_w = user_weights_desc(w, p.groups);
  const ConvBackwardData& conv =
      cache.get(conv_key(layout, types, grad_out.tensor(), w, grad_x.shape(), false, p), [&] {
        memory::desc gx = compute_desc(grad_x, layout, types.result),
                     gout = compute_desc(grad_out.tensor(), layout, types.compute),
                     wd = any_weights_desc(w, p.groups, types.compute);
        ConvGeometry g = geometry(p);
        // The hint is the forward convolution in the compute type, whose layouts backward follows.
        auto hint = forward_pd(compute_desc(grad_x, layout, types.compute), wd, nullptr, gout, g);
        dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, gx, wd,
                                                   gout, g.strides, g.dilates, g.padding,
                                                   g.padding);
        dnnl::convolution_backward_data::primitive_desc pd(desc, primitive_attr(), dnnl_engine(),
                                                           hint);
        return ConvBackwardData{pd, dnnl::convolution_backward_data(pd)};
      });
  Tensor w_scratch, gx_scratch;
  memory weights = reorder_to(dnnl_memory(user_w, w), conv.pd.weights_desc(), &w_scratch);
  memory diff_src_user = dnnl_memory(user_gx, grad_x);
  memory diff_src = output_as(diff_src_user, conv.pd.diff_src_desc(), &gx_scratch);
  std::unordered_map<int, memory> args = {{DNNL_ARG_DIFF_DST, grad_out.as(conv.pd.diff_dst_desc())},
                                          {DNNL_ARG_WEIGHTS, weights},
                                          {DNNL_ARG_DIFF_SRC, diff_src}};
  Tensor scratchpad;
  add_scratchpad(conv.pd, &args, &scratchpad);
  conv.primitive.execute(dnnl_stream(), args);
  finish_output(diff_src, diff_src_user);
}

void conv2d_backward_weights_onednn(const Tensor& grad_w, const Tensor& grad_bias,
                                    SharedReorder& grad_out, const Tensor& x, ComputeLayout layout,
                                    const ConvTypes& types, const Conv2dParams& p) {
  static PrimitiveCache<ConvBackwardWeights> cache;
  const bool with_bias = grad_bias.defined();
  const memory::desc user_x = dnnl_desc(x), user_gw = user_weights_desc(grad_w, p.groups),
                     user_gb = bias_desc(grad_w.size(0), types.result);
  const ConvBackwardWeights& conv =
      cache.get(conv_key(layout, types, x, grad_out.tensor(), grad_w.shape(), with_bias, p), [&] {
        memory::desc src = compute_desc(x, layout, types.compute),
                     gout = compute_desc(grad_out.tensor(), layout, types.compute),
                     gw = any_weights_desc(grad_w, p.groups, types.result), gb = user_gb,
                     hint_bias = bias_desc(grad_w.size(0), types.compute);
        ConvGeometry g = geometry(p);
        auto hint = forward_pd(src, any_weights_desc(grad_w, p.groups, types.compute),
                               with_bias ? &hint_bias : nullptr, gout, g);
        using Bwd = dnnl::convolution_backward_weights;
        auto desc = with_bias ? Bwd::desc(dnnl::algorithm::convolution_direct, src, gw, gb, gout,
                                          g.strides, g.dilates, g.padding, g.padding)
                              : Bwd::desc(dnnl::algorithm::convolution_direct, src, gw, gout,
                                          g.strides, g.dilates, g.padding, g.padding);
        Bwd::primitive_desc pd(desc, primitive_attr(), dnnl_engine(), hint);
        return ConvBackwardWeights{pd, Bwd(pd)};
      });
  Tensor x_scratch, gw_scratch;
  memory src = reorder_to(dnnl_memory(user_x, x), conv.pd.src_desc(), &x_scratch);
  memory diff_w_user = dnnl_memory(user_gw, grad_w);
  memory diff_w = output_as(diff_w_user, conv.pd.diff_weights_desc(), &gw_scratch);
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src},
                                          {DNNL_ARG_DIFF_DST, grad_out.as(conv.pd.diff_dst_desc())},
                                          {DNNL_ARG_DIFF_WEIGHTS, diff_w}};
  if (with_bias) args[DNNL_ARG_DIFF_BIAS] = dnnl_memory(user_gb, grad_bias);
  Tensor scratchpad;
  add_scratchpad(conv.pd, &args, &scratchpad);
  conv.primitive.execute(dnnl_stream(), args);
  finish_output(diff_w, diff_w_user);
}

void conv2d_backward_onednn(const Conv2dGrads& grads, const Tensor& grad_out, const Tensor& x,
                            const Tensor& w, const Conv2dParams& p) {
  const Shape& x_shape = grads.input.defined() ? grads.input.shape() : x.shape();
  const Shape& w_shape = w.defined() ? w.shape() : grads.weight.shape();
  const ComputeLayout layout = choose_layout(x_shape, w_shape, is_channels_last(grad_out), p);
  const ConvTypes types = {dnnl_data_type(x.defined() ? x.dtype() : w.dtype()),
                           dnnl_data_type(grad_out.dtype())};
  SharedReorder shared_grad_out(grad_out);
  if (grads.input.defined()) {
    conv2d_backward_data_onednn(grads.input, shared_grad_out, w, layout, types, p);
  }
  if (grads.weight.defined()) {
    conv2d_backward_weights_onednn(grads.weight, grads.bias, shared_grad_out, x, layout, types, p);
  }
}

// ---- f16 and bf16 widened to f32 -------------------------------------------------------------
//
// oneDNN 2.6 has f16 convolutions only on CPUs with AVX512-FP16, and bf16 ones only on AVX-512
// cores. Widening f16 or bf16 to f32 is exact, and so are the products of two such values in f32,
// so the f32 primitives compute what the native low-precision ones do: exact products accumulated
// in f32. A low-precision output or gradient is rounded once from the f32 result, and an f32
// grad_out is first rounded to the operands' dtype, as the native path reads it.

// t in `dtype` (t itself when it has it), in t's memory format.
Tensor in_dtype(const Tensor& t, DType dtype) {
  if (!t.defined() || t.dtype() == dtype) return t;
  Tensor out = empty_nchw(t.shape(), is_channels_last(t), dtype, t.device());
  out.copy_(t);
  return out;
}

// Where an f32 computation of `result` writes: result itself when it is f32, else a new tensor.
Tensor f32_target(const Tensor& result) {
  if (!result.defined() || result.dtype() == DType::kF32) return result;
  return empty_nchw(result.shape(), is_channels_last(result), DType::kF32, result.device());
}

void store(const Tensor& result, const Tensor& computed) {
  if (result.defined() && !result.same(computed)) Tensor(result).copy_(computed);
}

void conv2d_forward_widened(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                            const Conv2dParams& p) {
  const Tensor out32 = f32_target(out);
  conv2d_forward_onednn(out32, in_dtype(x, DType::kF32), in_dtype(w, DType::kF32),
                        in_dtype(bias, DType::kF32), p);
  store(out, out32);
}

void conv2d_backward_widened(const Conv2dGrads& grads, const Tensor& grad_out, const Tensor& x,
                             const Tensor& w, const Conv2dParams& p) {
  const DType operands = x.defined() ? x.dtype() : w.dtype();
  const Conv2dGrads grads32 = {f32_target(grads.input), f32_target(grads.weight),
                               f32_target(grads.bias)};
  conv2d_backward_onednn(grads32, in_dtype(in_dtype(grad_out, operands), DType::kF32),
                         in_dtype(x, DType::kF32), in_dtype(w, DType::kF32), p);
  store(grads.input, grads32.input);
  store(grads.weight, grads32.weight);
  store(grads.bias, grads32.bias);
}

// ---- direct loops (f64) ----------------------------------------------------------------------

// Element (a, b, c, d) of a 4-D strided tensor.
template <typename T>
struct Strided4 {
  T* data;
  int64_t s0, s1, s2, s3;
  explicit Strided4(const Tensor& t)
      : data(static_cast<T*>(t.data_ptr())),
        s0(t.stride(0)),
        s1(t.stride(1)),
        s2(t.stride(2)),
        s3(t.stride(3)) {}
  T& operator()(int64_t a, int64_t b, int64_t c, int64_t d) const {
    return data[a * s0 + b * s1 + c * s2 + d * s3];
  }
};

// The sizes every loop below needs. Input channel `c` of group `g` is channel g*group_in + c.
struct ConvDims {
  int64_t n, in_h, in_w, out_c, out_h, out_w, kh, kw, group_in, group_out;
  ConvDims(const Shape& x, const Shape& w, const Shape& out, int64_t groups)
      : n(x[0]),
        in_h(x[2]),
        in_w(x[3]),
        out_c(w[0]),
        out_h(out[2]),
        out_w(out[3]),
        kh(w[2]),
        kw(w[3]),
        group_in(w[1]),
        group_out(w[0] / groups) {}
  // Tasks per thread chunk such that tiny problems (gradient checks) stay on one thread.
  int64_t grain(int64_t work_per_task) const {
    return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, work_per_task));
  }
  int64_t macs_per_output_plane() const { return out_h * out_w * group_in * kh * kw; }
};

// out[n, o, oh, ow] = bias[o] + sum_{c, i, j} x[n, g*Cg + c, oh*s - p + i*d, ow*s - p + j*d] * w[o,
// c, i, j]
template <typename T>
void conv2d_forward_direct(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                           const Conv2dParams& p) {
  const ConvDims d(x.shape(), w.shape(), out.shape(), p.groups);
  Strided4<const T> X(x), W(w);
  Strided4<T> Y(out);
  const T* b = bias.defined() ? bias.data<T>() : nullptr;
  parallel_for(0, d.n * d.out_c, d.grain(d.macs_per_output_plane()), [&](int64_t lo, int64_t hi) {
    for (int64_t no = lo; no < hi; ++no) {
      const int64_t n = no / d.out_c, o = no % d.out_c, c0 = o / d.group_out * d.group_in;
      for (int64_t oh = 0; oh < d.out_h; ++oh) {
        for (int64_t ow = 0; ow < d.out_w; ++ow) {
          T acc = b ? b[o] : T(0);
          for (int64_t c = 0; c < d.group_in; ++c) {
            for (int64_t i = 0; i < d.kh; ++i) {
              const int64_t ih = oh * p.stride[0] - p.padding[0] + i * p.dilation[0];
              if (ih < 0 || ih >= d.in_h) continue;
              for (int64_t j = 0; j < d.kw; ++j) {
                const int64_t iw = ow * p.stride[1] - p.padding[1] + j * p.dilation[1];
                if (iw < 0 || iw >= d.in_w) continue;
                acc += X(n, c0 + c, ih, iw) * W(o, c, i, j);
              }
            }
          }
          Y(n, o, oh, ow) = acc;
        }
      }
    }
  });
}

// grad_x[n, g*Cg + c, ih, iw] = sum over the (o, oh, ow, i, j) whose window reads that pixel of
// grad_out[n, o, oh, ow] * w[o, c, i, j]. Each task owns whole input planes: no write races.
template <typename T>
void conv2d_backward_input_direct(const Tensor& grad_x, const Tensor& grad_out, const Tensor& w,
                                  const Conv2dParams& p) {
  const ConvDims d(grad_x.shape(), w.shape(), grad_out.shape(), p.groups);
  const int64_t channels = grad_x.size(1);
  Strided4<const T> G(grad_out), W(w);
  Strided4<T> GX(grad_x);
  parallel_for(0, d.n * channels, d.grain(d.group_out * d.out_h * d.out_w * d.kh * d.kw),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t nc = lo; nc < hi; ++nc) {
                   const int64_t n = nc / channels, ci = nc % channels;
                   const int64_t group = ci / d.group_in, c = ci % d.group_in;
                   for (int64_t ih = 0; ih < d.in_h; ++ih) {
                     for (int64_t iw = 0; iw < d.in_w; ++iw) GX(n, ci, ih, iw) = T(0);
                   }
                   for (int64_t o = group * d.group_out; o < (group + 1) * d.group_out; ++o) {
                     for (int64_t oh = 0; oh < d.out_h; ++oh) {
                       for (int64_t ow = 0; ow < d.out_w; ++ow) {
                         const T g = G(n, o, oh, ow);
                         for (int64_t i = 0; i < d.kh; ++i) {
                           const int64_t ih = oh * p.stride[0] - p.padding[0] + i * p.dilation[0];
                           if (ih < 0 || ih >= d.in_h) continue;
                           for (int64_t j = 0; j < d.kw; ++j) {
                             const int64_t iw = ow * p.stride[1] - p.padding[1] + j * p.dilation[1];
                             if (iw < 0 || iw >= d.in_w) continue;
                             GX(n, ci, ih, iw) += g * W(o, c, i, j);
                           }
                         }
                       }
                     }
                   }
                 }
               });
}

// grad_w[o, c, i, j] = sum_{n, oh, ow} grad_out[n, o, oh, ow] * x[n, g*Cg + c, ih, iw];
// grad_bias[o] = sum_{n, oh, ow} grad_out[n, o, oh, ow]. Each task owns whole output channels.
template <typename T>
void conv2d_backward_weight_direct(const Tensor& grad_w, const Tensor& grad_bias,
                                   const Tensor& grad_out, const Tensor& x, const Conv2dParams& p) {
  const ConvDims d(x.shape(), grad_w.shape(), grad_out.shape(), p.groups);
  Strided4<const T> G(grad_out), X(x);
  Strided4<T> GW(grad_w);
  T* gb = grad_bias.defined() ? grad_bias.data<T>() : nullptr;
  parallel_for(0, d.out_c, d.grain(d.n * d.macs_per_output_plane()), [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o) {
      const int64_t c0 = o / d.group_out * d.group_in;
      for (int64_t c = 0; c < d.group_in; ++c) {
        for (int64_t i = 0; i < d.kh; ++i) {
          for (int64_t j = 0; j < d.kw; ++j) {
            T acc = 0;
            for (int64_t n = 0; n < d.n; ++n) {
              for (int64_t oh = 0; oh < d.out_h; ++oh) {
                const int64_t ih = oh * p.stride[0] - p.padding[0] + i * p.dilation[0];
                if (ih < 0 || ih >= d.in_h) continue;
                for (int64_t ow = 0; ow < d.out_w; ++ow) {
                  const int64_t iw = ow * p.stride[1] - p.padding[1] + j * p.dilation[1];
                  if (iw < 0 || iw >= d.in_w) continue;
                  acc += G(n, o, oh, ow) * X(n, c0 + c, ih, iw);
                }
              }
            }
            GW(o, c, i, j) = acc;
          }
        }
      }
      if (gb) {
        T acc = 0;
        for (int64_t n = 0; n < d.n; ++n) {
          for (int64_t oh = 0; oh < d.out_h; ++oh) {
            for (int64_t ow = 0; ow < d.out_w; ++ow) acc += G(n, o, oh, ow);
          }
        }
        gb[o] = acc;
      }
    }
  });
}

// ---- dtype dispatch (on the compute dtype of x and the weights) ---------------------------------

[[noreturn]] void unsupported(const char* op, DType dtype) {
  throw Error(absl::StrCat(op, " on CPU: unsupported dtype ", dtype_name(dtype),
                           " (expected f32, f64, bf16 or f16)"));
}

void conv2d_forward_kernel(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                           const Conv2dParams& p) {
  switch (x.dtype()) {
    case DType::kBF16:
      if (!onednn_has_bf16()) return conv2d_forward_widened(out, x, w, bias, p);
      [[fallthrough]];
    case DType::kF32:
      return conv2d_forward_onednn(out, x, w, bias, p);
    case DType::kF16:
      return conv2d_forward_widened(out, x, w, bias, p);
    case DType::kF64:
      return conv2d_forward_direct<double>(out, x, w, bias, p);
    default:
      unsupported("conv2d", x.dtype());
  }
}

void conv2d_backward_kernel(const Conv2dGrads& grads, const Tensor& grad_out, const Tensor& x,
                            const Tensor& w, const Conv2dParams& p) {
  const DType compute = x.defined() ? x.dtype() : w.dtype();
  switch (compute) {
    case DType::kBF16:
      if (!onednn_has_bf16()) return conv2d_backward_widened(grads, grad_out, x, w, p);
      [[fallthrough]];
    case DType::kF32:
      return conv2d_backward_onednn(grads, grad_out, x, w, p);
    case DType::kF16:
      return conv2d_backward_widened(grads, grad_out, x, w, p);
    case DType::kF64:
      if (grads.input.defined()) conv2d_backward_input_direct<double>(grads.input, grad_out, w, p);
      if (grads.weight.defined()) {
        conv2d_backward_weight_direct<double>(grads.weight, grads.bias, grad_out, x, p);
      }
      return;
    default:
      unsupported("conv2d_backward", compute);
  }
}

}  // namespace

void register_conv_kernels() {
  conv2d_forward_stub.register_kernel(DeviceType::kCPU, conv2d_forward_kernel);
  conv2d_backward_stub.register_kernel(DeviceType::kCPU, conv2d_backward_kernel);
}

}  // namespace ompq::cpu
