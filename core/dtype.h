// Element types. bf16 and f16 are storage types: arithmetic converts them to float. The conversion
// functions are __host__ __device__ so that CPU and CUDA kernels round identically.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#if defined(__CUDACC__)
#define OMPQ_HD __host__ __device__
#else
#define OMPQ_HD
#endif

namespace ompq {

enum class DType : uint8_t { kF32, kF64, kBF16, kF16, kI8, kU8, kI32, kI64 };
constexpr int kNumDTypes = 8;

size_t dtype_size(DType dtype);
// Lower-case short name: "f32", "bf16", "i64", ...
const char* dtype_name(DType dtype);
// The safetensors spelling: "F32", "BF16", "I64", ...
const char* dtype_safetensors_name(DType dtype);
absl::StatusOr<DType> dtype_from_safetensors_name(absl::string_view name);
bool is_floating(DType dtype);

// bfloat16: the upper half of an IEEE float; conversion rounds to nearest even, NaN stays NaN.
struct bf16 {
  uint16_t bits;
};
OMPQ_HD inline float bf16_to_float(bf16 v) {
  uint32_t u = static_cast<uint32_t>(v.bits) << 16;
  float f;
  memcpy(&f, &u, sizeof(f));
  return f;
}
OMPQ_HD inline bf16 float_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof(u));
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{static_cast<uint16_t>((u >> 16) | 0x40)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16{static_cast<uint16_t>(u >> 16)};
}

// IEEE half precision; conversion rounds to nearest even, handles subnormals, inf and NaN.
struct f16 {
  uint16_t bits;
};
OMPQ_HD inline float f16_to_float(f16 v) {
  uint32_t sign = static_cast<uint32_t>(v.bits & 0x8000u) << 16;
  uint32_t exp = (v.bits >> 10) & 0x1fu;
  uint32_t mant = v.bits & 0x3ffu;
  uint32_t u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (mant << 13);
  } else if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do {
        mant <<= 1;
        ++e;
      } while ((mant & 0x400u) == 0);
      u = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  memcpy(&f, &u, sizeof(f));
  return f;
}
OMPQ_HD inline f16 float_to_f16(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof(u));
  uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return f16{static_cast<uint16_t>(sign | 0x7e00u)};   // NaN
  if (abs >= 0x477ff000u) return f16{static_cast<uint16_t>(sign | 0x7c00u)};  // overflow -> inf
  if (abs < 0x38800000u) {  // subnormal or zero in half
    if (abs < 0x33000000u) return f16{sign};
    uint32_t exp = abs >> 23;
    uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - exp;  // 14 + (112 - exp) ... places the value at half's subnormal scale
    uint32_t rounded = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (rounded & 1u))) ++rounded;
    return f16{static_cast<uint16_t>(sign | rounded)};
  }
  uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return f16{static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13))};
}

template <typename T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::kF32;
};
template <>
struct DTypeOf<double> {
  static constexpr DType value = DType::kF64;
};
template <>
struct DTypeOf<bf16> {
  static constexpr DType value = DType::kBF16;
};
template <>
struct DTypeOf<f16> {
  static constexpr DType value = DType::kF16;
};
template <>
struct DTypeOf<int8_t> {
  static constexpr DType value = DType::kI8;
};
template <>
struct DTypeOf<uint8_t> {
  static constexpr DType value = DType::kU8;
};
template <>
struct DTypeOf<int32_t> {
  static constexpr DType value = DType::kI32;
};
template <>
struct DTypeOf<int64_t> {
  static constexpr DType value = DType::kI64;
};

}  // namespace ompq

// Calls the lambda-like body with `scalar_t` bound to the C++ type of a floating compute dtype
// (f32 or f64); any other dtype throws an Error naming the op.
#define OMPQ_DISPATCH_FLOATING(dtype, op_name, ...)                                               \
  [&] {                                                                                           \
    switch (dtype) {                                                                              \
      case ::ompq::DType::kF32: {                                                                 \
        using scalar_t = float;                                                                   \
        return __VA_ARGS__();                                                                     \
      }                                                                                           \
      case ::ompq::DType::kF64: {                                                                 \
        using scalar_t = double;                                                                  \
        return __VA_ARGS__();                                                                     \
      }                                                                                           \
      default:                                                                                    \
        ::ompq::throw_error(__FILE__, __LINE__,                                                   \
                            ::absl::StrCat(op_name, ": unsupported dtype ",                       \
                                           ::ompq::dtype_name(dtype), " (expected f32 or f64)")); \
    }                                                                                             \
  }()

// As above over every dtype, with bf16/f16 bound to their storage structs.
#define OMPQ_DISPATCH_ALL(dtype, op_name, ...)                                       \
  [&] {                                                                              \
    switch (dtype) {                                                                 \
      case ::ompq::DType::kF32: {                                                    \
        using scalar_t = float;                                                      \
        return __VA_ARGS__();                                                        \
      }                                                                              \
      case ::ompq::DType::kF64: {                                                    \
        using scalar_t = double;                                                     \
        return __VA_ARGS__();                                                        \
      }                                                                              \
      case ::ompq::DType::kBF16: {                                                   \
        using scalar_t = ::ompq::bf16;                                               \
        return __VA_ARGS__();                                                        \
      }                                                                              \
      case ::ompq::DType::kF16: {                                                    \
        using scalar_t = ::ompq::f16;                                                \
        return __VA_ARGS__();                                                        \
      }                                                                              \
      case ::ompq::DType::kI8: {                                                     \
        using scalar_t = int8_t;                                                     \
        return __VA_ARGS__();                                                        \
      }                                                                              \
      case ::ompq::DType::kU8: {                                                     \
        using scalar_t = uint8_t;                                                    \
        return __VA_ARGS__();                                                        \
      }                                                                              \
      case ::ompq::DType::kI32: {                                                    \
        using scalar_t = int32_t;                                                    \
        return __VA_ARGS__();                                                        \
      }                                                                              \
      case ::ompq::DType::kI64: {                                                    \
        using scalar_t = int64_t;                                                    \
        return __VA_ARGS__();                                                        \
      }                                                                              \
    }                                                                                \
    ::ompq::throw_error(__FILE__, __LINE__, ::absl::StrCat(op_name, ": bad dtype")); \
  }()
