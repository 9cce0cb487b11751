// The first `count` examples of another dataset: quick runs and tests on a slice of real data.
#pragma once

#include <memory>

#include "data/dataset.h"

namespace ompq::data {

class Prefix : public Dataset {
 public:
  // Throws Error when count is negative or larger than the dataset.
  Prefix(std::shared_ptr<const Dataset> base, int64_t count);

  int64_t size() const override { return count_; }
  Shape input_shape() const override { return base_->input_shape(); }
  int64_t num_classes() const override { return base_->num_classes(); }
  std::string name() const override;

 protected:
  Example load(int64_t index, Generator& rng) const override;

 private:
  std::shared_ptr<const Dataset> base_;
  int64_t count_;
};

}  // namespace ompq::data
