// Module: the base of every layer and model. A module owns named parameters (tensors that require
// grad and that optimizers update), named buffers (state that is saved but not trained, such as
// BatchNorm's running statistics) and named child modules. Names compose with dots as in PyTorch
// ("features.1.running_mean"), so that a torchvision state_dict converted to safetensors loads
// unchanged.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/device.h"
#include "core/safetensors.h"
#include "core/tensor.h"

namespace ompq::nn {

class Module;
// The modules whose operator() is running on this thread, outermost first. Kept only while an op
// trace (core/trace.h) is on; empty otherwise.
const std::vector<const Module*>& calling_modules();

// True on a thread while a FloatLayers scope lives: a Conv2d or Linear that quantization replaced
// then runs its own float op instead of its replacement. graph::trace() records a model's structure
// this way, without the quantizers (which would observe the traced batch) in the graph.
bool float_layers();
class FloatLayers {
 public:
  FloatLayers();
  ~FloatLayers();
  FloatLayers(const FloatLayers&) = delete;
  FloatLayers& operator=(const FloatLayers&) = delete;

 private:
  bool previous_;
};

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
using NamedModules = std::vector<std::pair<std::string, std::shared_ptr<Module>>>;

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor forward(const Tensor& x) = 0;
  // forward(x), with this module on the thread's call stack while an op trace is on (see
  // calling_modules()): models call their children this way so that a traced graph knows which
  // module ran each op.
  Tensor operator()(const Tensor& x);

  // This module's and its descendants' entries, depth first, each module's own entries first in
  // registration order.
  NamedTensors named_parameters() const;
  std::vector<Tensor> parameters() const;
  NamedTensors named_buffers() const;
  const NamedModules& named_children() const { return children_; }
  // Every descendant (not this module) with its dotted path.
  NamedModules named_modules() const;

  // Training mode (the default) for this module and every descendant: BatchNorm normalizes with
  // batch statistics and updates its running ones, Dropout drops.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Drops every parameter's gradient.
  void zero_grad();
  // Moves every parameter and buffer to `device`, keeping the Tensor handles that layers and
  // optimizers hold (their data is replaced in place); gradients move along.
  void to(Device device);

  // Parameters and buffers by dotted name; the tensors share data with the module.
  TensorMap state_dict() const;
  // Copies `state` into the parameters and buffers. Shape and dtype must match exactly. With
  // `strict`, every name must be present and no extra name may be. On failure nothing is modified
  // and the message lists every missing, unexpected and mismatched name.
  absl::Status load_state_dict(const TensorMap& state, bool strict = true);
  // state_dict() as a safetensors file (written atomically), and back.
  absl::Status save(const std::string& path, const MetadataMap& metadata = {}) const;
  absl::Status load(const std::string& path, bool strict = true);

 protected:
  // Registration: `name` is non-empty, has no '.', and is unique within this module. Returns the
  // handle to keep in a member.
  Tensor register_parameter(const std::string& name, Tensor value, bool requires_grad = true);
  Tensor register_buffer(const std::string& name, Tensor value);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

 private:
  void check_new_name(const std::string& name, const char* what) const;
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void collect(const std::string& prefix, bool parameters, NamedTensors* out) const;

  NamedTensors parameters_;
  NamedTensors buffers_;
  NamedModules children_;
  bool training_ = true;
};

// Saves the training flags of a module and its descendants and the values of their buffers, and
// puts them back when destroyed (also when an exception unwinds), so that a pass can change modes
// and run forwards that update statistics (BatchNorm in training mode) without leaving a trace.
class ModuleStateGuard {
 public:
  explicit ModuleStateGuard(Module& module);
  ~ModuleStateGuard();
  ModuleStateGuard(const ModuleStateGuard&) = delete;
  ModuleStateGuard& operator=(const ModuleStateGuard&) = delete;

 private:
  std::vector<std::pair<Module*, bool>> flags_;     // parents before their children
  std::vector<std::pair<Tensor, Tensor>> buffers_;  // the buffer, its saved copy
};

}  // namespace ompq::nn
