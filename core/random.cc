#include "core/random.h"

namespace ompq {

DispatchStub<RandomKernel> random_stub("random_");

Generator& default_generator() {
  static Generator gen(0);
  return gen;
}

void manual_seed(uint64_t seed) { default_generator().set_state(seed, 0); }

namespace ops {

namespace {
void fill_random(const Tensor& t, Distribution dist, double a, double b, Generator& gen) {
  OMPQ_CHECK(is_floating(t.dtype()), "random fill: dtype ", dtype_name(t.dtype()),
             " is not floating");
  // Normal draws consume two uniforms per value, from an even position so that value j uses
  // positions start + 2j and start + 2j + 1 and never one that an earlier draw used.
  if (dist == Distribution::kNormal && gen.offset() % 2 == 1) gen.advance(1);
  uint64_t positions = static_cast<uint64_t>(t.numel()) * (dist == Distribution::kNormal ? 2 : 1);
  uint64_t start = gen.advance(positions);
  if (t.numel() == 0) return;
  random_stub(t.device(), t, dist, a, b, gen.seed(),
              dist == Distribution::kNormal ? start / 2 : start);
  t.bump_version();
}
}  // namespace

void uniform_(const Tensor& t, double low, double high, Generator& gen) {
  fill_random(t, Distribution::kUniform, high - low, low, gen);
}

void normal_(const Tensor& t, double mean, double std, Generator& gen) {
  fill_random(t, Distribution::kNormal, std, mean, gen);
}

}  // namespace ops

Tensor rand(const Shape& shape, Generator& gen, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  ops::uniform_(t, 0.0, 1.0, gen);
  return t;
}

Tensor randn(const Shape& shape, Generator& gen, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  ops::normal_(t, 0.0, 1.0, gen);
  return t;
}

}  // namespace ompq
