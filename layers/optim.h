// Optimizers with torch.optim's semantics: SGD (momentum, dampening, nesterov, weight decay), Adam
// and AdamW (bias-corrected moments; L2 vs decoupled weight decay). Parameters are split into
// groups with their own lr and weight_decay. Each step updates each parameter that has a gradient
// with one fused kernel (core/ops/optim.h); parameters without a gradient are skipped and keep
// their state. The state (per-parameter buffers and step counts) round-trips through a tensor map
// for checkpoints.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/ops/optim_math.h"
#include "core/safetensors.h"
#include "core/tensor.h"

namespace ompq::nn {

struct ParamGroup {
  std::vector<Tensor> params;
  double lr = 0.0;  // current lr; LR schedules rewrite it every iteration
  double weight_decay = 0.0;
  double initial_lr = 0.0;  // the lr at construction, which schedules scale (set by the optimizer)
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  void step();
  // Drops every parameter's gradient.
  void zero_grad();

  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  // Sets the lr of every group.
  void set_lr(double lr);

  // Per-parameter state named "state.<i>.<slot>" and "state.<i>.step" (an i64 scalar), where i
  // numbers the parameters across groups in order. Parameters never stepped have no entries.
  TensorMap state_dict() const;
  // Replaces the state. Every name must be one that state_dict() could produce for these
  // parameters, with matching shape and dtype, and a parameter's entries must be complete; on
  // failure nothing changes and the message lists every bad name.
  absl::Status load_state_dict(const TensorMap& state);
  // load_state_dict's checks alone, changing nothing: OK exactly when load_state_dict(state)
  // would succeed. For callers that must check several states before loading any.
  absl::Status check_state_dict(const TensorMap& state) const;

 protected:
  struct ParamState {
    std::vector<Tensor> slots;  // one per slot name; undefined until the first step
    int64_t step = 0;           // steps taken for this parameter
  };

  // `slot_names`: the per-parameter state tensors, each of the parameter's shape and dtype.
  Optimizer(const char* name, std::vector<ParamGroup> groups, std::vector<std::string> slot_names);

  // Throws (naming the optimizer) when a group's hyperparameters are invalid.
  virtual void check_group(const ParamGroup& group) const = 0;
  // Updates `param` from `grad` (defined, contiguous) and increments state.step.
  virtual void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                      ParamState& state) = 0;

  const char* name_;

 private:
  std::vector<ParamGroup> groups_;
  std::vector<std::string> slot_names_;
  std::vector<ParamState> state_;  // indexed like state_dict()'s <i>

  // `state` as per-parameter states (handles to its tensors), or the error listing its problems.
  absl::StatusOr<std::vector<ParamState>> parse_state_dict(const TensorMap& state) const;
};

class SGD : public Optimizer {
 public:
  // One group with options.lr and options.weight_decay.
  SGD(std::vector<Tensor> params, const SgdOptions& options);
  // The groups' lr and weight_decay replace the options'.
  SGD(std::vector<ParamGroup> groups, const SgdOptions& options);

 private:
  void check_group(const ParamGroup& group) const override;
  void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
              ParamState& state) override;
  SgdOptions group_options(const ParamGroup& group) const;
  SgdOptions options_;
};

// Adam when options.decoupled_weight_decay is false, AdamW when true.
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, const AdamOptions& options);
  Adam(std::vector<ParamGroup> groups, const AdamOptions& options);

 private:
  void check_group(const ParamGroup& group) const override;
  void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
              ParamState& state) override;
  AdamOptions group_options(const ParamGroup& group) const;
  AdamOptions options_;
};

// Adam with decoupled weight decay; torch.optim.AdamW's defaults (weight_decay 0.01).
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, AdamOptions options = adamw_defaults());
  AdamW(std::vector<ParamGroup> groups, AdamOptions options = adamw_defaults());
  static AdamOptions adamw_defaults();
};

}  // namespace ompq::nn
