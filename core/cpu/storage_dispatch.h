// Dtype dispatch for CPU kernels that also read and write bf16/f16 activations: the kernel is
// written once over a storage type (what memory holds) and a compute type (what its arithmetic
// runs in). f32 and f64 compute in themselves; bf16 and f16 are storage types whose values are
// widened to float on load and rounded once on store (convert<>()), so every sum and product
// runs in f32.
#pragma once

#include "absl/strings/str_cat.h"
#include "core/convert.h"
#include "core/dtype.h"
#include "core/error.h"

namespace ompq::cpu {

template <typename Storage, typename Compute>
struct StorageTypes {
  using storage = Storage;
  using compute = Compute;
};

// Calls fn(StorageTypes<S, C>()) for a floating dtype; any other dtype throws an Error naming `op`.
template <typename Fn>
decltype(auto) dispatch_floating_storage(DType dtype, const char* op, const Fn& fn) {
  switch (dtype) {
    case DType::kF32:
      return fn(StorageTypes<float, float>());
    case DType::kF64:
      return fn(StorageTypes<double, double>());
    case DType::kBF16:
      return fn(StorageTypes<bf16, float>());
    case DType::kF16:
      return fn(StorageTypes<f16, float>());
    default:
      throw_error(__FILE__, __LINE__,
                  absl::StrCat(op, ": unsupported dtype ", dtype_name(dtype),
                               " (expected f32, f64, bf16 or f16)"));
  }
}

}  // namespace ompq::cpu
