// A slice of another dataset, for quick runs and tests on part of real data: its first `count`
// examples, or `count` examples spread evenly over it (example i is base example
// floor(i * size / count)), which keeps every class of a dataset stored class by class (an image
// folder) where the first examples would all be of its first classes.
#pragma once

#include <memory>

#include "data/dataset.h"

namespace ompq::data {

enum class SubsetSpacing { kFirst, kSpread };

class Subset : public Dataset {
 public:
  // Throws Error when count is negative or larger than the dataset.
  Subset(std::shared_ptr<const Dataset> base, int64_t count, SubsetSpacing spacing);

  int64_t size() const override { return count_; }
  Shape input_shape() const override { return base_->input_shape(); }
  int64_t num_classes() const override { return base_->num_classes(); }
  std::string name() const override;
  const Dataset& base() const { return *base_; }

 protected:
  Example load(int64_t index, Generator& rng) const override;

 private:
  int64_t base_index(int64_t index) const;

  std::shared_ptr<const Dataset> base_;
  int64_t count_;
  SubsetSpacing spacing_;
};

}  // namespace ompq::data
