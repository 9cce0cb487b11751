// safetensors files: an 8-byte little-endian header length N, N bytes of JSON header, then the raw
// little-endian data of every tensor. The header maps each tensor name to
// {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} (offsets relative to the start of
// the data section) and may hold "__metadata__": a map of strings to strings.
//
// The loader accepts tensors listed in any order and holes between them, and rejects overlapping
// byte ranges (two tensors aliasing the same bytes is never what a writer meant) and headers over
// 100 MB (the reference implementation's limit).
#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace ompq {

using TensorMap = std::map<std::string, Tensor>;
using MetadataMap = std::map<std::string, std::string>;

struct SafetensorsContents {
  TensorMap tensors;  // contiguous CPU tensors that own their memory
  MetadataMap metadata;
};

// Reads a whole file. Every problem (missing or truncated file, malformed header, unknown dtype,
// offsets that disagree with the shape or lie outside the data section) is an error status whose
// message names the file, the tensor when there is one, and what was expected.
absl::StatusOr<SafetensorsContents> load_safetensors(const std::string& path);

// Writes `tensors` (any device, layout and dtype; the names must not be empty or "__metadata__")
// in name order, atomically (core/atomic_file.h): a failed or interrupted save leaves any previous
// file intact.
absl::Status save_safetensors(const std::string& path, const TensorMap& tensors,
                              const MetadataMap& metadata = {});

}  // namespace ompq
