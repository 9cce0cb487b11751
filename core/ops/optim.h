// Fused optimizer steps: one kernel per parameter reads the parameter, its gradient and its state
// once and writes them back once. The per-element math is in core/ops/optim_math.h.
#pragma once

#include <cstdint>

#include "core/dispatch.h"
#include "core/ops/optim_math.h"
#include "core/tensor.h"

namespace ompq {

// param, grad and the state tensors have one shape, floating dtype and device, and are contiguous.
// momentum_buffer is undefined when options.momentum == 0.
using SgdStepKernel = void(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
                           const SgdOptions& options, bool first_step);
using AdamStepKernel = void(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                            const Tensor& exp_avg_sq, const AdamOptions& options, int64_t step);
extern DispatchStub<SgdStepKernel> sgd_step_stub;
extern DispatchStub<AdamStepKernel> adam_step_stub;

// Throw an Error naming `who` for a hyperparameter outside its valid range (torch's checks).
void check_sgd_options(const SgdOptions& options, const char* who);
void check_adam_options(const AdamOptions& options, const char* who);

namespace ops {

// p <- SGD step of p (torch.optim.SGD). On the first step the momentum buffer's old contents are
// ignored and it is set to the first direction.
void sgd_step_(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
               const SgdOptions& options, bool first_step);
// p <- Adam/AdamW step of p (torch.optim.Adam / AdamW); `step` counts from 1.
void adam_step_(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, const AdamOptions& options, int64_t step);

}  // namespace ops
}  // namespace ompq
