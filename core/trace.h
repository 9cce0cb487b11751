// Op tracing: a thread-local observer that the autograd-aware op entry points (core/functional/*,
// Tensor::view/reshape/flatten) report each call to, so that a model's dataflow can be recorded
// from one forward pass (layers/graph/ builds its graph from these reports). Core knows nothing of
// modules: a report carries the op, its tensors and its attributes only.
//
// Off (no observer installed on the calling thread) an entry point pays one thread-local pointer
// test. Only the outermost traced call is reported: an entry point that calls another (flatten ->
// reshape -> view, batch_norm -> batch_norm_act) is one op.
#pragma once

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/ops/conv.h"
#include "core/ops/norm_math.h"
#include "core/ops/pool.h"
#include "core/tensor.h"

namespace ompq::trace {

enum class Op : uint8_t {
  kConv2d,             // inputs {x}; parameters {weight, bias}
  kLinear,             // inputs {x}; parameters {weight, bias}
  kBatchNorm,          // activation(batch_norm(x) + residual): inputs {x} or {x, residual};
                       // parameters {weight, bias, running_mean, running_var}
  kAdd,                // inputs {a, b}
  kSub,                // inputs {a, b}
  kMul,                // inputs {a, b}
  kRelu,               // inputs {x}
  kRelu6,              // inputs {x}
  kMaxPool2d,          // inputs {x}
  kAvgPool2d,          // inputs {x}
  kAdaptiveAvgPool2d,  // inputs {x}
  kReshape,            // view, reshape and flatten: inputs {x}; the output's shape says the rest
  kDropout,            // inputs {x}
  kConcat,             // inputs: the concatenated tensors
};
const char* op_name(Op op);  // "conv2d", "batch_norm", ...

// What an op does beyond its tensors; only the fields of the reported op are set.
struct OpAttributes {
  Conv2dParams conv;                     // kConv2d
  Pool2dParams pool;                     // kMaxPool2d, kAvgPool2d
  std::array<int64_t, 2> output_size{};  // kAdaptiveAvgPool2d
  // kBatchNorm: batch statistics (true) or running ones, momentum of the running update, eps, and
  // the activation applied after the residual add.
  bool training = false;
  double momentum = 0.0;
  double eps = 0.0;
  NormActivation activation = NormActivation::kIdentity;
  double dropout_p = 0.0;  // kDropout: the probability (the op is the identity unless training)
  int64_t dim = 0;         // kConcat: the concatenated dimension
};

struct OpCall {
  explicit OpCall(Op op, std::vector<Tensor> inputs = {}, std::vector<Tensor> parameters = {})
      : op(op), inputs(std::move(inputs)), parameters(std::move(parameters)) {}

  Op op;
  std::vector<Tensor> inputs;      // the data operands, in the order documented per op
  std::vector<Tensor> parameters;  // the op's weights and statistics; undefined when absent
  Tensor output;                   // what the entry point returns
  OpAttributes attributes;
};

class Observer {
 public:
  virtual ~Observer() = default;
  virtual void on_op(const OpCall& call) = 0;
};

namespace detail {
extern thread_local Observer* observer;
extern thread_local int depth;  // traced entry points running on this thread
}  // namespace detail

// Installs `observer` on the calling thread for the scope's lifetime (the previous one comes back).
class ObserverScope {
 public:
  explicit ObserverScope(Observer* observer);
  ~ObserverScope();
  ObserverScope(const ObserverScope&) = delete;
  ObserverScope& operator=(const ObserverScope&) = delete;

 private:
  Observer* previous_;
  int previous_depth_;
};

// Whether an observer is installed on this thread.
inline bool active() { return detail::observer != nullptr; }

// Placed at the top of a traced entry point: while it lives, entry points it calls are internal.
class OpRecorder {
 public:
  OpRecorder() : observer_(detail::observer) {
    if (observer_) ++detail::depth;
  }
  ~OpRecorder() {
    if (observer_) --detail::depth;
  }
  OpRecorder(const OpRecorder&) = delete;
  OpRecorder& operator=(const OpRecorder&) = delete;

  // Whether this call is to be reported (an observer is on and no traced entry point encloses it).
  bool reporting() const { return observer_ != nullptr && detail::depth == 1; }
  // Reports and returns `call.output`; call only when reporting().
  Tensor report(OpCall call) const;

 private:
  Observer* observer_;
};

// The body of a traced entry point: runs `compute` (returning the op's result) and, when this is
// the outermost traced call on a thread with an observer, reports it as `describe()` gives it
// (without its output, which is filled in here).
template <typename Compute, typename Describe>
Tensor traced(Compute&& compute, Describe&& describe) {
  OpRecorder recorder;
  Tensor output = compute();
  if (!recorder.reporting()) return output;
  OpCall call = describe();
  call.output = output;
  return recorder.report(std::move(call));
}

}  // namespace ompq::trace
