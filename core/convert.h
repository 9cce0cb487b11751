// Element conversion between dtypes, __host__ __device__ so that the CUDA copy kernel rounds
// exactly as the CPU one: float <-> bf16/f16 directly, everything else through double (static_cast
// semantics: floats to integers truncate toward zero; out-of-range values are undefined).
#pragma once

#include <type_traits>

#include "core/dtype.h"

namespace ompq {

template <typename T>
OMPQ_HD inline double convert_to_double(T v) {
  if constexpr (std::is_same_v<T, bf16>)
    return bf16_to_float(v);
  else if constexpr (std::is_same_v<T, f16>)
    return f16_to_float(v);
  else
    return static_cast<double>(v);
}

template <typename T>
OMPQ_HD inline T convert_from_double(double v) {
  if constexpr (std::is_same_v<T, bf16>)
    return float_to_bf16(static_cast<float>(v));
  else if constexpr (std::is_same_v<T, f16>)
    return float_to_f16(static_cast<float>(v));
  else
    return static_cast<T>(v);
}

template <typename Dst, typename Src>
OMPQ_HD inline Dst convert(Src v) {
  if constexpr (std::is_same_v<Dst, Src>)
    return v;
  else if constexpr (std::is_same_v<Src, float> && std::is_same_v<Dst, bf16>)
    return float_to_bf16(v);
  else if constexpr (std::is_same_v<Src, bf16> && std::is_same_v<Dst, float>)
    return bf16_to_float(v);
  else if constexpr (std::is_same_v<Src, float> && std::is_same_v<Dst, f16>)
    return float_to_f16(v);
  else if constexpr (std::is_same_v<Src, f16> && std::is_same_v<Dst, float>)
    return f16_to_float(v);
  else
    return convert_from_double<Dst>(convert_to_double(v));
}

}  // namespace ompq
