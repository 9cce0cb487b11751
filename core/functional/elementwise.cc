#include "core/functional/elementwise.h"

#include "core/autograd.h"
#include "core/ops/elementwise.h"
#include "core/trace.h"

namespace ompq {
namespace {

// Backward rules run under NoGradGuard, so they use the raw ops.
using Grads = std::vector<Tensor>;

// The gradient of a broadcast input (or undefined when it does not need one).
Tensor reduce_grad(bool needed, const Tensor& grad, const Shape& shape) {
  return needed ? sum_to(grad, shape) : Tensor();
}

// Records a binary op whose input gradients are grad * da and grad * db, where `partials(grad)`
// returns {grad * da, grad * db} at the broadcast shape; each is summed back to its input's shape
// and only computed when that input requires grad.
template <typename Partials>
Tensor record_binary(Tensor out, const Tensor& a, const Tensor& b, const char* name,
                     Partials partials) {
  if (!any_requires_grad({a, b})) return out;
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  Shape a_shape = a.shape(), b_shape = b.shape();
  return record(std::move(out), {a, b}, name, [=](const Tensor& g) {
    auto [ga, gb] = partials(g, need_a, need_b);
    return Grads{reduce_grad(need_a, ga, a_shape), reduce_grad(need_b, gb, b_shape)};
  });
}

// Records a unary op whose backward rule is `rule(grad)`.
template <typename Rule>
Tensor record_unary(Tensor out, const Tensor& x, const char* name, Rule rule) {
  if (!any_requires_grad({x})) return out;
  return record(std::move(out), {x}, name, [=](const Tensor& g) { return Grads{rule(g)}; });
}

using TensorPair = std::pair<Tensor, Tensor>;

// maximum/minimum: `a_wins` is 1 where a is selected, 0.5 on ties, 0 where b is.
Tensor extremum(const Tensor& a, const Tensor& b, bool is_max) {
  Tensor out = is_max ? ops::maximum(a, b) : ops::minimum(a, b);
  Tensor ad = a.detach(), bd = b.detach();
  return record_binary(
      out, a, b, is_max ? "MaximumBackward" : "MinimumBackward",
      [ad, bd, is_max](const Tensor& g, bool, bool) {
        Tensor wins = is_max ? ops::gt(ad, bd) : ops::lt(ad, bd);
        Tensor a_share = ops::add(wins, ops::mul(ops::eq(ad, bd), 0.5));
        return TensorPair{ops::mul(g, a_share), ops::mul(g, ops::rsub(a_share, 1.0))};
      });
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  return trace::traced(
      [&]() -> Tensor {
        return record_binary(ops::add(a, b), a, b, "AddBackward", [](const Tensor& g, bool, bool) {
          return TensorPair{g, g};
        });
      },
      [&] {
        return trace::OpCall{trace::Op::kAdd, {a, b}};
      });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  return trace::traced(
      [&]() -> Tensor {
        return record_binary(ops::sub(a, b), a, b, "SubBackward",
                             [](const Tensor& g, bool, bool need_b) {
                               return TensorPair{g, need_b ? ops::neg(g) : Tensor()};
                             });
      },
      [&] {
        return trace::OpCall{trace::Op::kSub, {a, b}};
      });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  return trace::traced(
      [&]() -> Tensor {
        Tensor ad = a.detach(), bd = b.detach();
        return record_binary(ops::mul(a, b), a, b, "MulBackward",
                             [ad, bd](const Tensor& g, bool need_a, bool need_b) {
                               return TensorPair{need_a ? ops::mul(g, bd) : Tensor(),
                                                 need_b ? ops::mul(g, ad) : Tensor()};
                             });
      },
      [&] {
        return trace::OpCall{trace::Op::kMul, {a, b}};
      });
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor ad = a.detach(), bd = b.detach();
  return record_binary(
      ops::div(a, b), a, b, "DivBackward", [ad, bd](const Tensor& g, bool, bool need_b) {
        // d(a/b)/db = -(a/b)/b: reuse g/b.
        Tensor g_over_b = ops::div(g, bd);
        Tensor gb = need_b ? ops::neg(ops::div(ops::mul(g_over_b, ad), bd)) : Tensor();
        return TensorPair{g_over_b, gb};
      });
}

Tensor maximum(const Tensor& a, const Tensor& b) { return extremum(a, b, /*is_max=*/true); }
Tensor minimum(const Tensor& a, const Tensor& b) { return extremum(a, b, /*is_max=*/false); }

Tensor add(const Tensor& x, double s) {
  return record_unary(ops::add(x, s), x, "AddScalarBackward", [](const Tensor& g) { return g; });
}

Tensor sub(const Tensor& x, double s) {
  return record_unary(ops::sub(x, s), x, "SubScalarBackward", [](const Tensor& g) { return g; });
}

Tensor mul(const Tensor& x, double s) {
  return record_unary(ops::mul(x, s), x, "MulScalarBackward",
                      [s](const Tensor& g) { return ops::mul(g, s); });
}

Tensor div(const Tensor& x, double s) {
  return record_unary(ops::div(x, s), x, "DivScalarBackward",
                      [s](const Tensor& g) { return ops::div(g, s); });
}

Tensor rsub(const Tensor& x, double s) {
  return record_unary(ops::rsub(x, s), x, "RsubScalarBackward",
                      [](const Tensor& g) { return ops::neg(g); });
}

Tensor rdiv(const Tensor& x, double s) {
  Tensor xd = x.detach();
  return record_unary(ops::rdiv(x, s), x, "RdivScalarBackward", [xd, s](const Tensor& g) {
    return ops::mul(g, ops::rdiv(ops::square(xd), -s));  // d(s/x)/dx = -s / x^2
  });
}

Tensor neg(const Tensor& x) {
  return record_unary(ops::neg(x), x, "NegBackward", [](const Tensor& g) { return ops::neg(g); });
}

Tensor abs(const Tensor& x) {
  Tensor xd = x.detach();
  return record_unary(ops::abs(x), x, "AbsBackward",
                      [xd](const Tensor& g) { return ops::abs_backward(g, xd); });
}

Tensor relu(const Tensor& x) {
  return trace::traced(
      [&]() -> Tensor {
        Tensor out = ops::relu(x);
        Tensor saved = out.detach();  // y > 0 exactly where x > 0; x itself need not stay alive
        return record_unary(out, x, "ReluBackward",
                            [saved](const Tensor& g) { return ops::relu_backward(g, saved); });
      },
      [&] {
        return trace::OpCall{trace::Op::kRelu, {x}};
      });
}

Tensor relu6(const Tensor& x) {
  return trace::traced(
      [&]() -> Tensor {
        Tensor xd = x.detach();
        return record_unary(ops::relu6(x), x, "Relu6Backward",
                            [xd](const Tensor& g) { return ops::relu6_backward(g, xd); });
      },
      [&] {
        return trace::OpCall{trace::Op::kRelu6, {x}};
      });
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  Tensor xd = x.detach();
  return record_unary(ops::clamp(x, lo, hi), x, "ClampBackward",
                      [xd, lo, hi](const Tensor& g) { return ops::clamp_backward(g, xd, lo, hi); });
}

Tensor sqrt(const Tensor& x) {
  Tensor out = ops::sqrt(x);
  Tensor saved = out.detach();
  return record_unary(out, x, "SqrtBackward",
                      [saved](const Tensor& g) { return ops::sqrt_backward(g, saved); });
}

Tensor exp(const Tensor& x) {
  Tensor out = ops::exp(x);
  Tensor saved = out.detach();
  return record_unary(out, x, "ExpBackward",
                      [saved](const Tensor& g) { return ops::mul(g, saved); });
}

Tensor log(const Tensor& x) {
  Tensor xd = x.detach();
  return record_unary(ops::log(x), x, "LogBackward",
                      [xd](const Tensor& g) { return ops::div(g, xd); });
}

Tensor square(const Tensor& x) {
  Tensor xd = x.detach();
  return record_unary(ops::square(x), x, "SquareBackward",
                      [xd](const Tensor& g) { return ops::pow_backward(g, xd, 2.0); });
}

Tensor pow(const Tensor& x, double exponent) {
  Tensor xd = x.detach();
  return record_unary(ops::pow(x, exponent), x, "PowBackward", [xd, exponent](const Tensor& g) {
    return ops::pow_backward(g, xd, exponent);
  });
}

Tensor where(const Tensor& cond, const Tensor& x, const Tensor& y) {
  Tensor cd = cond.detach();
  return record_binary(ops::where(cond, x, y), x, y, "WhereBackward",
                       [cd](const Tensor& g, bool need_x, bool need_y) {
                         Tensor zero = Tensor::scalar(0.0, g.dtype(), g.device());
                         return TensorPair{need_x ? ops::where(cd, g, zero) : Tensor(),
                                           need_y ? ops::where(cd, zero, g) : Tensor()};
                       });
}

Tensor gt(const Tensor& a, const Tensor& b) { return ops::gt(a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return ops::lt(a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return ops::ge(a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return ops::le(a, b); }
Tensor eq(const Tensor& a, const Tensor& b) { return ops::eq(a, b); }

}  // namespace ompq
