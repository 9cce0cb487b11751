// Reverse-mode autograd: a tape of Nodes. A differentiable function computes its output with
// autograd-free ops, then calls record() with the inputs and a backward rule; backward() walks
// the graph from the loss in reverse topological order, summing gradients that meet at a tensor.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ompq {

// Grad mode is per thread; NoGradGuard turns recording off for a scope (evaluation, optimizer
// steps, backward rules themselves).
class GradMode {
 public:
  static bool enabled();
  static void set_enabled(bool enabled);
};

class NoGradGuard {
 public:
  NoGradGuard() : previous_(GradMode::enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// One recorded operation. `inputs` are the autograd edges of the op's tensor inputs, in the order
// the backward rule returns their gradients; an input that does not require grad has a null edge.
class Node {
 public:
  virtual ~Node() = default;
  // Gradients w.r.t. each input given the gradient of the output; an undefined Tensor means zero.
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  virtual std::string name() const = 0;
  std::vector<std::shared_ptr<Node>> inputs;
};

using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

// True when grad mode is on and any defined input requires grad.
bool any_requires_grad(std::initializer_list<Tensor> inputs);
bool any_requires_grad(const std::vector<Tensor>& inputs);

// Attaches a node named `name` with rule `backward` to `output` when any input requires grad
// (and grad mode is on), and returns output. `backward` must capture saved tensors with detach()
// (never `output` itself: that would be a reference cycle) and return one gradient per input, each
// of that input's shape (use sum_to() after broadcasting) or undefined.
Tensor record(Tensor output, const std::vector<Tensor>& inputs, const char* name,
              BackwardFn backward);

// Sums `grad` over the dims that broadcasting expanded so that it gets `shape`.
Tensor sum_to(const Tensor& grad, const Shape& shape);

// Runs backward from `root` with seed gradient `grad`.
void run_backward(const Tensor& root, const Tensor& grad);

// Leaf-gradient hooks: called, on the thread that runs backward, each time backward has finished
// accumulating a leaf's gradient for this pass (once per leaf per backward: gradients that meet
// at a leaf are summed before it is reached), while the rest of backward is still to run. Data
// parallel training starts reducing a bucket of gradients as soon as all of them are final. A
// hook sees every leaf of every backward in the process and must ignore leaves it does not own.
using LeafGradHook = std::function<void(const Tensor& leaf)>;
// Returns the id that remove_leaf_grad_hook() takes.
int64_t add_leaf_grad_hook(LeafGradHook hook);
void remove_leaf_grad_hook(int64_t id);

}  // namespace ompq
