#include "layers/optim.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/autograd.h"
#include "core/error.h"
#include "core/ops/optim.h"

namespace ompq::nn {
namespace {

std::vector<ParamGroup> one_group(std::vector<Tensor> params, double lr, double weight_decay) {
  ParamGroup group;
  group.params = std::move(params);
  group.lr = lr;
  group.weight_decay = weight_decay;
  return {std::move(group)};
}

std::string state_key(size_t index, const std::string& slot) {
  return absl::StrCat("state.", index, ".", slot);
}

}  // namespace

Optimizer::Optimizer(const char* name, std::vector<ParamGroup> groups,
                     std::vector<std::string> slot_names)
    : name_(name), groups_(std::move(groups)), slot_names_(std::move(slot_names)) {
  std::set<const TensorImpl*> seen;
  size_t count = 0;
  for (size_t g = 0; g < groups_.size(); ++g) {
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      const Tensor& p = groups_[g].params[i];
      std::string where = absl::StrCat("parameter ", i, " of group ", g);
      OMPQ_CHECK(p.defined(), name_, ": ", where, " is undefined");
      OMPQ_CHECK(is_floating(p.dtype()), name_, ": ", where, " has dtype ", dtype_name(p.dtype()),
                 " (expected a floating dtype)");
      OMPQ_CHECK(p.is_leaf() && p.requires_grad(), name_, ": ", where,
                 " is not a leaf tensor that requires grad");
      OMPQ_CHECK(p.is_contiguous(), name_, ": ", where, " of shape ", shape_str(p.shape()),
                 " is not contiguous");
      OMPQ_CHECK(seen.insert(p.unsafe_impl()).second, name_, ": ", where,
                 " appears more than once");
      ++count;
    }
    groups_[g].initial_lr = groups_[g].lr;
  }
  OMPQ_CHECK(count > 0, name_, ": got an empty parameter list");
  state_.resize(count);
}

void Optimizer::step() {
  for (const ParamGroup& group : groups_) check_group(group);
  NoGradGuard no_grad;
  size_t index = 0;
  for (const ParamGroup& group : groups_) {
    for (const Tensor& param : group.params) {
      ParamState& state = state_[index++];
      Tensor grad = param.grad();
      if (!grad.defined()) continue;
      if (state.slots.empty()) state.slots.resize(slot_names_.size());
      update(group, param, grad, state);
    }
  }
}

void Optimizer::zero_grad() {
  for (const ParamGroup& group : groups_) {
    for (const Tensor& p : group.params) p.zero_grad();
  }
}

void Optimizer::set_lr(double lr) {
  for (ParamGroup& group : groups_) group.lr = lr;
}

TensorMap Optimizer::state_dict() const {
  TensorMap out;
  for (size_t i = 0; i < state_.size(); ++i) {
    const ParamState& s = state_[i];
    if (s.step == 0) continue;
    out.emplace(state_key(i, "step"), Tensor::scalar(static_cast<double>(s.step), DType::kI64));
    for (size_t k = 0; k < slot_names_.size(); ++k) {
      out.emplace(state_key(i, slot_names_[k]), s.slots[k].detach());
    }
  }
  return out;
}

absl::StatusOr<std::vector<Optimizer::ParamState>> Optimizer::parse_state_dict(
    const TensorMap& state) const {
  std::vector<const Tensor*> params;
  for (const ParamGroup& group : groups_) {
    for (const Tensor& p : group.params) params.push_back(&p);
  }
  std::vector<ParamState> loaded(params.size());
  std::vector<std::set<std::string>> present(params.size());
  std::vector<std::string> problems;
  for (const auto& [key, value] : state) {
    std::vector<std::string> parts = absl::StrSplit(key, absl::MaxSplits('.', 2));
    size_t index = 0;
    if (parts.size() != 3 || parts[0] != "state" || !absl::SimpleAtoi(parts[1], &index) ||
        index >= params.size()) {
      problems.push_back(absl::StrCat(key, " (unexpected name)"));
      continue;
    }
    const std::string& slot = parts[2];
    const Tensor& param = *params[index];
    if (!value.defined()) {
      problems.push_back(absl::StrCat(key, " (undefined)"));
    } else if (slot == "step") {
      if (value.dtype() != DType::kI64 || value.numel() != 1 || value.item<int64_t>() < 1) {
        problems.push_back(absl::StrCat(key, " (expected an i64 scalar >= 1, got ",
                                        shape_str(value.shape()), " ", dtype_name(value.dtype()),
                                        ")"));
      } else {
        loaded[index].step = value.item<int64_t>();
        present[index].insert(slot);
      }
    } else {
      auto it = std::find(slot_names_.begin(), slot_names_.end(), slot);
      if (it == slot_names_.end()) {
        problems.push_back(absl::StrCat(key, " (unexpected name)"));
      } else if (value.shape() != param.shape() || value.dtype() != param.dtype()) {
        problems.push_back(absl::StrCat(
            key, " (got ", shape_str(value.shape()), " ", dtype_name(value.dtype()),
            ", parameter is ", shape_str(param.shape()), " ", dtype_name(param.dtype()), ")"));
      } else {
        loaded[index].slots.resize(slot_names_.size());
        loaded[index].slots[it - slot_names_.begin()] = value;
        present[index].insert(slot);
      }
    }
  }
  for (size_t i = 0; i < params.size(); ++i) {
    if (present[i].empty()) continue;
    std::vector<std::string> missing;
    if (present[i].count("step") == 0) missing.push_back(state_key(i, "step"));
    for (const std::string& slot : slot_names_) {
      if (present[i].count(slot) == 0) missing.push_back(state_key(i, slot));
    }
    if (!missing.empty()) {
      problems.push_back(absl::StrCat(absl::StrJoin(missing, ", "), " (missing)"));
    }
  }
  if (!problems.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name_, " load_state_dict: nothing was loaded; ",
                                                   problems.size(),
                                                   " problems: ", absl::StrJoin(problems, "; ")));
  }
  return loaded;
}

absl::Status Optimizer::check_state_dict(const TensorMap& state) const {
  return parse_state_dict(state).status();
}

absl::Status Optimizer::load_state_dict(const TensorMap& state) {
  OMPQ_ASSIGN_OR_RETURN(std::vector<ParamState> loaded, parse_state_dict(state));
  NoGradGuard no_grad;
  size_t i = 0;
  for (const ParamGroup& group : groups_) {
    for (const Tensor& param : group.params) {
      for (Tensor& slot : loaded[i].slots) {
        // A private copy on the parameter's device: the optimizer updates it in place.
        Tensor copy = Tensor::empty(slot.shape(), slot.dtype(), param.device());
        copy.copy_(slot);
        slot = copy;
      }
      ++i;
    }
  }
  state_ = std::move(loaded);
  return absl::OkStatus();
}

// ---- SGD
// -----------------------------------------------------------------------------------------

SGD::SGD(std::vector<Tensor> params, const SgdOptions& options)
    : SGD(one_group(std::move(params), options.lr, options.weight_decay), options) {}

SGD::SGD(std::vector<ParamGroup> groups, const SgdOptions& options)
    : Optimizer("SGD", std::move(groups),
                options.momentum != 0 ? std::vector<std::string>{"momentum_buffer"}
                                      : std::vector<std::string>{}),
      options_(options) {
  for (const ParamGroup& group : param_groups()) check_group(group);
}

SgdOptions SGD::group_options(const ParamGroup& group) const {
  SgdOptions o = options_;
  o.lr = group.lr;
  o.weight_decay = group.weight_decay;
  return o;
}

void SGD::check_group(const ParamGroup& group) const {
  check_sgd_options(group_options(group), name_);
}

void SGD::update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                 ParamState& state) {
  Tensor momentum_buffer;
  const bool first_step = options_.momentum != 0 && !state.slots[0].defined();
  if (first_step) {
    momentum_buffer = Tensor::empty(param.shape(), param.dtype(), param.device());
  } else if (options_.momentum != 0) {
    momentum_buffer = state.slots[0];
  }
  ops::sgd_step_(param, grad, momentum_buffer, group_options(group), first_step);
  // Only a completed step keeps the new buffer: a failed one must not leave it uninitialized.
  if (first_step) state.slots[0] = momentum_buffer;
  ++state.step;
}

// ---- Adam / AdamW
// --------------------------------------------------------------------------------

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options)
    : Adam(one_group(std::move(params), options.lr, options.weight_decay), options) {}

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& options)
    : Optimizer(options.decoupled_weight_decay ? "AdamW" : "Adam", std::move(groups),
                {"exp_avg", "exp_avg_sq"}),
      options_(options) {
  for (const ParamGroup& group : param_groups()) check_group(group);
}

AdamOptions Adam::group_options(const ParamGroup& group) const {
  AdamOptions o = options_;
  o.lr = group.lr;
  o.weight_decay = group.weight_decay;
  return o;
}

void Adam::check_group(const ParamGroup& group) const {
  check_adam_options(group_options(group), name_);
}

void Adam::update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                  ParamState& state) {
  for (Tensor& slot : state.slots) {
    if (!slot.defined()) slot = Tensor::zeros(param.shape(), param.dtype(), param.device());
  }
  ops::adam_step_(param, grad, state.slots[0], state.slots[1], group_options(group),
                  state.step + 1);
  ++state.step;
}

namespace {
AdamOptions decoupled(AdamOptions options) {
  options.decoupled_weight_decay = true;
  return options;
}
}  // namespace

AdamOptions AdamW::adamw_defaults() {
  AdamOptions o;
  o.weight_decay = 0.01;
  o.decoupled_weight_decay = true;
  return o;
}

AdamW::AdamW(std::vector<Tensor> params, AdamOptions options)
    : Adam(std::move(params), decoupled(options)) {}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamOptions options)
    : Adam(std::move(groups), decoupled(options)) {}

}  // namespace ompq::nn
