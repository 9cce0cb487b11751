#include "data/synthetic.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "data/seeding.h"

namespace ompq::data {

SyntheticDataset::SyntheticDataset(SyntheticOptions options) : options_(std::move(options)) {
  OMPQ_CHECK(options_.size >= 0, "SyntheticDataset: size ", options_.size, " is negative");
  OMPQ_CHECK(options_.num_classes >= 1, "SyntheticDataset: num_classes ", options_.num_classes,
             " (expected >= 1)");
  bool positive = !options_.input_shape.empty();
  for (int64_t d : options_.input_shape) positive = positive && d > 0;
  OMPQ_CHECK(positive, "SyntheticDataset: input shape ", shape_str(options_.input_shape),
             " (expected at least one dim, all positive)");
  numel_ = shape_numel(options_.input_shape);
  label_key_ = derive_key(options_.seed, 0);
  pattern_key_ = derive_key(options_.seed, 1);
  noise_key_ = derive_key(options_.seed, 2);
}

std::string SyntheticDataset::name() const {
  return absl::StrCat("synthetic dataset (", options_.size, " examples of ",
                      shape_str(options_.input_shape), ", ", options_.num_classes,
                      " classes, seed ", options_.seed, ")");
}

Example SyntheticDataset::load(int64_t index, Generator& /*rng*/) const {
  const int64_t classes = options_.num_classes;
  const int64_t label = static_cast<int64_t>(derive_key(label_key_, index) % classes);
  const float level = classes > 1 ? 2.0f * label / (classes - 1) - 1.0f : 0.0f;
  // Uniform in [-sqrt(3), sqrt(3)) has unit variance.
  const float noise_scale = options_.noise * std::sqrt(12.0f) / 16777216.0f;
  const float noise_shift = -0.5f * options_.noise * std::sqrt(12.0f);

  Tensor input = Tensor::empty(options_.input_shape);
  float* dst = input.data<float>();
  // Stream positions: pattern bit (label * numel + j), noise word (index * numel + j). A Philox
  // block holds 128 pattern bits or 4 noise words; each is computed once.
  const uint64_t pattern_base = static_cast<uint64_t>(label) * numel_;
  const uint64_t noise_base = static_cast<uint64_t>(index) * numel_;
  Philox4x32 pattern_block{}, noise_block{};
  for (int64_t j = 0; j < numel_; ++j) {
    const uint64_t bit = pattern_base + j;
    if (j == 0 || bit % 128 == 0) pattern_block = philox4x32(bit / 128, pattern_key_);
    const uint64_t word = noise_base + j;
    if (j == 0 || word % 4 == 0) noise_block = philox4x32(word / 4, noise_key_);
    const float sign = (pattern_block.v[(bit / 32) % 4] >> (bit % 32)) & 1u ? 1.0f : -1.0f;
    const float noise =
        static_cast<float>(noise_block.v[word % 4] >> 8) * noise_scale + noise_shift;
    dst[j] = level + sign + noise;
  }
  return Example{input, label};
}

}  // namespace ompq::data
