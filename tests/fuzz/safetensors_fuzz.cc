// load_safetensors (core/safetensors.h) on any bytes: the header length, the header's JSON, every
// entry's dtype, shape and data offsets, the metadata map and the data section's bounds. A file it
// accepts must hold tensors whose byte counts match their shapes.
#include <cstdint>
#include <cstdlib>

#include "core/safetensors.h"
#include "tests/fuzz/fuzz_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = ompq::fuzz::write_fuzz_file("input.safetensors", data, size);
  absl::StatusOr<ompq::SafetensorsContents> contents = ompq::load_safetensors(path);
  if (!contents.ok()) return 0;
  size_t bytes = 0;
  for (const auto& [name, tensor] : contents->tensors) {
    if (!tensor.is_contiguous()) std::abort();
    bytes += tensor.nbytes();
  }
  // Every accepted tensor's bytes come from the file (overlaps are refused).
  if (bytes > size) std::abort();
  return 0;
}
