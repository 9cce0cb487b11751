// Random tensors. A Generator is (seed, offset): each draw of n values uses stream positions
// [offset, offset + n) and advances the offset, so a run is reproducible from its seed, and the
// generator's state can be saved in a checkpoint as two integers.
#pragma once

#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace ompq {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }
  // Reserves `n` stream positions and returns the first.
  uint64_t advance(uint64_t n) {
    uint64_t start = offset_;
    offset_ += n;
    return start;
  }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// The process-wide default generator (seeded with 0 until manual_seed()).
Generator& default_generator();
void manual_seed(uint64_t seed);

enum class Distribution : uint8_t { kUniform, kNormal };
// Fills `dst` (any layout, floating dtype) in logical element order: element i takes stream
// position `stream_start + i`, mapped to a*u+b for uniform u in [0,1) or a*z+b for standard normal
// z.
using RandomKernel = void(const Tensor& dst, Distribution dist, double a, double b, uint64_t seed,
                          uint64_t stream_start);
extern DispatchStub<RandomKernel> random_stub;

namespace ops {
void uniform_(const Tensor& t, double low, double high, Generator& gen = default_generator());
void normal_(const Tensor& t, double mean, double std, Generator& gen = default_generator());
}  // namespace ops

Tensor rand(const Shape& shape, Generator& gen = default_generator(), DType dtype = DType::kF32,
            Device device = Device::cpu());
Tensor randn(const Shape& shape, Generator& gen = default_generator(), DType dtype = DType::kF32,
             Device device = Device::cpu());

}  // namespace ompq
