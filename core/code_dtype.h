// Binding the integer code dtypes of quantization (i8, u8, i32) to C++ types, for the kernels of
// both backends (host code: the CUDA side picks the type before it launches).
#pragma once

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "core/dtype.h"
#include "core/error.h"

namespace ompq {

// Calls fn(Code{}) with Code the C++ type of `dtype`; any other dtype throws an Error naming op.
template <typename Fn>
auto dispatch_code_dtype(DType dtype, const char* op, const Fn& fn) {
  switch (dtype) {
    case DType::kI8:
      return fn(int8_t{});
    case DType::kU8:
      return fn(uint8_t{});
    case DType::kI32:
      return fn(int32_t{});
    default:
      break;
  }
  throw_error(__FILE__, __LINE__,
              absl::StrCat(op, ": integer codes of dtype ", dtype_name(dtype),
                           " (expected i8, u8 or i32)"));
}

}  // namespace ompq
