// The bit allocations OMPQ is compared with at the same model size (issue 4, item 7): uniform
// bits, and random bits filled up to the budget. Both are data-free, keep to the size budget
// (never over it), use the space's bit range [min_bits, max_bits], and leave the fixed units
// (QAT's stem and classifier) at 8 bits as OMPQ does. A BOPs budget is an error; a size budget
// outside the feasible range is the error of check_allocation_options.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "solver/search/bit_allocation.h"
#include "solver/space/search_space.h"

namespace ompq::solver {

// Every searched unit at `bits`, the largest bit-width whose size fits the budget.
struct UniformAllocation {
  BitAllocation allocation;
  int bits = 0;
  // The size with every unit at bits + 1 when the budget lies strictly between the two sizes;
  // 0 when the budget is the size of `bits` exactly or bits is max_bits.
  double next_size_mib = 0.0;
  // One sentence for people: which uniform size the budget meets or lies between.
  std::string summary;
};

absl::StatusOr<UniformAllocation> uniform_allocation(const SearchSpace& space,
                                                     const AllocationOptions& options);

// A random allocation as close to the budget as single bit steps get: every unit draws its bits
// uniformly from [min_bits, max_bits]; while the size is over the budget, a random unit above
// min_bits loses one bit; then, while some unit below max_bits can gain one bit within the budget,
// a random one of them does. The result is under the budget by less than the one-bit step
// (params / 2^23 MiB) of every unit below max_bits. Not uniform over the allocations of that size:
// units with small one-bit steps end at max_bits more often, as theirs are the steps that still fit
// at the end. A pure function of (space, budget, seed): the draws are Philox words at stream
// positions 0, 1, ... of `seed`.
absl::StatusOr<BitAllocation> random_allocation(const SearchSpace& space,
                                                const AllocationOptions& options, uint64_t seed);

}  // namespace ompq::solver
