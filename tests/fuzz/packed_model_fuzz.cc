// load_packed (layers/quant/packed_model.h) on any bytes: the safetensors container, the format
// tag, the "ompq.layers" JSON (kinds, shapes, conv parameters, weight and input specs) and every
// packed weight, scale, zero point and bias checked against it. A model that loads is unpacked
// and dequantized, which reads every packed byte the metadata promises.
#include <cstdint>
#include <cstdlib>

#include "layers/quant/packed_model.h"
#include "tests/fuzz/fuzz_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = ompq::fuzz::write_fuzz_file("packed.safetensors", data, size);
  absl::StatusOr<ompq::nn::PackedModel> packed = ompq::nn::load_packed(path);
  if (!packed.ok()) return 0;
  for (const ompq::nn::PackedLayer& layer : packed->layers) {
    if (layer.weight_codes().shape() != layer.weight_shape ||
        layer.dequantized_weight().shape() != layer.weight_shape) {
      std::abort();
    }
  }
  return 0;
}
