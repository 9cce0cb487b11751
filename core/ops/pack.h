// Bit packing of integer codes for storage and low-bit kernels (raw: no autograd). The layout is
// described with the per-element helpers in core/ops/quant_math.h: every row (one output channel of
// a weight) is a little-endian bit stream of `bits`-bit values code - qmin, padded to whole bytes.
#pragma once

#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace ompq {

// packed: zero-filled u8 [rows, row_bytes]; codes: contiguous [rows, count] (i8, u8 or i32).
// Packs every code and returns how many lay outside [qmin, qmin + 2^bits - 1] (those are not
// representable: their packed bits are meaningless).
using PackKernel = int64_t(const Tensor& packed, const Tensor& codes, int bits, int64_t qmin);
// codes: [rows, count] (i8, u8 or i32) = stored value + qmin.
using UnpackKernel = void(const Tensor& codes, const Tensor& packed, int bits, int64_t qmin);
extern DispatchStub<PackKernel> pack_stub;
extern DispatchStub<UnpackKernel> unpack_stub;

namespace ops {

// codes: [rows, ...] integer codes in [qmin, qmin + 2^bits - 1], bits 2..8; the dims after the
// first are flattened into one row of count = numel / rows codes. Returns u8
// [rows, ceil(count * bits / 8)]. A code outside the range is an error.
Tensor pack_codes(const Tensor& codes, int bits, int64_t qmin);
// The inverse: packed u8 [rows, ceil(count * bits / 8)] -> codes [rows, count] of `dtype` (i8, u8
// or i32, wide enough for [qmin, qmin + 2^bits - 1]).
Tensor unpack_codes(const Tensor& packed, int64_t count, int bits, int64_t qmin, DType dtype);

}  // namespace ops
}  // namespace ompq
