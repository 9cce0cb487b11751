// The OMPQ search end to end (docs/METHOD.md section 2): features of one batch -> Gram matrices ->
// ORM matrix -> layer importance -> bit allocation, with the time of each phase. The projection
// solver skips the first three and needs no images.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "layers/models/model.h"
#include "solver/search/bit_allocation.h"
#include "solver/space/search_space.h"

namespace ompq::solver {

struct SearchOptions {
  std::string model_name;  // prefixes error messages ("resnet18: ...")
  QuantMode mode = QuantMode::kQat;
  double beta = 1.0;  // theta = exp(-beta * gamma)
  AllocationOptions allocation;
};

struct SearchTimings {
  double features_s = 0.0;  // the forward pass
  double orm_s = 0.0;       // Gram matrices, ORM matrix, importance
  double solve_s = 0.0;     // LP/ILP/projection and rounding
};

struct SearchResult {
  SearchSpace space;
  BitAllocation allocation;
  // lp and ilp only: the f64 [L, L] ORM matrix, gamma, log theta and log w per searched unit.
  Tensor orm;
  std::vector<double> gamma, log_theta, log_weights;
  SearchTimings timings;
};

// `images`: one batch [N, C, H, W] (N >= 2) on the model's device; its H x W also sizes the FLOP
// counts. The projection solver takes an undefined tensor (and sizes FLOPs for
// model.input_shape()). Bad options (budget out of range, N < 2, ...) are errors; the model comes
// back unchanged.
absl::StatusOr<SearchResult> search(nn::Model& model, const Tensor& images,
                                    const SearchOptions& options);

}  // namespace ompq::solver
