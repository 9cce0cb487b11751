#include "core/functional/dropout.h"

#include "core/autograd.h"
#include "core/ops/dropout.h"
#include "core/trace.h"

namespace ompq {

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  return trace::traced(
      [&]() -> Tensor {
        OMPQ_CHECK(p >= 0.0 && p < 1.0, "dropout: probability p = ", p, " is outside [0, 1)");
        if (!training || p == 0.0) return x;
        const uint64_t seed = gen.seed();
        const uint64_t start = gen.advance(static_cast<uint64_t>(x.numel()));
        Tensor out = ops::dropout(x, p, seed, start);
        // The backward pass redraws the same mask from (seed, start) instead of keeping it in
        // memory.
        return record(out, {x}, "DropoutBackward", [p, seed, start](const Tensor& grad) {
          return std::vector<Tensor>{ops::dropout(grad, p, seed, start)};
        });
      },
      [&] {
        trace::OpCall c{trace::Op::kDropout, {x}};
        c.attributes.dropout_p = p;
        c.attributes.training = training;
        return c;
      });
}

}  // namespace ompq
