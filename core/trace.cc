#include "core/trace.h"

namespace ompq::trace {
namespace detail {
thread_local Observer* observer = nullptr;
thread_local int depth = 0;
}  // namespace detail

const char* op_name(Op op) {
  switch (op) {
    case Op::kConv2d:
      return "conv2d";
    case Op::kLinear:
      return "linear";
    case Op::kBatchNorm:
      return "batch_norm";
    case Op::kAdd:
      return "add";
    case Op::kSub:
      return "sub";
    case Op::kMul:
      return "mul";
    case Op::kRelu:
      return "relu";
    case Op::kRelu6:
      return "relu6";
    case Op::kMaxPool2d:
      return "max_pool2d";
    case Op::kAvgPool2d:
      return "avg_pool2d";
    case Op::kAdaptiveAvgPool2d:
      return "adaptive_avg_pool2d";
    case Op::kReshape:
      return "reshape";
    case Op::kDropout:
      return "dropout";
    case Op::kConcat:
      return "concat";
  }
  return "unknown";
}

ObserverScope::ObserverScope(Observer* observer)
    : previous_(detail::observer), previous_depth_(detail::depth) {
  detail::observer = observer;
  detail::depth = 0;
}

ObserverScope::~ObserverScope() {
  detail::observer = previous_;
  detail::depth = previous_depth_;
}

Tensor OpRecorder::report(OpCall call) const {
  Tensor output = call.output;
  observer_->on_op(call);
  return output;
}

}  // namespace ompq::trace
