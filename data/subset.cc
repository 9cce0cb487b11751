#include "data/subset.h"

#include "absl/strings/str_cat.h"
#include "core/error.h"

namespace ompq::data {

Prefix::Prefix(std::shared_ptr<const Dataset> base, int64_t count)
    : base_(std::move(base)), count_(count) {
  OMPQ_CHECK(count >= 0 && count <= base_->size(), "Prefix: ", count,
             " examples requested from ", base_->name(), ", which has ", base_->size());
}

std::string Prefix::name() const { return absl::StrCat("first ", count_, " of ", base_->name()); }

Example Prefix::load(int64_t index, Generator& rng) const {
  return base_->get(index, rng.seed());
}

}  // namespace ompq::data
