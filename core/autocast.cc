#include "core/autocast.h"

#include "core/error.h"

namespace ompq {
namespace {

thread_local DType g_autocast_dtype = DType::kF32;

}  // namespace

bool autocast_enabled() { return g_autocast_dtype != DType::kF32; }

DType autocast_dtype() { return g_autocast_dtype; }

AutocastGuard::AutocastGuard(DType dtype) : previous_(g_autocast_dtype) {
  OMPQ_CHECK(dtype == DType::kBF16 || dtype == DType::kF16 || dtype == DType::kF32,
             "AutocastGuard: unsupported dtype ", dtype_name(dtype),
             " (expected bf16 or f16 to enable autocast, f32 to disable it)");
  g_autocast_dtype = dtype;
}

AutocastGuard::~AutocastGuard() { g_autocast_dtype = previous_; }

}  // namespace ompq
