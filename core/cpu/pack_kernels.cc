// CPU bit packing: rows are independent (each starts on a byte boundary), so threads split rows.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/code_dtype.h"
#include "core/cpu/register.h"
#include "core/ops/pack.h"
#include "core/ops/quant_math.h"
#include "core/parallel.h"

namespace ompq::cpu {
namespace {

template <typename Code>
int64_t pack_impl(const Tensor& packed, const Tensor& codes, int bits, int64_t qmin) {
  const int64_t rows = codes.size(0), count = codes.size(1), row_bytes = packed.size(1);
  const Code* src = static_cast<const Code*>(codes.data_ptr());
  uint8_t* dst = static_cast<uint8_t*>(packed.data_ptr());
  const int64_t levels = int64_t{1} << bits;
  std::vector<int64_t> bad_per_row(rows, 0);
  parallel_for(0, rows, std::max<int64_t>(1, 65536 / std::max<int64_t>(count, 1)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t r = lo; r < hi; ++r) {
                   const Code* q = src + r * count;
                   uint8_t* row = dst + r * row_bytes;
                   int64_t bad = 0;
                   for (int64_t j = 0; j < count; ++j) {
                     const int64_t value = static_cast<int64_t>(q[j]) - qmin;
                     bad += value < 0 || value >= levels;
                     pack_value(row, j, bits, static_cast<uint32_t>(value & (levels - 1)));
                   }
                   bad_per_row[r] = bad;
                 }
               });
  int64_t bad = 0;
  for (int64_t b : bad_per_row) bad += b;
  return bad;
}

template <typename Code>
void unpack_impl(const Tensor& codes, const Tensor& packed, int bits, int64_t qmin) {
  const int64_t rows = codes.size(0), count = codes.size(1), row_bytes = packed.size(1);
  const uint8_t* src = static_cast<const uint8_t*>(packed.data_ptr());
  Code* dst = static_cast<Code*>(codes.data_ptr());
  parallel_for(0, rows, std::max<int64_t>(1, 65536 / std::max<int64_t>(count, 1)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t r = lo; r < hi; ++r) {
                   const uint8_t* row = src + r * row_bytes;
                   Code* q = dst + r * count;
                   for (int64_t j = 0; j < count; ++j) {
                     q[j] = static_cast<Code>(
                         static_cast<int64_t>(unpack_value(row, row_bytes, j, bits)) + qmin);
                   }
                 }
               });
}

int64_t pack_kernel(const Tensor& packed, const Tensor& codes, int bits, int64_t qmin) {
  return dispatch_code_dtype(codes.dtype(), "pack_codes", [&](auto code) {
    return pack_impl<decltype(code)>(packed, codes, bits, qmin);
  });
}

void unpack_kernel(const Tensor& codes, const Tensor& packed, int bits, int64_t qmin) {
  dispatch_code_dtype(codes.dtype(), "unpack_codes",
                      [&](auto code) { unpack_impl<decltype(code)>(codes, packed, bits, qmin); });
}

}  // namespace

void register_pack_kernels() {
  pack_stub.register_kernel(DeviceType::kCPU, pack_kernel);
  unpack_stub.register_kernel(DeviceType::kCPU, unpack_kernel);
}

}  // namespace ompq::cpu
