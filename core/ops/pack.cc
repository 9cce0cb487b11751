#include "core/ops/pack.h"

#include "core/ops/quant_math.h"

namespace ompq {

DispatchStub<PackKernel> pack_stub("pack_codes");
DispatchStub<UnpackKernel> unpack_stub("unpack_codes");

namespace ops {
namespace {

void check_bits(int bits, const char* op) {
  OMPQ_CHECK(bits >= 2 && bits <= 8, op, ": bits = ", bits, " (expected 2..8)");
}

// Whether every code of [qmin, qmin + 2^bits - 1] fits in `dtype`.
bool dtype_holds(DType dtype, int bits, int64_t qmin) {
  const int64_t qmax = qmin + (int64_t{1} << bits) - 1;
  switch (dtype) {
    case DType::kI8:
      return qmin >= -128 && qmax <= 127;
    case DType::kU8:
      return qmin >= 0 && qmax <= 255;
    case DType::kI32:
      return qmin >= INT32_MIN && qmax <= INT32_MAX;
    default:
      return false;
  }
}

}  // namespace

Tensor pack_codes(const Tensor& codes, int bits, int64_t qmin) {
  check_bits(bits, "pack_codes");
  OMPQ_CHECK(
      codes.dtype() == DType::kI8 || codes.dtype() == DType::kU8 || codes.dtype() == DType::kI32,
      "pack_codes: codes of dtype ", dtype_name(codes.dtype()), " (expected i8, u8 or i32)");
  OMPQ_CHECK(codes.dim() >= 1, "pack_codes: codes of shape ", shape_str(codes.shape()),
             " (expected at least one dim: the rows)");
  const int64_t rows = codes.size(0);
  const int64_t count = shape_numel(Shape(codes.shape().begin() + 1, codes.shape().end()));
  Tensor packed = Tensor::zeros({rows, packed_row_bytes(count, bits)}, DType::kU8, codes.device());
  if (codes.numel() == 0) return packed;
  const int64_t bad =
      pack_stub(codes.device(), packed, codes.contiguous().view({rows, count}), bits, qmin);
  OMPQ_CHECK(bad == 0, "pack_codes: ", bad, " of ", codes.numel(), " codes of shape ",
             shape_str(codes.shape()), " lie outside the ", bits, "-bit range [", qmin, ", ",
             qmin + (int64_t{1} << bits) - 1, "]");
  return packed;
}

Tensor unpack_codes(const Tensor& packed, int64_t count, int bits, int64_t qmin, DType dtype) {
  check_bits(bits, "unpack_codes");
  OMPQ_CHECK(count >= 0, "unpack_codes: negative count ", count);
  OMPQ_CHECK(packed.dtype() == DType::kU8 && packed.dim() == 2 &&
                 packed.size(1) == packed_row_bytes(count, bits),
             "unpack_codes: packed tensor of shape ", shape_str(packed.shape()), " and dtype ",
             dtype_name(packed.dtype()), " (expected u8 [rows, ", packed_row_bytes(count, bits),
             "] for ", count, " codes of ", bits, " bits per row)");
  OMPQ_CHECK(dtype_holds(dtype, bits, qmin), "unpack_codes: dtype ", dtype_name(dtype),
             " cannot hold the ", bits, "-bit codes from ", qmin);
  Tensor codes = Tensor::empty({packed.size(0), count}, dtype, packed.device());
  if (codes.numel() == 0) return codes;
  unpack_stub(packed.device(), codes, packed.contiguous(), bits, qmin);
  return codes;
}

}  // namespace ops
}  // namespace ompq
