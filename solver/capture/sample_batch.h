// The images a search or a PTQ calibration reads: the first batch of `count` examples of a dataset
// shuffled by `seed`, as the reference takes the first batch of a shuffled reader
// (docs/METHOD.md 1.2, 4.1). A pure function of (dataset, count, seed).
#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "data/dataloader.h"
#include "data/dataset.h"

namespace ompq::solver {

// The batch with its labels (the Hessian-trace baseline's loss needs them), on the CPU. `what`
// names the request in errors ("--num_images").
absl::StatusOr<data::Batch> first_shuffled_labeled_batch(
    const std::shared_ptr<const data::Dataset>& dataset, int64_t count, uint64_t seed,
    const std::string& what);

// Its images, [count, C, H, W].
absl::StatusOr<Tensor> first_shuffled_batch(const std::shared_ptr<const data::Dataset>& dataset,
                                            int64_t count, uint64_t seed, const std::string& what);

}  // namespace ompq::solver
