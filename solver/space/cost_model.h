// Model size and BOPs of a weight bit allocation (docs/METHOD.md 2.8), and the budgets that an
// allocation can meet at all (docs/METHOD.md 2.7).
//
// Size is the reference's "Mb", which is MiB (2^20 bytes) of weight storage:
//   size = sum_i bits_i * params_i / 8 / 2^20 + sum_fixed params / 2^20
// (QAT's stem and classifier count at 8 bits, 1 byte per parameter).
// BOPs, in G (1e9), with every searched layer's activations at `act_bits` and the fixed layers at
// W8A8:
//   BOPs = (sum_fixed FLOPs * 64 + sum_i FLOPs_i * bits_i * act_bits) / 1e9
// `reference_bops` takes the reference counter's FLOPs (SearchUnit::reference_flops, with its
// ResNet-50 bugs), which reproduces the published BOPs. (The reference's print also hard-codes
// act_bits = 5; its published numbers use the experiment's activation bits, as here.)
#pragma once

#include <vector>

#include "solver/space/search_space.h"

namespace ompq::solver {

struct Range {
  double min = 0.0;
  double max = 0.0;
};

// `bits` has one entry per searched unit.
double model_size_mib(const SearchSpace& space, const std::vector<int>& bits);
double bops_g(const SearchSpace& space, const std::vector<int>& bits, int act_bits,
              bool reference_bops);
// Every weight in fp32 (4 bytes), searched or not.
double fp32_size_mib(const SearchSpace& space);

// Size with every searched unit at min_bits, and at max_bits.
Range size_range_mib(const SearchSpace& space);
Range bops_range_g(const SearchSpace& space, int act_bits, bool reference_bops);

}  // namespace ompq::solver
