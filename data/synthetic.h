// A synthetic classification dataset of any input shape and class count, for smoke runs and
// benchmarks without data on disk. Example i is a pure function of (seed, i) and is learnable:
//   label = a hash of (seed, i) mod num_classes (labels do not follow index order, so strided
//           sharding still gives every rank every class),
//   input = level(label) + pattern(label) + noise * u,
// where level(c) = 2c/(K-1) - 1 is constant over the input (a globally pooled CNN can read it off
// for small class counts), pattern(c) is a fixed random +-1 per element and class (a linear model
// separates any number of classes with it), and u is uniform noise of unit variance, fresh per
// example. Uniform rather than normal noise because one Philox block then yields 4 elements,
// which keeps ImageNet-sized examples cheap.
#pragma once

#include <cstdint>

#include "data/dataset.h"

namespace ompq::data {

struct SyntheticOptions {
  int64_t size = 1024;
  Shape input_shape = {1, 28, 28};
  int64_t num_classes = 10;
  uint64_t seed = 0;
  float noise = 1.0f;  // standard deviation of the per-element noise
};

class SyntheticDataset : public Dataset {
 public:
  // Throws Error for a negative size, an empty or non-positive shape, or num_classes < 1.
  explicit SyntheticDataset(SyntheticOptions options);

  int64_t size() const override { return options_.size; }
  Shape input_shape() const override { return options_.input_shape; }
  int64_t num_classes() const override { return options_.num_classes; }
  std::string name() const override;

 protected:
  Example load(int64_t index, Generator& rng) const override;

 private:
  SyntheticOptions options_;
  int64_t numel_;
  // Philox keys of the three independent streams, derived from the seed.
  uint64_t label_key_, pattern_key_, noise_key_;
};

}  // namespace ompq::data
