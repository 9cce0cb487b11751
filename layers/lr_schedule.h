// Learning-rate schedules as pure functions of the iteration (0-based): a resumed run gets the
// same lr from the iteration number alone, with no scheduler state to checkpoint. Each schedule
// maps a param group's initial lr ("base") to the lr at iteration t.
#pragma once

#include <cstdint>
#include <memory>

#include "layers/optim.h"

namespace ompq::nn {

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  virtual double lr(int64_t iteration, double base_lr) const = 0;
  // Sets every param group's lr to lr(iteration, group.initial_lr).
  void apply(Optimizer& optimizer, int64_t iteration) const;
};

// base.
class ConstantLr : public LrSchedule {
 public:
  double lr(int64_t iteration, double base_lr) const override;
};

// base * gamma^floor(t / step_size) (torch StepLR, with step_size in iterations).
class StepLr : public LrSchedule {
 public:
  StepLr(int64_t step_size, double gamma = 0.1);
  double lr(int64_t iteration, double base_lr) const override;

 private:
  int64_t step_size_;
  double gamma_;
};

// eta_min + (base - eta_min) * (1 + cos(pi * t / T)) / 2 for t in [0, T] (torch
// CosineAnnealingLR's closed form); stays at eta_min after T rather than rising again.
class CosineLr : public LrSchedule {
 public:
  explicit CosineLr(int64_t total_iterations, double eta_min = 0.0);
  double lr(int64_t iteration, double base_lr) const override;

 private:
  int64_t total_;
  double eta_min_;
};

// Linear warm-up followed by another schedule. For t < W the lr rises linearly from
// start_factor * after(0) to after(0): after(0) * (start_factor + (1 - start_factor) * t / W);
// from t = W on it is after(t - W), so `after` sees its own iterations from 0 (torch
// SequentialLR of LinearLR(start_factor, total_iters=W) and `after`, with milestone W).
class WarmupLr : public LrSchedule {
 public:
  WarmupLr(int64_t warmup_iterations, double start_factor, std::shared_ptr<const LrSchedule> after);
  double lr(int64_t iteration, double base_lr) const override;

 private:
  int64_t warmup_;
  double start_factor_;
  std::shared_ptr<const LrSchedule> after_;
};

}  // namespace ompq::nn
