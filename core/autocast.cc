#include "core/autocast.h"

#include <memory>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops/amp.h"
#include "core/ops/copy.h"
#include "core/ops/elementwise.h"

namespace ompq {
namespace {

thread_local DType g_autocast_dtype = DType::kF32;
thread_local AutocastActivations g_autocast_activations = AutocastActivations::kF32;

}  // namespace

bool autocast_enabled() { return g_autocast_dtype != DType::kF32; }

DType autocast_dtype() { return g_autocast_dtype; }

Tensor autocast_cast(const Tensor& t) {
  const DType target = g_autocast_dtype;
  if (target == DType::kF32 || !t.defined() || t.dtype() == target || t.dtype() == DType::kF64 ||
      !is_floating(t.dtype())) {
    return t;
  }
  // Tensor::to() would make a channels_last activation NCHW-contiguous: keep its memory order.
  Tensor out;
  if (!t.is_contiguous() && is_dense(t)) {
    auto storage = std::make_shared<Storage>(t.numel() * dtype_size(target), t.device());
    out = Tensor::from_storage(std::move(storage), 0, t.shape(), t.strides(), target);
  } else {
    out = Tensor::empty(t.shape(), target, t.device());
  }
  ops::copy_(out, t);
  const DType source = t.dtype();
  return record(out, {t}, "AutocastBackward",
                [source](const Tensor& grad) { return std::vector<Tensor>{grad.to(source)}; });
}

DType autocast_output_dtype(DType operands) {
  return autocast_enabled() && operands == g_autocast_dtype ? DType::kF32 : operands;
}

DType autocast_conv_output_dtype(DType operands, Device device, bool records_grad) {
  const bool low_precision_output = autocast_enabled() && operands == g_autocast_dtype &&
                                    g_autocast_activations == AutocastActivations::kLowPrecision &&
                                    !records_grad && low_precision_activations_supported(device);
  return low_precision_output ? operands : autocast_output_dtype(operands);
}

AutocastGuard::AutocastGuard(DType dtype, AutocastActivations activations)
    : previous_(g_autocast_dtype), previous_activations_(g_autocast_activations) {
  OMPQ_CHECK(dtype == DType::kBF16 || dtype == DType::kF16 || dtype == DType::kF32,
             "AutocastGuard: unsupported dtype ", dtype_name(dtype),
             " (expected bf16 or f16 to enable autocast, f32 to disable it)");
  g_autocast_dtype = dtype;
  g_autocast_activations = activations;
}

AutocastGuard::~AutocastGuard() {
  g_autocast_dtype = previous_;
  g_autocast_activations = previous_activations_;
}

}  // namespace ompq
