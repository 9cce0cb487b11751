// Dataset: a fixed-size, random-access collection of labelled examples. The DataLoader reads it
// from worker threads, so get() must be thread-safe.
//
// Implementations use plain loops, never parallel_for or tensor ops: get() runs on std::thread
// workers, and an OpenMP region opened from each of them would start its own thread team and
// oversubscribe the cores that the training step's OpenMP team (ours and oneDNN's) already uses.
#pragma once

#include <cstdint>
#include <string>

#include "core/random.h"
#include "core/tensor.h"

namespace ompq::data {

struct Example {
  Tensor input;       // f32, contiguous, of the dataset's input_shape()
  int64_t label = 0;  // in [0, num_classes())
};

class Dataset {
 public:
  virtual ~Dataset() = default;

  virtual int64_t size() const = 0;
  // The shape of one example's input, e.g. [1, 28, 28]; every example has it.
  virtual Shape input_shape() const = 0;
  virtual int64_t num_classes() const = 0;
  // Names the dataset in error messages, e.g. "MNIST-format train split in /path".
  virtual std::string name() const = 0;

  // Example `index`; throws Error naming the dataset when index is outside [0, size()) or when
  // the implementation returns an input or label that breaks the contract above.
  // `sample_seed` keys the random transforms of this example (crops, flips), so that an example
  // is a pure function of (index, sample_seed) whichever thread loads it; datasets without random
  // transforms ignore it. Thread-safe.
  Example get(int64_t index, uint64_t sample_seed = 0) const;

 protected:
  // Called with a valid index and a Generator seeded with sample_seed at offset 0.
  virtual Example load(int64_t index, Generator& rng) const = 0;
};

}  // namespace ompq::data
