#include "cuda/cudnn_conv.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/ops/conv.h"
#include "core/ops/reduce.h"
#include "cuda/cudnn_context.h"
#include "cuda/library_workspace.h"
#include "cuda/register.h"
#include "cuda/runtime.h"

namespace ompq::cuda {
namespace {

std::atomic<bool>& benchmark_flag() {
  static std::atomic<bool> flag{[] {
    const char* env = std::getenv("OMPQ_CUDNN_BENCHMARK");
    return env != nullptr && std::strcmp(env, "1") == 0;
  }()};
  return flag;
}

std::atomic<bool> g_allow_tf32{false};
std::atomic<int64_t> g_searches{0};

// The algorithms of one direction, best first: cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t as
// an int, the math type to run it with, and its workspace.
struct Candidate {
  int algo;
  cudnnMathType_t math;
  size_t workspace;
};

enum Direction { kForward, kBackwardData, kBackwardFilter, kNumDirections };

// Everything cuDNN needs to know about one convolution problem, and its ranked algorithms.
struct ConvPlan {
  std::string problem;  // for error messages: dtype, format, shapes, parameters
  cudnnDataType_t data_type;
  bool fma_only;                // f32 without TF32: every algorithm runs with CUDNN_FMA_MATH
  cudnnMathType_t search_math;  // the descriptor's math type while algorithms are ranked
  TensorDescriptor x, y;
  FilterDescriptor w;
  ConvolutionDescriptor conv;
  bool searched[kNumDirections] = {};
  std::vector<Candidate> candidates[kNumDirections];
};

// The device addresses of one call. Which of them is written depends on the direction: y in
// forward, x in backward data, w in backward filter.
struct ConvData {
  void* x;
  void* w;
  void* y;
};

int checked_int(int64_t value, const char* what, const Shape& shape) {
  OMPQ_CHECK(value <= INT_MAX, "conv2d on CUDA: ", what, " of shape ", shape_str(shape), " has ",
             value, " elements or extent; cuDNN's descriptors take at most ", INT_MAX,
             " (split the batch)");
  return static_cast<int>(value);
}

void set_activation_desc(const TensorDescriptor& desc, cudnnTensorFormat_t format,
                         cudnnDataType_t type, const Shape& s, const char* what) {
  checked_int(shape_numel(s), what, s);
  OMPQ_CUDNN_CHECK(cudnnSetTensor4dDescriptor(desc.get(), format, type, static_cast<int>(s[0]),
                                              static_cast<int>(s[1]), static_cast<int>(s[2]),
                                              static_cast<int>(s[3])));
}

std::unique_ptr<ConvPlan> make_plan(DType dtype, bool channels_last, const Shape& x_shape,
                                    const Shape& w_shape, const Shape& y_shape,
                                    const Conv2dParams& p) {
  auto plan = std::make_unique<ConvPlan>();
  plan->problem =
      absl::StrCat(dtype_name(dtype), channels_last ? " channels_last" : " NCHW", " input ",
                   shape_str(x_shape), ", weight ", shape_str(w_shape), ", stride ", p.stride[0],
                   "x", p.stride[1], ", padding ", p.padding[0], "x", p.padding[1], ", dilation ",
                   p.dilation[0], "x", p.dilation[1], ", groups ", p.groups);
  plan->data_type = cudnn_data_type(dtype, "conv2d");
  plan->fma_only = dtype == DType::kF32 && !g_allow_tf32;
  const cudnnTensorFormat_t format = channels_last ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
  set_activation_desc(plan->x, format, plan->data_type, x_shape, "input");
  set_activation_desc(plan->y, format, plan->data_type, y_shape, "output");
  checked_int(shape_numel(w_shape), "weight", w_shape);
  OMPQ_CUDNN_CHECK(cudnnSetFilter4dDescriptor(
      plan->w.get(), plan->data_type, format, static_cast<int>(w_shape[0]),
      static_cast<int>(w_shape[1]), static_cast<int>(w_shape[2]), static_cast<int>(w_shape[3])));
  int geometry[6];
  for (int i = 0; i < 2; ++i) {
    geometry[i] = checked_int(p.padding[i], "padding", x_shape);
    geometry[2 + i] = checked_int(p.stride[i], "stride", x_shape);
    geometry[4 + i] = checked_int(p.dilation[i], "dilation", x_shape);
  }
  // Half and bfloat16 accumulate in f32 (as PyTorch does); f32 and f64 in their own type.
  const cudnnDataType_t compute =
      plan->data_type == CUDNN_DATA_DOUBLE ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  OMPQ_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(plan->conv.get(), geometry[0], geometry[1],
                                                   geometry[2], geometry[3], geometry[4],
                                                   geometry[5], CUDNN_CROSS_CORRELATION, compute));
  OMPQ_CUDNN_CHECK(cudnnSetConvolutionGroupCount(plan->conv.get(), static_cast<int>(p.groups)));
  // The math type the search runs with. CUDNN_DEFAULT_MATH lets f32 use TF32 on sm_80+, so
  // exact f32 asks for FMA; bf16/f16 want tensor cores.
  plan->search_math = CUDNN_DEFAULT_MATH;
  if (plan->fma_only) plan->search_math = CUDNN_FMA_MATH;
  if (dtype == DType::kBF16 || dtype == DType::kF16) plan->search_math = CUDNN_TENSOR_OP_MATH;
  OMPQ_CUDNN_CHECK(cudnnSetConvolutionMathType(plan->conv.get(), plan->search_math));
  // The descriptors must describe the output core/ops/conv.cc allocated.
  int n, c, h, w;
  OMPQ_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(plan->conv.get(), plan->x.get(),
                                                         plan->w.get(), &n, &c, &h, &w));
  OMPQ_CHECK(Shape({n, c, h, w}) == y_shape, "conv2d on CUDA: cuDNN computes an output of shape ",
             shape_str({n, c, h, w}), " where ", shape_str(y_shape), " was expected");
  return plan;
}

// One struct per direction gives the direction's cuDNN entry points one signature, so that the
// search and the fallback loop below exist once.
struct ForwardOps {
  using Perf = cudnnConvolutionFwdAlgoPerf_t;
  using Algo = cudnnConvolutionFwdAlgo_t;
  static constexpr Direction kDirection = kForward;
  static constexpr int kAlgoCount = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
  static constexpr const char* kName = "conv2d forward (cuDNN)";
  static cudnnStatus_t max_count(cudnnHandle_t h, int* n) {
    return cudnnGetConvolutionForwardAlgorithmMaxCount(h, n);
  }
  static cudnnStatus_t heuristic(cudnnHandle_t h, const ConvPlan& p, int n, int* got, Perf* perf) {
    return cudnnGetConvolutionForwardAlgorithm_v7(h, p.x.get(), p.w.get(), p.conv.get(), p.y.get(),
                                                  n, got, perf);
  }
  static cudnnStatus_t find(cudnnHandle_t h, const ConvPlan& p, const ConvData& d, int n, int* got,
                            Perf* perf, void* ws, size_t bytes) {
    return cudnnFindConvolutionForwardAlgorithmEx(h, p.x.get(), d.x, p.w.get(), d.w, p.conv.get(),
                                                  p.y.get(), d.y, n, got, perf, ws, bytes);
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const ConvPlan& p, Algo a, size_t* bytes) {
    return cudnnGetConvolutionForwardWorkspaceSize(h, p.x.get(), p.w.get(), p.conv.get(), p.y.get(),
                                                   a, bytes);
  }
  static cudnnStatus_t run(cudnnHandle_t h, const ConvPlan& p, const ConvData& d, Algo a, void* ws,
                           size_t bytes, const void* one, const void* zero) {
    return cudnnConvolutionForward(h, one, p.x.get(), d.x, p.w.get(), d.w, p.conv.get(), a, ws,
                                   bytes, zero, p.y.get(), d.y);
  }
};

struct BackwardDataOps {
  using Perf = cudnnConvolutionBwdDataAlgoPerf_t;
  using Algo = cudnnConvolutionBwdDataAlgo_t;
  static constexpr Direction kDirection = kBackwardData;
  static constexpr int kAlgoCount = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
  static constexpr const char* kName = "conv2d backward data (cuDNN)";
  static cudnnStatus_t max_count(cudnnHandle_t h, int* n) {
    return cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, n);
  }
  static cudnnStatus_t heuristic(cudnnHandle_t h, const ConvPlan& p, int n, int* got, Perf* perf) {
    return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p.w.get(), p.y.get(), p.conv.get(),
                                                       p.x.get(), n, got, perf);
  }
  static cudnnStatus_t find(cudnnHandle_t h, const ConvPlan& p, const ConvData& d, int n, int* got,
                            Perf* perf, void* ws, size_t bytes) {
    return cudnnFindConvolutionBackwardDataAlgorithmEx(
        h, p.w.get(), d.w, p.y.get(), d.y, p.conv.get(), p.x.get(), d.x, n, got, perf, ws, bytes);
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const ConvPlan& p, Algo a, size_t* bytes) {
    return cudnnGetConvolutionBackwardDataWorkspaceSize(h, p.w.get(), p.y.get(), p.conv.get(),
                                                        p.x.get(), a, bytes);
  }
  static cudnnStatus_t run(cudnnHandle_t h, const ConvPlan& p, const ConvData& d, Algo a, void* ws,
                           size_t bytes, const void* one, const void* zero) {
    return cudnnConvolutionBackwardData(h, one, p.w.get(), d.w, p.y.get(), d.y, p.conv.get(), a, ws,
                                        bytes, zero, p.x.get(), d.x);
  }
};

struct BackwardFilterOps {
  using Perf = cudnnConvolutionBwdFilterAlgoPerf_t;
  using Algo = cudnnConvolutionBwdFilterAlgo_t;
  static constexpr Direction kDirection = kBackwardFilter;
  static constexpr int kAlgoCount = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
  static constexpr const char* kName = "conv2d backward filter (cuDNN)";
  static cudnnStatus_t max_count(cudnnHandle_t h, int* n) {
    return cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, n);
  }
  static cudnnStatus_t heuristic(cudnnHandle_t h, const ConvPlan& p, int n, int* got, Perf* perf) {
    return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p.x.get(), p.y.get(), p.conv.get(),
                                                         p.w.get(), n, got, perf);
  }
  static cudnnStatus_t find(cudnnHandle_t h, const ConvPlan& p, const ConvData& d, int n, int* got,
                            Perf* perf, void* ws, size_t bytes) {
    return cudnnFindConvolutionBackwardFilterAlgorithmEx(
        h, p.x.get(), d.x, p.y.get(), d.y, p.conv.get(), p.w.get(), d.w, n, got, perf, ws, bytes);
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const ConvPlan& p, Algo a, size_t* bytes) {
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p.x.get(), p.y.get(), p.conv.get(),
                                                          p.w.get(), a, bytes);
  }
  static cudnnStatus_t run(cudnnHandle_t h, const ConvPlan& p, const ConvData& d, Algo a, void* ws,
                           size_t bytes, const void* one, const void* zero) {
    return cudnnConvolutionBackwardFilter(h, one, p.x.get(), d.x, p.y.get(), d.y, p.conv.get(), a,
                                          ws, bytes, zero, p.w.get(), d.w);
  }
};

cudnnMathType_t candidate_math(const ConvPlan& plan, cudnnMathType_t reported) {
  return plan.fma_only ? CUDNN_FMA_MATH : reported;
}

// cuDNN's heuristic ranking, with each algorithm's workspace for its math type.
template <typename Ops>
std::vector<Candidate> heuristic_candidates(cudnnHandle_t handle, const ConvPlan& plan) {
  int max_count = 0;
  OMPQ_CUDNN_CHECK(Ops::max_count(handle, &max_count));
  std::vector<typename Ops::Perf> perf(std::max(max_count, 1));
  int returned = 0;
  OMPQ_CUDNN_CHECK(
      Ops::heuristic(handle, plan, static_cast<int>(perf.size()), &returned, perf.data()));
  std::vector<Candidate> out;
  for (int i = 0; i < returned; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    const cudnnMathType_t math = candidate_math(plan, perf[i].mathType);
    const bool seen = std::any_of(out.begin(), out.end(), [&](const Candidate& c) {
      return c.algo == static_cast<int>(perf[i].algo) && c.math == math;
    });
    if (seen) continue;  // listed once per math type, which fma_only may have merged
    OMPQ_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.conv.get(), math));
    size_t bytes = 0;
    if (Ops::workspace(handle, plan, perf[i].algo, &bytes) != CUDNN_STATUS_SUCCESS) continue;
    out.push_back({static_cast<int>(perf[i].algo), math, bytes});
  }
  return out;
}

// Times every algorithm on the call's own buffers (the output buffer is scribbled on, and written
// properly afterwards). The timing workspace is the largest any algorithm asks for, halved until
// the allocator can provide it; algorithms that need more are left out.
template <typename Ops>
std::vector<Candidate> measured_candidates(cudnnHandle_t handle, const ConvPlan& plan,
                                           const ConvData& data, int device) {
  size_t largest = 0;
  for (int a = 0; a < Ops::kAlgoCount; ++a) {
    size_t bytes = 0;
    if (Ops::workspace(handle, plan, static_cast<typename Ops::Algo>(a), &bytes) ==
        CUDNN_STATUS_SUCCESS) {
      largest = std::max(largest, bytes);
    }
  }
  Tensor workspace;
  size_t bytes = largest;
  for (; bytes > 0; bytes /= 2) {
    bool ok = false;
    workspace = try_allocate_workspace(bytes, device, &ok);
    if (ok) break;
  }
  int max_count = 0;
  OMPQ_CUDNN_CHECK(Ops::max_count(handle, &max_count));
  std::vector<typename Ops::Perf> perf(std::max(max_count, 1));
  int returned = 0;
  OMPQ_CUDNN_CHECK(Ops::find(handle, plan, data, static_cast<int>(perf.size()), &returned,
                             perf.data(), bytes == 0 ? nullptr : workspace.data_ptr(), bytes));
  std::vector<Candidate> out;
  for (int i = 0; i < returned; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    out.push_back(
        {static_cast<int>(perf[i].algo), candidate_math(plan, perf[i].mathType), perf[i].memory});
  }
  return out;
}

// Ranks the algorithms of one direction of `plan` on first use (measuring them writes the
// direction's output buffer in `data`). The caller holds the device's cuDNN mutex.
template <typename Ops>
const std::vector<Candidate>& ranked_candidates(CudnnDevice& dev, ConvPlan& plan,
                                                const ConvData& data, int device) {
  const Direction d = Ops::kDirection;
  if (!plan.searched[d]) {
    // A run leaves its algorithm's math type on the descriptor; every search starts from the same.
    OMPQ_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.conv.get(), plan.search_math));
    plan.candidates[d] = benchmark_flag() ? measured_candidates<Ops>(dev.handle, plan, data, device)
                                          : heuristic_candidates<Ops>(dev.handle, plan);
    plan.searched[d] = true;
    ++g_searches;
  }
  OMPQ_CHECK(!plan.candidates[d].empty(), Ops::kName, ": cuDNN has no algorithm for ",
             plan.problem);
  return plan.candidates[d];
}

// output = op(inputs) + beta * output for one direction of `plan`, with the first ranked
// algorithm whose workspace can be had. The caller holds the device's cuDNN mutex.
template <typename Ops>
void run_direction(CudnnDevice& dev, ConvPlan& plan, const ConvData& data, int device,
                   double beta = 0.0) {
  const std::vector<Candidate>& candidates = ranked_candidates<Ops>(dev, plan, data, device);
  const CudnnScale one(1.0), scale_beta(beta);
  run_first_fitting(
      candidates, device, Ops::kName, [&](const Candidate& c, void* workspace, size_t bytes) {
        OMPQ_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.conv.get(), c.math));
        OMPQ_CUDNN_CHECK(Ops::run(dev.handle, plan, data, static_cast<typename Ops::Algo>(c.algo),
                                  workspace, bytes, one.for_type(plan.data_type),
                                  scale_beta.for_type(plan.data_type)));
      });
}

using PlanMap = std::map<std::vector<int64_t>, std::unique_ptr<ConvPlan>>;

// Per device; guarded by that device's CudnnDevice::mutex. Never destroyed (plans own cuDNN
// descriptors, which must not be destroyed after the library is unloaded).
PlanMap& plans(int device) {
  static std::vector<PlanMap>* maps = new std::vector<PlanMap>(device_count());
  return (*maps)[device];
}

// The plan for a problem, created on first use. The caller holds the device's cuDNN mutex.
ConvPlan& plan_for(int device, DType dtype, bool channels_last, const Shape& x_shape,
                   const Shape& w_shape, const Shape& y_shape, const Conv2dParams& p) {
  std::vector<int64_t> key = {static_cast<int64_t>(dtype), channels_last, p.groups,
                              benchmark_flag(), g_allow_tf32};
  key.insert(key.end(), x_shape.begin(), x_shape.end());
  key.insert(key.end(), w_shape.begin(), w_shape.end());
  for (int i = 0; i < 2; ++i) key.insert(key.end(), {p.stride[i], p.padding[i], p.dilation[i]});
  std::unique_ptr<ConvPlan>& plan = plans(device)[key];
  if (!plan) plan = make_plan(dtype, channels_last, x_shape, w_shape, y_shape, p);
  return *plan;
}

// A contiguous [O, C/groups, kh, kw] weight in the layout the plan describes: cuDNN wants the
// filter in the activations' format (NHWC filters for channels_last).
Tensor weight_in_format(const Tensor& w, bool channels_last) {
  if (!channels_last) return w;
  Tensor nhwc = empty_nchw(w.shape(), /*channels_last=*/true, w.dtype(), w.device());
  nhwc.copy_(w);
  return nhwc;
}

// t in `dtype` (t itself when it has it); a converted copy is NCHW, or channels_last when asked.
Tensor in_dtype(const Tensor& t, DType dtype, bool channels_last) {
  if (t.dtype() == dtype) return t;
  Tensor out = empty_nchw(t.shape(), channels_last, dtype, t.device());
  out.copy_(t);
  return out;
}

// Where cuDNN writes `result` (which has the plan's memory format): result itself when it has
// the compute dtype, else a new tensor of that dtype to be converted into result.
Tensor compute_target(const Tensor& result, DType compute, bool channels_last) {
  if (result.dtype() == compute) return result;
  return empty_nchw(result.shape(), channels_last, compute, result.device());
}

// Mixed precision (bf16/f16 operands with an f32 output): cuDNN's legacy API writes the operands'
// dtype (with f32 accumulation inside), so the output is computed in it and converted to f32 by
// the copy kernel: the f32 output carries the low-precision rounding, as PyTorch's autocast
// output does.
void conv2d_forward_cudnn(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                          const Conv2dParams& p) {
  const int device = x.device().index;
  const bool channels_last = is_channels_last(x) || is_channels_last(out);
  DeviceGuard guard(device);
  const Tensor weight = weight_in_format(w, channels_last);
  const Tensor y = compute_target(out, x.dtype(), channels_last);
  CudnnDevice& dev = cudnn_device(device);
  std::lock_guard<std::mutex> lock(dev.mutex);
  ConvPlan& plan = plan_for(device, x.dtype(), channels_last, x.shape(), w.shape(), out.shape(), p);
  const ConvData data = {x.data_ptr(), weight.data_ptr(), y.data_ptr()};
  // The bias goes in first and the convolution accumulates onto it (beta = 1): one pass of our
  // broadcasting copy kernel, for every dtype and layout (cudnnAddTensor is slow on NHWC). The
  // ranking comes first because measuring the algorithms overwrites the output.
  ranked_candidates<ForwardOps>(dev, plan, data, device);
  if (bias.defined()) Tensor(y).copy_(bias.view({1, bias.size(0), 1, 1}));
  run_direction<ForwardOps>(dev, plan, data, device, bias.defined() ? 1.0 : 0.0);
  if (!y.same(out)) Tensor(out).copy_(y);
}

// grad_bias[o] = sum over n, h, w of grad_out[n, o, h, w], through the CUDA reduction (which
// accumulates f32 in double); bf16 and f16 are summed in f32.
void bias_gradient(Tensor grad_bias, const Tensor& grad_out) {
  const bool wide = grad_out.dtype() == DType::kF32 || grad_out.dtype() == DType::kF64;
  grad_bias.copy_(ops::sum(wide ? grad_out : grad_out.to(DType::kF32), {0, 2, 3}, false));
}

// Mixed precision (bf16/f16 operands, f32 grad_out and gradients): grad_out is rounded to the
// operands' dtype, cuDNN computes the gradients in it and they are converted to f32; the bias
// gradient sums the unrounded f32 grad_out.
void conv2d_backward_cudnn(const Conv2dGrads& grads, const Tensor& grad_out, const Tensor& x,
                           const Tensor& w, const Conv2dParams& p) {
  const int device = grad_out.device().index;
  const bool channels_last = is_channels_last(grad_out) || (x.defined() && is_channels_last(x)) ||
                             (grads.input.defined() && is_channels_last(grads.input));
  const Shape& x_shape = grads.input.defined() ? grads.input.shape() : x.shape();
  const Shape& w_shape = grads.weight.defined() ? grads.weight.shape() : w.shape();
  const DType dtype = x.defined() ? x.dtype() : w.dtype();
  {
    DeviceGuard guard(device);
    const Tensor dy = in_dtype(grad_out, dtype, channels_last);
    const Tensor weight = grads.input.defined() ? weight_in_format(w, channels_last) : Tensor();
    const Tensor grad_input =
        grads.input.defined() ? compute_target(grads.input, dtype, channels_last) : Tensor();
    // cuDNN writes the filter gradient in the plan's filter format.
    const Tensor grad_weight =
        grads.weight.defined() && (channels_last || grads.weight.dtype() != dtype)
            ? empty_nchw(w_shape, channels_last, dtype, grad_out.device())
            : grads.weight;
    CudnnDevice& dev = cudnn_device(device);
    std::lock_guard<std::mutex> lock(dev.mutex);
    ConvPlan& plan = plan_for(device, dtype, channels_last, x_shape, w_shape, grad_out.shape(), p);
    if (grads.input.defined()) {
      run_direction<BackwardDataOps>(
          dev, plan, {grad_input.data_ptr(), weight.data_ptr(), dy.data_ptr()}, device);
      if (!grad_input.same(grads.input)) Tensor(grads.input).copy_(grad_input);
    }
    if (grads.weight.defined()) {
      run_direction<BackwardFilterOps>(
          dev, plan, {x.data_ptr(), grad_weight.data_ptr(), dy.data_ptr()}, device);
      if (!grad_weight.same(grads.weight)) Tensor(grads.weight).copy_(grad_weight);
    }
  }
  if (grads.bias.defined()) bias_gradient(grads.bias, grad_out);
}

}  // namespace

void set_cudnn_benchmark(bool enabled) { benchmark_flag() = enabled; }
bool cudnn_benchmark() { return benchmark_flag(); }
void set_cudnn_allow_tf32(bool allowed) { g_allow_tf32 = allowed; }
bool cudnn_allow_tf32() { return g_allow_tf32; }
int64_t cudnn_algorithm_searches() { return g_searches; }

void clear_cudnn_plans() {
  for (int d = 0; d < device_count(); ++d) {
    CudnnDevice& dev = cudnn_device(d);
    std::lock_guard<std::mutex> lock(dev.mutex);
    plans(d).clear();
  }
}

void register_cudnn_conv_kernels() {
  conv2d_forward_stub.register_kernel(DeviceType::kCUDA, conv2d_forward_cudnn);
  conv2d_backward_stub.register_kernel(DeviceType::kCUDA, conv2d_backward_cudnn);
}

}  // namespace ompq::cuda
