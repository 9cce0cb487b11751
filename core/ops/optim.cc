#include "core/ops/optim.h"

#include <cmath>

namespace ompq {

DispatchStub<SgdStepKernel> sgd_step_stub("sgd_step_");
DispatchStub<AdamStepKernel> adam_step_stub("adam_step_");

void check_sgd_options(const SgdOptions& o, const char* who) {
  OMPQ_CHECK(std::isfinite(o.lr) && o.lr >= 0, who, ": invalid learning rate ", o.lr,
             " (expected >= 0)");
  OMPQ_CHECK(std::isfinite(o.momentum) && o.momentum >= 0, who, ": invalid momentum ", o.momentum,
             " (expected >= 0)");
  OMPQ_CHECK(std::isfinite(o.dampening) && o.dampening >= 0 && o.dampening <= 1, who,
             ": invalid dampening ", o.dampening, " (expected in [0, 1])");
  OMPQ_CHECK(std::isfinite(o.weight_decay) && o.weight_decay >= 0, who, ": invalid weight_decay ",
             o.weight_decay, " (expected >= 0)");
  OMPQ_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0), who,
             ": nesterov momentum requires momentum > 0 and dampening == 0 (got momentum ",
             o.momentum, ", dampening ", o.dampening, ")");
}

void check_adam_options(const AdamOptions& o, const char* who) {
  OMPQ_CHECK(std::isfinite(o.lr) && o.lr >= 0, who, ": invalid learning rate ", o.lr,
             " (expected >= 0)");
  OMPQ_CHECK(o.beta1 >= 0 && o.beta1 < 1, who, ": invalid beta1 ", o.beta1,
             " (expected in [0, 1))");
  OMPQ_CHECK(o.beta2 >= 0 && o.beta2 < 1, who, ": invalid beta2 ", o.beta2,
             " (expected in [0, 1))");
  OMPQ_CHECK(std::isfinite(o.eps) && o.eps >= 0, who, ": invalid eps ", o.eps, " (expected >= 0)");
  OMPQ_CHECK(std::isfinite(o.weight_decay) && o.weight_decay >= 0, who, ": invalid weight_decay ",
             o.weight_decay, " (expected >= 0)");
}

namespace ops {
namespace {

// Throws unless `t` can be updated in place alongside `param` by a fused kernel.
void check_operand(const Tensor& param, const Tensor& t, const char* op, const char* what) {
  OMPQ_CHECK(t.defined(), op, ": ", what, " is undefined");
  OMPQ_CHECK(t.shape() == param.shape(), op, ": ", what, " of shape ", shape_str(t.shape()),
             " does not match the parameter's shape ", shape_str(param.shape()));
  OMPQ_CHECK(t.dtype() == param.dtype(), op, ": ", what, " has dtype ", dtype_name(t.dtype()),
             ", the parameter ", dtype_name(param.dtype()));
  OMPQ_CHECK(t.device() == param.device(), op, ": ", what, " is on ", t.device().str(),
             ", the parameter on ", param.device().str());
  OMPQ_CHECK(t.is_contiguous(), op, ": ", what, " of shape ", shape_str(t.shape()),
             " is not contiguous");
}

}  // namespace

void sgd_step_(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
               const SgdOptions& options, bool first_step) {
  check_sgd_options(options, "sgd_step_");
  check_operand(param, param, "sgd_step_", "parameter");
  Tensor g = grad.defined() ? grad.contiguous() : grad;
  check_operand(param, g, "sgd_step_", "gradient");
  if (options.momentum != 0) {
    check_operand(param, momentum_buffer, "sgd_step_", "momentum buffer");
  } else {
    OMPQ_CHECK(!momentum_buffer.defined(),
               "sgd_step_: a momentum buffer was given with momentum 0");
  }
  if (param.numel() == 0) return;
  sgd_step_stub(param.device(), param, g, momentum_buffer, options, first_step);
  param.bump_version();
  if (momentum_buffer.defined()) momentum_buffer.bump_version();
}

void adam_step_(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, const AdamOptions& options, int64_t step) {
  check_adam_options(options, "adam_step_");
  OMPQ_CHECK(step >= 1, "adam_step_: step ", step, " (expected >= 1)");
  check_operand(param, param, "adam_step_", "parameter");
  Tensor g = grad.defined() ? grad.contiguous() : grad;
  check_operand(param, g, "adam_step_", "gradient");
  check_operand(param, exp_avg, "adam_step_", "exp_avg");
  check_operand(param, exp_avg_sq, "adam_step_", "exp_avg_sq");
  if (param.numel() == 0) return;
  adam_step_stub(param.device(), param, g, exp_avg, exp_avg_sq, options, step);
  param.bump_version();
  exp_avg.bump_version();
  exp_avg_sq.bump_version();
}

}  // namespace ops
}  // namespace ompq
