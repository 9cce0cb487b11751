#include "layers/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace ompq::nn {
namespace {

void check_iteration(int64_t iteration, const char* who) {
  OMPQ_CHECK(iteration >= 0, who, ": negative iteration ", iteration);
}

}  // namespace

void LrSchedule::apply(Optimizer& optimizer, int64_t iteration) const {
  for (ParamGroup& group : optimizer.param_groups()) group.lr = lr(iteration, group.initial_lr);
}

double ConstantLr::lr(int64_t iteration, double base_lr) const {
  check_iteration(iteration, "ConstantLr");
  return base_lr;
}

StepLr::StepLr(int64_t step_size, double gamma) : step_size_(step_size), gamma_(gamma) {
  OMPQ_CHECK(step_size > 0, "StepLr: step_size ", step_size, " (expected > 0)");
  OMPQ_CHECK(std::isfinite(gamma) && gamma > 0, "StepLr: gamma ", gamma, " (expected > 0)");
}

double StepLr::lr(int64_t iteration, double base_lr) const {
  check_iteration(iteration, "StepLr");
  return base_lr * std::pow(gamma_, static_cast<double>(iteration / step_size_));
}

CosineLr::CosineLr(int64_t total_iterations, double eta_min)
    : total_(total_iterations), eta_min_(eta_min) {
  OMPQ_CHECK(total_iterations > 0, "CosineLr: total_iterations ", total_iterations,
             " (expected > 0)");
  OMPQ_CHECK(std::isfinite(eta_min) && eta_min >= 0, "CosineLr: eta_min ", eta_min,
             " (expected >= 0)");
}

double CosineLr::lr(int64_t iteration, double base_lr) const {
  check_iteration(iteration, "CosineLr");
  double t = static_cast<double>(std::min(iteration, total_));
  return eta_min_ + (base_lr - eta_min_) * (1.0 + std::cos(M_PI * t / total_)) / 2.0;
}

WarmupLr::WarmupLr(int64_t warmup_iterations, double start_factor,
                   std::shared_ptr<const LrSchedule> after)
    : warmup_(warmup_iterations), start_factor_(start_factor), after_(std::move(after)) {
  OMPQ_CHECK(warmup_iterations >= 0, "WarmupLr: warmup_iterations ", warmup_iterations,
             " (expected >= 0)");
  OMPQ_CHECK(start_factor >= 0 && start_factor <= 1, "WarmupLr: start_factor ", start_factor,
             " (expected in [0, 1])");
  OMPQ_CHECK(after_ != nullptr, "WarmupLr: the schedule after warm-up is null");
}

double WarmupLr::lr(int64_t iteration, double base_lr) const {
  check_iteration(iteration, "WarmupLr");
  if (iteration >= warmup_) return after_->lr(iteration - warmup_, base_lr);
  double progress = static_cast<double>(iteration) / static_cast<double>(warmup_);
  return after_->lr(0, base_lr) * (start_factor_ + (1.0 - start_factor_) * progress);
}

}  // namespace ompq::nn
