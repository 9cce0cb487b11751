#include "data/dataset.h"

namespace ompq::data {

Example Dataset::get(int64_t index, uint64_t sample_seed) const {
  OMPQ_CHECK(index >= 0 && index < size(), name(), ": index ", index, " is out of range [0, ",
             size(), ")");
  Generator rng(sample_seed);
  Example example = load(index, rng);
  // Checked once here so that consumers (the DataLoader's raw copy above all) can rely on it.
  OMPQ_CHECK(example.input.dtype() == DType::kF32 && example.input.is_contiguous() &&
                 example.input.shape() == input_shape(),
             name(), ": example ", index, " has a ", dtype_name(example.input.dtype()),
             " input of shape ", shape_str(example.input.shape()),
             " (expected contiguous f32 of shape ", shape_str(input_shape()), ")");
  OMPQ_CHECK(example.label >= 0 && example.label < num_classes(), name(), ": example ", index,
             " has label ", example.label, " (expected 0..", num_classes() - 1, ")");
  return example;
}

}  // namespace ompq::data
