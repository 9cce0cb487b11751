#include "core/autograd.h"

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"

namespace ompq {
namespace {

thread_local bool g_grad_enabled = true;

struct LeafGradHooks {
  std::mutex mutex;
  int64_t next_id = 0;
  std::vector<std::pair<int64_t, LeafGradHook>> hooks;
};
LeafGradHooks& leaf_grad_hooks() {
  static LeafGradHooks* hooks = new LeafGradHooks();
  return *hooks;
}

void run_leaf_grad_hooks(const Tensor& leaf) {
  LeafGradHooks& registry = leaf_grad_hooks();
  std::vector<std::pair<int64_t, LeafGradHook>> hooks;
  {
    std::lock_guard<std::mutex> lock(registry.mutex);
    if (registry.hooks.empty()) return;
    hooks = registry.hooks;  // a hook may add or remove hooks
  }
  for (const auto& [id, hook] : hooks) hook(leaf);
}

// The gradient sink of a leaf that requires grad: adds what arrives into the leaf's .grad.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf) : leaf_(leaf) {}

  std::vector<Tensor> apply(const Tensor& grad) override {
    std::shared_ptr<TensorImpl> leaf = leaf_.lock();
    if (!leaf || !grad.defined()) return {};
    Tensor param(leaf);
    OMPQ_CHECK(grad.shape() == param.shape(), "backward: gradient of shape ",
               shape_str(grad.shape()), " for a leaf of shape ", shape_str(param.shape()));
    Tensor g = grad.dtype() == param.dtype() ? grad : grad.to(param.dtype());
    Tensor existing = param.grad();
    if (existing.defined()) {
      param.set_grad(ops::add(existing, g));
    } else if (g.is_contiguous() && g.impl_ptr().use_count() <= 2 && g.storage().use_count() == 1) {
      param.set_grad(g);  // nothing else sees this buffer: keep it
    } else {
      param.set_grad(g.clone());
    }
    run_leaf_grad_hooks(param);
    return {};
  }
  std::string name() const override { return "AccumulateGrad"; }

 private:
  std::weak_ptr<TensorImpl> leaf_;
};

class FunctionNode final : public Node {
 public:
  FunctionNode(const char* name, BackwardFn backward, std::vector<Shape> input_shapes)
      : name_(name), backward_(std::move(backward)), input_shapes_(std::move(input_shapes)) {}

  std::vector<Tensor> apply(const Tensor& grad) override {
    std::vector<Tensor> grads = backward_(grad);
    OMPQ_CHECK(grads.size() == input_shapes_.size(), name_, ": backward returned ", grads.size(),
               " gradients for ", input_shapes_.size(), " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      OMPQ_CHECK(!grads[i].defined() || grads[i].shape() == input_shapes_[i], name_,
                 ": gradient of input ", i, " has shape ", shape_str(grads[i].shape()),
                 ", expected ", shape_str(input_shapes_[i]));
    }
    return grads;
  }
  std::string name() const override { return name_; }

 private:
  const char* name_;
  BackwardFn backward_;
  std::vector<Shape> input_shapes_;
};

// The node that receives the gradient of `t`: its grad_fn, the accumulator of a leaf that requires
// grad, or null.
std::shared_ptr<Node> gradient_edge(const Tensor& t) {
  if (!t.defined()) return nullptr;
  if (t.grad_fn()) return t.grad_fn();
  if (!t.requires_grad()) return nullptr;
  TensorImpl* impl = t.unsafe_impl();
  std::shared_ptr<Node> acc = impl->grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
    impl->grad_accumulator = acc;
  }
  return acc;
}

}  // namespace

int64_t add_leaf_grad_hook(LeafGradHook hook) {
  LeafGradHooks& registry = leaf_grad_hooks();
  std::lock_guard<std::mutex> lock(registry.mutex);
  registry.hooks.emplace_back(registry.next_id, std::move(hook));
  return registry.next_id++;
}

void remove_leaf_grad_hook(int64_t id) {
  LeafGradHooks& registry = leaf_grad_hooks();
  std::lock_guard<std::mutex> lock(registry.mutex);
  auto& hooks = registry.hooks;
  hooks.erase(std::remove_if(hooks.begin(), hooks.end(),
                             [id](const auto& entry) { return entry.first == id; }),
              hooks.end());
}

bool GradMode::enabled() { return g_grad_enabled; }
void GradMode::set_enabled(bool enabled) { g_grad_enabled = enabled; }

bool any_requires_grad(std::initializer_list<Tensor> inputs) {
  if (!GradMode::enabled()) return false;
  for (const Tensor& t : inputs) {
    if (t.defined() && t.requires_grad()) return true;
  }
  return false;
}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!GradMode::enabled()) return false;
  for (const Tensor& t : inputs) {
    if (t.defined() && t.requires_grad()) return true;
  }
  return false;
}

Tensor record(Tensor output, const std::vector<Tensor>& inputs, const char* name,
              BackwardFn backward) {
  if (!any_requires_grad(inputs)) return output;
  std::vector<Shape> shapes;
  shapes.reserve(inputs.size());
  for (const Tensor& t : inputs) shapes.push_back(t.defined() ? t.shape() : Shape{});
  auto node = std::make_shared<FunctionNode>(name, std::move(backward), std::move(shapes));
  for (const Tensor& t : inputs) node->inputs.push_back(gradient_edge(t));
  TensorImpl* impl = output.unsafe_impl();
  impl->grad_fn = std::move(node);
  impl->requires_grad = true;
  return output;
}

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  int64_t lead = grad.dim() - static_cast<int64_t>(shape.size());
  OMPQ_CHECK(lead >= 0, "sum_to: cannot reduce shape ", shape_str(grad.shape()), " to ",
             shape_str(shape));
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < grad.dim(); ++d) {
    if (d < lead || (shape[d - lead] == 1 && grad.shape()[d] != 1)) dims.push_back(d);
  }
  Tensor reduced = dims.empty() ? grad : ops::sum(grad, dims, /*keepdim=*/true);
  return reduced.reshape(shape);
}

void run_backward(const Tensor& root, const Tensor& grad) {
  NoGradGuard no_grad;
  std::shared_ptr<Node> root_node = gradient_edge(root);
  OMPQ_CHECK(root_node != nullptr, "backward: the tensor does not require grad and has no grad_fn");

  // Count, for every node reachable from the root, how many edges lead into it.
  std::unordered_map<Node*, int> pending;
  std::vector<Node*> stack = {root_node.get()};
  pending[root_node.get()] = 0;
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    for (const auto& next : node->inputs) {
      if (!next) continue;
      auto [it, inserted] = pending.emplace(next.get(), 0);
      ++it->second;
      if (inserted) stack.push_back(next.get());
    }
  }

  // Run each node once all of its consumers have contributed to its gradient.
  std::unordered_map<Node*, Tensor> grads;
  grads[root_node.get()] = grad;
  std::vector<Node*> ready = {root_node.get()};
  while (!ready.empty()) {
    Node* node = ready.back();
    ready.pop_back();
    Tensor g = std::move(grads[node]);
    grads.erase(node);
    std::vector<Tensor> input_grads;
    if (g.defined()) input_grads = node->apply(g);
    for (size_t i = 0; i < node->inputs.size(); ++i) {
      Node* next = node->inputs[i].get();
      if (next == nullptr) continue;
      if (i < input_grads.size() && input_grads[i].defined()) {
        Tensor& acc = grads[next];
        acc = acc.defined() ? ops::add(acc, input_grads[i]) : input_grads[i];
      }
      if (--pending[next] == 0) ready.push_back(next);
    }
  }
}

}  // namespace ompq
