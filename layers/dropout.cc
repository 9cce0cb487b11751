#include "layers/dropout.h"

#include "core/functional/dropout.h"

namespace ompq::nn {

Dropout::Dropout(double p, Generator& gen) : p_(p), gen_(&gen) {
  OMPQ_CHECK(p >= 0 && p < 1, "Dropout: p ", p, " (expected in [0, 1))");
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p_, is_training(), *gen_); }

}  // namespace ompq::nn
