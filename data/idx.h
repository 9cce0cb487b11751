// IDX files (the MNIST / Fashion-MNIST container): a 4-byte magic (two zero bytes, a type code,
// the number of dims), the dims as big-endian uint32, then the values row-major and big-endian.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace ompq::data {

// Reads an IDX file, plain or gzip-compressed (told apart by the gzip magic bytes, never by the
// file name), into a CPU tensor of the stored shape. Type codes: 0x08 u8, 0x09 i8, 0x0C i32,
// 0x0D f32, 0x0E f64 (0x0B int16 has no tensor dtype and is rejected). Every error names the
// file: missing or unreadable file, bad magic, unsupported type code, truncated header,
// truncated data (expected vs. got bytes), trailing bytes after the data, corrupt gzip stream.
absl::StatusOr<Tensor> read_idx(const std::string& path);

}  // namespace ompq::data
