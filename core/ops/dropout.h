// Inverted dropout (raw: no autograd). The mask is a pure function of (seed, stream start, p), so
// the backward pass regenerates it instead of storing it, and every device draws the same mask.
#pragma once

#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace ompq {

// out[i] = in[i] * dropout_factor_at(seed, stream_start + i, p, 1 / (1 - p)) for the logical
// (row-major) index i; in and out contiguous, same shape.
using DropoutKernel = void(const Tensor& out, const Tensor& in, double p, uint64_t seed,
                           uint64_t stream_start);
extern DispatchStub<DropoutKernel> dropout_stub;

namespace ops {

// Applies the mask of stream positions [stream_start, stream_start + numel) to x: the forward pass
// on the input and, with the same arguments, the backward pass on the output gradient.
// p must be in [0, 1).
Tensor dropout(const Tensor& x, double p, uint64_t seed, uint64_t stream_start);

}  // namespace ops
}  // namespace ompq
