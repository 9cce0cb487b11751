// Autograd-aware softmax, log-softmax and cross-entropy.
#pragma once

#include "core/tensor.h"

namespace ompq {

// Numerically stable (shifted by the maximum) along `dim`, which may be negative.
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

// logits [N, C], target [N] i64 class indices; the mean over the batch of the negative
// log-likelihood of log_softmax(logits), with PyTorch 1.13's label smoothing:
// loss = (1 - ls) * nll + ls * mean_c(-log_softmax). A target outside [0, C) throws an Error naming
// it and its batch index. The gradient flows to logits.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing = 0.0);

}  // namespace ompq
