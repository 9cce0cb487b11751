#include "data/subset.h"

#include "absl/strings/str_cat.h"
#include "core/error.h"

namespace ompq::data {

Subset::Subset(std::shared_ptr<const Dataset> base, int64_t count, SubsetSpacing spacing)
    : base_(std::move(base)), count_(count), spacing_(spacing) {
  OMPQ_CHECK(count >= 0 && count <= base_->size(), "Subset: ", count, " examples requested from ",
             base_->name(), ", which has ", base_->size());
}

std::string Subset::name() const {
  return absl::StrCat(spacing_ == SubsetSpacing::kFirst ? "first " : "", count_,
                      spacing_ == SubsetSpacing::kSpread ? " spread over " : " of ", base_->name());
}

int64_t Subset::base_index(int64_t index) const {
  if (spacing_ == SubsetSpacing::kFirst) return index;
  // index * size passes int64 beyond about 3e9 examples; the product is taken in 128 bits.
  return static_cast<int64_t>(static_cast<__int128>(index) * base_->size() / count_);
}

Example Subset::load(int64_t index, Generator& rng) const {
  return base_->get(base_index(index), rng.seed());
}

}  // namespace ompq::data
