#include "solver/capture/sample_batch.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "core/error.h"
#include "data/dataloader.h"

namespace ompq::solver {

absl::StatusOr<data::Batch> first_shuffled_labeled_batch(
    const std::shared_ptr<const data::Dataset>& dataset, int64_t count, uint64_t seed,
    const std::string& what) {
  if (count < 1)
    return absl::InvalidArgumentError(absl::StrCat(what, " ", count, " (expected >= 1)"));
  if (count > dataset->size()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", count, " but ", dataset->name(),
                                                   " has only ", dataset->size(), " images"));
  }
  data::DataLoaderOptions options;
  options.batch_size = count;
  options.shuffle = true;
  options.seed = seed;
  data::DataLoader loader(dataset, options);
  std::optional<data::Batch> batch = loader.batches().next();
  if (!batch.has_value()) {
    return absl::InternalError(absl::StrCat(dataset->name(), ": no batch of ", count, " images"));
  }
  return *std::move(batch);
}

absl::StatusOr<Tensor> first_shuffled_batch(const std::shared_ptr<const data::Dataset>& dataset,
                                            int64_t count, uint64_t seed, const std::string& what) {
  OMPQ_ASSIGN_OR_RETURN(data::Batch batch,
                        first_shuffled_labeled_batch(dataset, count, seed, what));
  return batch.inputs;
}

}  // namespace ompq::solver
