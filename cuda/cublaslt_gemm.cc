#include "cuda/cublaslt_gemm.h"

#include <cublasLt.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/ops/linalg.h"
#include "cuda/library_workspace.h"
#include "cuda/register.h"
#include "cuda/runtime.h"

namespace ompq::cuda {
namespace {

[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file,
                                     int line) {
  throw Error(absl::StrCat("cuBLASLt call ", call, " failed at ", file, ":", line, ": ",
                           cublasLtGetStatusString(status)));
}

#define OMPQ_CUBLAS_CHECK(call)                                           \
  do {                                                                    \
    cublasStatus_t ompq_cublas_status_ = (call);                          \
    if (ompq_cublas_status_ != CUBLAS_STATUS_SUCCESS)                     \
      throw_cublas_error(ompq_cublas_status_, #call, __FILE__, __LINE__); \
  } while (0)

// The workspace the heuristic may plan with (what PyTorch gives cuBLASLt on sm_90).
constexpr size_t kMaxWorkspace = size_t{32} << 20;
constexpr int kRequestedAlgorithms = 8;

std::atomic<bool> g_allow_tf32{false};
std::atomic<int64_t> g_queries{0};

// Owns a cuBLASLt object: created by the caller through get(), destroyed with the wrapper.
template <typename T, cublasStatus_t (*Destroy)(T)>
class LtObject {
 public:
  LtObject() = default;
  ~LtObject() { reset(); }
  LtObject(const LtObject&) = delete;
  LtObject& operator=(const LtObject&) = delete;
  T* out() { return &obj_; }
  T get() const { return obj_; }
  void reset() {
    if (obj_ != nullptr) Destroy(obj_);
    obj_ = nullptr;
  }

 private:
  T obj_ = nullptr;
};

using MatmulDesc = LtObject<cublasLtMatmulDesc_t, cublasLtMatmulDescDestroy>;
using MatrixLayout = LtObject<cublasLtMatrixLayout_t, cublasLtMatrixLayoutDestroy>;
using Preference = LtObject<cublasLtMatmulPreference_t, cublasLtMatmulPreferenceDestroy>;

template <typename Value>
void set_desc(const MatmulDesc& desc, cublasLtMatmulDescAttributes_t attribute, const Value& v) {
  OMPQ_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.get(), attribute, &v, sizeof(v)));
}

struct GemmTypes {
  cudaDataType_t operands, output, scale;
  cublasComputeType_t compute;
};

GemmTypes gemm_types(DType in, DType out, bool allow_tf32) {
  if (in == DType::kI8) {
    OMPQ_CHECK(out == DType::kI32, "matmul on CUDA: i8 operands with an output of ",
               dtype_name(out), " (integer products take i8 operands and an i32 output)");
    return {CUDA_R_8I, CUDA_R_32I, CUDA_R_32I, CUBLAS_COMPUTE_32I};
  }
  // Mixed precision: bf16/f16 operands, f32 accumulation and an f32 output (C and D), which
  // cuBLASLt supports directly.
  if ((in == DType::kBF16 || in == DType::kF16) && out == DType::kF32) {
    return {in == DType::kBF16 ? CUDA_R_16BF : CUDA_R_16F, CUDA_R_32F, CUDA_R_32F,
            CUBLAS_COMPUTE_32F};
  }
  OMPQ_CHECK(in == out, "matmul on CUDA: operands of dtype ", dtype_name(in), " with an output of ",
             dtype_name(out),
             " (expected one floating dtype, bf16/f16 operands with an f32 output, or i8 operands "
             "and an i32 output)");
  switch (in) {
    case DType::kF32:
      return {CUDA_R_32F, CUDA_R_32F, CUDA_R_32F,
              allow_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F};
    case DType::kF64:
      return {CUDA_R_64F, CUDA_R_64F, CUDA_R_64F, CUBLAS_COMPUTE_64F};
    case DType::kBF16:
      return {CUDA_R_16BF, CUDA_R_16BF, CUDA_R_32F, CUBLAS_COMPUTE_32F};
    case DType::kF16:
      return {CUDA_R_16F, CUDA_R_16F, CUDA_R_32F, CUBLAS_COMPUTE_32F};
    default:
      throw Error(absl::StrCat("matmul on CUDA: unsupported dtype ", dtype_name(in),
                               " (expected f32, f64, bf16, f16, or i8 with an i32 output)"));
  }
}

// alpha and beta in the scale type of the product.
struct Scale {
  float f;
  double d;
  int32_t i;
  explicit Scale(int value) : f(static_cast<float>(value)), d(value), i(value) {}
  const void* as(cudaDataType_t type) const {
    if (type == CUDA_R_64F) return &d;
    if (type == CUDA_R_32I) return &i;
    return &f;
  }
};

// One operand of out^T = w^T @ a^T as cuBLASLt sees it: the column-major matrix its memory holds
// and whether the product needs it transposed. A row-major [R, C] matrix is a column-major
// [C, R] one: its own transpose, which is what the product needs.
struct Operand {
  bool row_major;
  uint64_t rows, cols;
  int64_t ld, batch_stride;
};

Operand describe(const Tensor& t) {
  const int64_t r = t.size(1), c = t.size(2);
  const bool row_major = t.stride(2) == 1 && t.stride(1) == c;
  const int64_t batch_stride = t.size(0) > 1 ? t.stride(0) : r * c;
  if (row_major) {
    return {true, static_cast<uint64_t>(c), static_cast<uint64_t>(r), std::max<int64_t>(c, 1),
            batch_stride};
  }
  return {false, static_cast<uint64_t>(r), static_cast<uint64_t>(c), std::max<int64_t>(r, 1),
          batch_stride};
}

void make_layout(MatrixLayout* layout, cudaDataType_t type, const Operand& m, int64_t batch) {
  OMPQ_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(layout->out(), type, m.rows, m.cols, m.ld));
  if (batch > 1) {
    const int32_t count = static_cast<int32_t>(batch);
    OMPQ_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(
        layout->get(), CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
    OMPQ_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout->get(),
                                                       CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                       &m.batch_stride, sizeof(m.batch_stride)));
  }
}

// The largest power of two (up to 256) that divides the address: cuBLASLt's heuristic assumes
// 256-byte aligned pointers unless told otherwise, and views can start anywhere.
uint32_t alignment(const void* p) {
  const uintptr_t address = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && address % a != 0) a /= 2;
  return a;
}

struct Candidate {
  cublasLtMatmulAlgo_t algo;
  size_t workspace;
};

struct GemmPlan {
  std::string problem;  // for error messages
  GemmTypes types;
  MatmulDesc desc;
  MatrixLayout w_layout, a_layout, out_layout;  // cuBLASLt's A, B and C = D
  bool bias_epilogue = false;
  std::vector<Candidate> candidates;
};

struct GemmCall {
  const Tensor& out;
  const Tensor& a;
  const Tensor& w;
  const Tensor& bias;
};

// The heuristic's algorithms for `plan` within `max_workspace` bytes, appended to
// plan->candidates; false when it has none.
bool query_algorithms(cublasLtHandle_t handle, GemmPlan* plan, size_t max_workspace,
                      const GemmCall& call) {
  Preference pref;
  OMPQ_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(pref.out()));
  auto set_pref = [&](cublasLtMatmulPreferenceAttributes_t attribute, auto value) {
    OMPQ_CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref.get(), attribute, &value, sizeof(value)));
  };
  set_pref(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, static_cast<uint64_t>(max_workspace));
  set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, alignment(call.w.data_ptr()));
  set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, alignment(call.a.data_ptr()));
  set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, alignment(call.out.data_ptr()));
  set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, alignment(call.out.data_ptr()));
  cublasLtMatmulHeuristicResult_t results[kRequestedAlgorithms] = {};
  int returned = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(
      handle, plan->desc.get(), plan->w_layout.get(), plan->a_layout.get(), plan->out_layout.get(),
      plan->out_layout.get(), pref.get(), kRequestedAlgorithms, results, &returned);
  if (status == CUBLAS_STATUS_NOT_SUPPORTED) return false;
  OMPQ_CUBLAS_CHECK(status);
  bool any = false;
  for (int i = 0; i < returned; ++i) {
    if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
    plan->candidates.push_back({results[i].algo, results[i].workspaceSize});
    any = true;
  }
  return any;
}

void make_desc(GemmPlan* plan, bool w_transposed, bool a_transposed) {
  OMPQ_CUBLAS_CHECK(
      cublasLtMatmulDescCreate(plan->desc.out(), plan->types.compute, plan->types.scale));
  set_desc(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, w_transposed ? CUBLAS_OP_T : CUBLAS_OP_N);
  set_desc(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, a_transposed ? CUBLAS_OP_T : CUBLAS_OP_N);
}

std::unique_ptr<GemmPlan> make_plan(cublasLtHandle_t handle, const GemmCall& call,
                                    bool allow_tf32) {
  auto plan = std::make_unique<GemmPlan>();
  const Operand w = describe(call.w), a = describe(call.a);
  const int64_t batch = call.out.size(0);
  plan->problem =
      absl::StrCat(dtype_name(call.a.dtype()), " [", batch, ", ", call.a.size(1), ", ",
                   call.a.size(2), "] (", a.row_major ? "row" : "column", "-major) @ [", batch,
                   ", ", call.w.size(1), ", ", call.w.size(2), "] (",
                   w.row_major ? "row" : "column", "-major) -> ", dtype_name(call.out.dtype()));
  plan->types = gemm_types(call.a.dtype(), call.out.dtype(), allow_tf32);
  make_layout(&plan->w_layout, plan->types.operands, w, batch);
  make_layout(&plan->a_layout, plan->types.operands, a, batch);
  const Operand out = {true, static_cast<uint64_t>(call.out.size(2)),
                       static_cast<uint64_t>(call.out.size(1)),
                       std::max<int64_t>(call.out.size(2), 1), call.out.size(1) * call.out.size(2)};
  make_layout(&plan->out_layout, plan->types.output, out, batch);
  // The product needs w^T and a^T, which a row-major operand's memory already is.
  make_desc(plan.get(), !w.row_major, !a.row_major);
  if (call.bias.defined() && plan->types.output != CUDA_R_32I) {
    set_desc(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_BIAS);
    set_desc(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, call.bias.data_ptr());
    plan->bias_epilogue = query_algorithms(handle, plan.get(), kMaxWorkspace, call);
    if (!plan->bias_epilogue) {  // not for these types or this alignment: bias by prefill
      plan->desc.reset();
      make_desc(plan.get(), !w.row_major, !a.row_major);
    }
  }
  if (!plan->bias_epilogue) query_algorithms(handle, plan.get(), kMaxWorkspace, call);
  // Algorithms that need no workspace at all close the list: the fallback of last resort.
  query_algorithms(handle, plan.get(), 0, call);
  OMPQ_CHECK(!plan->candidates.empty(), "matmul on CUDA: cuBLASLt has no algorithm for ",
             plan->problem);
  return plan;
}

struct LtDevice {
  std::once_flag once;
  std::mutex mutex;  // guards the plans (a call sets its bias pointer on the shared descriptor)
  cublasLtHandle_t handle = nullptr;
  std::map<std::vector<int64_t>, std::unique_ptr<GemmPlan>> plans;
};

// Created on first use, never destroyed (the CUDA runtime may be gone when static destructors
// run).
LtDevice& lt_device(int device) {
  check_device_index(device, "cuBLASLt");
  static std::vector<LtDevice>* devices = new std::vector<LtDevice>(device_count());
  LtDevice& dev = (*devices)[device];
  std::call_once(dev.once, [&] {
    DeviceGuard guard(device);
    OMPQ_CUBLAS_CHECK(cublasLtCreate(&dev.handle));
  });
  return dev;
}

std::vector<int64_t> plan_key(const GemmCall& call, bool allow_tf32) {
  std::vector<int64_t> key = {static_cast<int64_t>(call.a.dtype()),
                              static_cast<int64_t>(call.out.dtype()),
                              allow_tf32,
                              call.bias.defined(),
                              alignment(call.a.data_ptr()),
                              alignment(call.w.data_ptr()),
                              alignment(call.out.data_ptr()),
                              call.bias.defined() ? alignment(call.bias.data_ptr()) : 0};
  for (const Tensor* t : {&call.a, &call.w}) {
    key.insert(key.end(), t->shape().begin(), t->shape().end());
    key.insert(key.end(), t->strides().begin(), t->strides().end());
  }
  return key;
}

void check_operands(const Tensor& out, const Tensor& a, const Tensor& w, const Tensor& bias) {
  OMPQ_CHECK(a.dim() == 3 && w.dim() == 3 && out.dim() == 3 && a.size(0) == w.size(0) &&
                 a.size(2) == w.size(1) && out.shape() == Shape({a.size(0), a.size(1), w.size(2)}),
             "cublaslt_matmul: expected a [B, M, K], w [B, K, N] and out [B, M, N], got ",
             shape_str(a.shape()), ", ", shape_str(w.shape()), " and ", shape_str(out.shape()));
  OMPQ_CHECK(out.is_contiguous(), "cublaslt_matmul: out must be contiguous");
  for (const Tensor* t : {&a, &w}) {
    const int64_t r = t->size(1), c = t->size(2);
    const bool row_major = t->stride(2) == 1 && t->stride(1) == c;
    const bool col_major = t->stride(1) == 1 && t->stride(2) == r;
    const bool packed = t->size(0) == 1 || t->stride(0) == r * c;
    OMPQ_CHECK((row_major || col_major) && packed, "cublaslt_matmul: operand of shape ",
               shape_str(t->shape()), " and strides ", shape_str(t->strides()),
               " is neither row- nor column-major with packed batches");
  }
  OMPQ_CHECK(a.dtype() == w.dtype(), "cublaslt_matmul: operands of dtypes ", dtype_name(a.dtype()),
             " and ", dtype_name(w.dtype()));
  gemm_types(a.dtype(), out.dtype(), /*allow_tf32=*/false);  // throws for a pair it cannot run
  if (a.dtype() == DType::kI8) check_int8_operands(a, w);
  for (const Tensor* t : {&out, &a, &w}) {
    OMPQ_CHECK(t->device() == out.device() && out.device().is_cuda(),
               "cublaslt_matmul: every tensor must be on one CUDA device, got ", t->device().str(),
               " and ", out.device().str());
  }
  if (bias.defined()) {
    OMPQ_CHECK(bias.dim() == 1 && bias.size(0) == out.size(2) && bias.is_contiguous() &&
                   bias.dtype() == out.dtype() && bias.device() == out.device(),
               "cublaslt_matmul: bias must be a contiguous [", out.size(2), "] of dtype ",
               dtype_name(out.dtype()), " on ", out.device().str(), ", got ",
               shape_str(bias.shape()), " ", dtype_name(bias.dtype()), " on ", bias.device().str());
  }
}

}  // namespace

void check_int8_operands(const Tensor& a, const Tensor& w) {
  const std::string product = absl::StrCat("cublaslt_matmul: int8 product ", shape_str(a.shape()),
                                           " @ ", shape_str(w.shape()));
  OMPQ_CHECK(a.dim() == 3 && w.dim() == 3 && a.size(2) == w.size(1), product,
             ": expected a [B, M, K] and w [B, K, N]");
  const bool a_row_major = describe(a).row_major, w_row_major = describe(w).row_major;
  OMPQ_CHECK(a_row_major && !w_row_major, product,
             " needs a row-major and w column-major (w a transposed [N, K] matrix, as linear's "
             "weight), got a ",
             a_row_major ? "row" : "column", "-major and w ", w_row_major ? "row" : "column",
             "-major");
  // cuBLASLt's int8 kernels need every leading dimension, and its m and k, to be multiples of 4:
  // out^T = w^T @ a^T has leading dimensions K (w and a) and N (out), m = N and k = K.
  const int64_t k = a.size(2), n = w.size(2);
  OMPQ_CHECK(k % 4 == 0, product, ": K = ", k,
             " is not a multiple of 4 (cuBLASLt's int8 products need K and N multiples of 4; pad "
             "the inner dimension with zeros)");
  OMPQ_CHECK(n % 4 == 0, product, ": N = ", n,
             " is not a multiple of 4 (cuBLASLt's int8 products need K and N multiples of 4; pad "
             "the output features)");
  OMPQ_CHECK(alignment(a.data_ptr()) >= 4 && alignment(w.data_ptr()) >= 4, product,
             ": operands must start on 4-byte boundaries, got a view starting ",
             alignment(a.data_ptr()) < 4 ? "a" : "w", " at byte alignment ",
             std::min(alignment(a.data_ptr()), alignment(w.data_ptr())));
}

void set_cublaslt_allow_tf32(bool allowed) { g_allow_tf32 = allowed; }
bool cublaslt_allow_tf32() { return g_allow_tf32; }
int64_t cublaslt_heuristic_queries() { return g_queries; }

void cublaslt_matmul(const Tensor& out, const Tensor& a, const Tensor& w, const Tensor& bias) {
  check_operands(out, a, w, bias);
  if (out.numel() == 0) return;
  const int device = out.device().index;
  const bool allow_tf32 = g_allow_tf32;
  const GemmCall call{out, a, w, bias};
  DeviceGuard guard(device);
  LtDevice& dev = lt_device(device);
  std::lock_guard<std::mutex> lock(dev.mutex);
  std::unique_ptr<GemmPlan>& slot = dev.plans[plan_key(call, allow_tf32)];
  if (!slot) {
    slot = make_plan(dev.handle, call, allow_tf32);
    ++g_queries;
  }
  GemmPlan& plan = *slot;
  const bool prefill = bias.defined() && !plan.bias_epilogue;
  if (prefill) Tensor(out).copy_(bias);  // broadcast over the rows; the product adds to it
  if (plan.bias_epilogue) set_desc(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias.data_ptr());
  const Scale one(1), beta(prefill ? 1 : 0);
  const cudaStream_t stream = default_stream(device).get();
  run_first_fitting(
      plan.candidates, device, "matmul (cuBLASLt)",
      [&](const Candidate& c, void* workspace, size_t bytes) {
        OMPQ_CUBLAS_CHECK(cublasLtMatmul(dev.handle, plan.desc.get(), one.as(plan.types.scale),
                                         w.data_ptr(), plan.w_layout.get(), a.data_ptr(),
                                         plan.a_layout.get(), beta.as(plan.types.scale),
                                         out.data_ptr(), plan.out_layout.get(), out.data_ptr(),
                                         plan.out_layout.get(), &c.algo, workspace, bytes, stream));
      });
}

void register_cublaslt_gemm_kernels() {
  matmul_stub.register_kernel(DeviceType::kCUDA, cublaslt_matmul);
}

}  // namespace ompq::cuda
