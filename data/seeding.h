// Derivation of independent Philox keys, so that every random stream of the data pipeline (labels
// of a synthetic set, an epoch's shuffle, one example's transforms) is a pure function of the run's
// seed and a few integers, whichever thread computes it.
#pragma once

#include <cstdint>

#include "core/philox.h"

namespace ompq::data {

// A 64-bit key for stream `counter` under `key`.
inline uint64_t derive_key(uint64_t key, uint64_t counter) {
  Philox4x32 block = philox4x32(counter, key);
  return (static_cast<uint64_t>(block.v[1]) << 32) | block.v[0];
}

}  // namespace ompq::data
