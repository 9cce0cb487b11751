#include "layers/module.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/autograd.h"
#include "core/trace.h"

namespace ompq::nn {
namespace {

std::string join_name(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : absl::StrCat(prefix, ".", name);
}

std::string describe(const Tensor& t) {
  return absl::StrCat(shape_str(t.shape()), " ", dtype_name(t.dtype()));
}

// Points `t`'s handle at a copy of its data on `device`. Layers and optimizers keep Tensor handles
// to parameters, so the data moves under the handle (PyTorch's set_data) rather than the handle
// being replaced.
void move_data(const Tensor& t, Device device) {
  if (t.device() == device) return;
  Tensor moved = t.detach().to(device);
  TensorImpl* impl = t.unsafe_impl();
  impl->storage = moved.storage();
  impl->offset = moved.offset();
  impl->strides = moved.strides();
  if (impl->grad) impl->grad = Tensor(impl->grad).detach().to(device).impl_ptr();
  t.bump_version();
}

thread_local std::vector<const Module*> calling_stack;
thread_local bool float_layers_on = false;

// Keeps `module` on calling_stack for the scope's lifetime.
class CallingModule {
 public:
  explicit CallingModule(const Module* module) { calling_stack.push_back(module); }
  ~CallingModule() { calling_stack.pop_back(); }
  CallingModule(const CallingModule&) = delete;
  CallingModule& operator=(const CallingModule&) = delete;
};

}  // namespace

const std::vector<const Module*>& calling_modules() { return calling_stack; }

bool float_layers() { return float_layers_on; }
FloatLayers::FloatLayers() : previous_(float_layers_on) { float_layers_on = true; }
FloatLayers::~FloatLayers() { float_layers_on = previous_; }

Tensor Module::operator()(const Tensor& x) {
  if (!trace::active()) return forward(x);
  CallingModule calling(this);
  return forward(x);
}

void Module::check_new_name(const std::string& name, const char* what) const {
  OMPQ_CHECK(!name.empty() && name.find('.') == std::string::npos, "register_", what,
             ": invalid name \"", name, "\" (must be non-empty and contain no '.')");
  auto taken = [&](const auto& entries) {
    for (const auto& entry : entries) {
      if (entry.first == name) return true;
    }
    return false;
  };
  OMPQ_CHECK(!taken(parameters_) && !taken(buffers_) && !taken(children_), "register_", what,
             ": name \"", name, "\" is already registered in this module");
}

Tensor Module::register_parameter(const std::string& name, Tensor value, bool requires_grad) {
  check_new_name(name, "parameter");
  OMPQ_CHECK(value.defined(), "register_parameter: \"", name, "\" is undefined");
  OMPQ_CHECK(value.is_leaf(), "register_parameter: \"", name,
             "\" is the result of an op; detach() it first");
  value.set_requires_grad(requires_grad);
  parameters_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  check_new_name(name, "buffer");
  OMPQ_CHECK(value.defined(), "register_buffer: \"", name, "\" is undefined");
  buffers_.emplace_back(name, value);
  return value;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name, "module");
  OMPQ_CHECK(module != nullptr, "register_module: \"", name, "\" is null");
  OMPQ_CHECK(module.get() != this, "register_module: a module cannot be its own child");
  children_.emplace_back(name, std::move(module));
}

void Module::collect(const std::string& prefix, bool parameters, NamedTensors* out) const {
  for (const auto& [name, t] : parameters ? parameters_ : buffers_) {
    out->emplace_back(join_name(prefix, name), t);
  }
  for (const auto& [name, child] : children_) {
    child->collect(join_name(prefix, name), parameters, out);
  }
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", /*parameters=*/true, &out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", /*parameters=*/false, &out);
  return out;
}

NamedModules Module::named_modules() const {
  NamedModules out;
  for (const auto& [name, child] : children_) {
    out.emplace_back(name, child);
    for (auto& [sub_name, sub] : child->named_modules()) {
      out.emplace_back(join_name(name, sub_name), sub);
    }
  }
  return out;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (auto& [name, p] : named_parameters()) p.zero_grad();
}

void Module::to(Device device) {
  for (auto& [name, p] : named_parameters()) move_data(p, device);
  for (auto& [name, b] : named_buffers()) move_data(b, device);
}

TensorMap Module::state_dict() const {
  TensorMap state;
  for (auto& [name, p] : named_parameters()) state.emplace(name, p.detach());
  for (auto& [name, b] : named_buffers()) state.emplace(name, b.detach());
  return state;
}

absl::Status Module::load_state_dict(const TensorMap& state, bool strict) {
  TensorMap own;  // the module's own handles, so that the copies bump their versions
  for (auto& [name, p] : named_parameters()) own.emplace(name, p);
  for (auto& [name, b] : named_buffers()) own.emplace(name, b);
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [name, dst] : own) {
    auto it = state.find(name);
    if (it == state.end()) {
      missing.push_back(name);
    } else if (!it->second.defined()) {
      mismatched.push_back(
          absl::StrCat(name, " (checkpoint: undefined, model: ", describe(dst), ")"));
    } else if (it->second.shape() != dst.shape() || it->second.dtype() != dst.dtype()) {
      mismatched.push_back(absl::StrCat(name, " (checkpoint: ", describe(it->second),
                                        ", model: ", describe(dst), ")"));
    }
  }
  for (const auto& [name, src] : state) {
    if (own.count(name) == 0) unexpected.push_back(name);
  }
  if (!strict) {
    missing.clear();
    unexpected.clear();
  }
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::vector<std::string> parts;
    if (!missing.empty()) {
      parts.push_back(absl::StrCat(missing.size(), " missing: ", absl::StrJoin(missing, ", ")));
    }
    if (!unexpected.empty()) {
      parts.push_back(
          absl::StrCat(unexpected.size(), " unexpected: ", absl::StrJoin(unexpected, ", ")));
    }
    if (!mismatched.empty()) {
      parts.push_back(
          absl::StrCat(mismatched.size(), " mismatched: ", absl::StrJoin(mismatched, ", ")));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("load_state_dict: nothing was loaded; ", absl::StrJoin(parts, "; ")));
  }
  NoGradGuard no_grad;
  for (auto& [name, dst] : own) {
    auto it = state.find(name);
    if (it != state.end()) dst.copy_(it->second);
  }
  return absl::OkStatus();
}

absl::Status Module::save(const std::string& path, const MetadataMap& metadata) const {
  return save_safetensors(path, state_dict(), metadata);
}

absl::Status Module::load(const std::string& path, bool strict) {
  OMPQ_ASSIGN_OR_RETURN(SafetensorsContents contents, load_safetensors(path));
  absl::Status status = load_state_dict(contents.tensors, strict);
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("'", path, "': ", status.message()));
  }
  return status;
}

ModuleStateGuard::ModuleStateGuard(Module& module) {
  flags_.emplace_back(&module, module.is_training());
  for (const auto& [name, child] : module.named_modules()) {
    flags_.emplace_back(child.get(), child->is_training());
  }
  NoGradGuard no_grad;
  for (const auto& [name, buffer] : module.named_buffers()) {
    buffers_.emplace_back(buffer, buffer.clone());
  }
}

ModuleStateGuard::~ModuleStateGuard() {
  // Each train() call is overridden by the descendants' own flags that follow it.
  for (const auto& [module, training] : flags_) module->train(training);
  NoGradGuard no_grad;
  for (auto& [buffer, saved] : buffers_) buffer.copy_(saved);
}

}  // namespace ompq::nn
