// Finite-difference gradient check shared by every backward-rule test (Caffe's GradientChecker,
// for our tape). The function is evaluated in f64; the scalar checked is L = sum(fn(x) * w) for a
// fixed random w, whose analytical gradient is what backward(w) computes.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "core/autograd.h"
#include "core/random.h"
#include "core/tensor.h"

namespace ompq::testing {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-6;
  double rtol = 1e-5;
  // Inputs whose gradient is checked; empty: every floating input.
  std::vector<bool> check;
};

using TensorFn = std::function<Tensor(const std::vector<Tensor>&)>;

inline double weighted_sum(const Tensor& out, const std::vector<double>& w) {
  std::vector<double> v = out.to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += v[i] * w[i];
  return s;
}

// Adds a GoogleTest failure, naming the input and element, for every gradient entry where
// |analytical - numerical| > atol + rtol * |numerical|.
inline void expect_gradients_match(const TensorFn& fn, const std::vector<Tensor>& inputs,
                                   const GradcheckOptions& options = {}) {
  std::vector<Tensor> x;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor xi = inputs[i]
                    .detach()
                    .to(is_floating(inputs[i].dtype()) ? DType::kF64 : inputs[i].dtype())
                    .contiguous()
                    .clone();
    bool check = is_floating(xi.dtype()) && (options.check.empty() || options.check[i]);
    xi.set_requires_grad(check);
    x.push_back(xi);
  }
  Tensor out = fn(x);
  ASSERT_TRUE(out.requires_grad()) << "the function's output does not require grad";
  Generator gen(1234);
  Tensor w = randn(out.shape(), gen, DType::kF64);
  std::vector<double> wv = w.to_vector<double>();
  out.backward(w);

  NoGradGuard no_grad;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!x[i].requires_grad()) continue;
    Tensor analytical = x[i].grad();
    std::vector<double> a = analytical.defined() ? analytical.to_vector<double>()
                                                 : std::vector<double>(x[i].numel(), 0.0);
    double* data = x[i].data<double>();
    int failures = 0;
    for (int64_t j = 0; j < x[i].numel() && failures < 5; ++j) {
      double saved = data[j];
      data[j] = saved + options.eps;
      double plus = weighted_sum(fn(x), wv);
      data[j] = saved - options.eps;
      double minus = weighted_sum(fn(x), wv);
      data[j] = saved;
      double numerical = (plus - minus) / (2 * options.eps);
      if (std::abs(a[j] - numerical) > options.atol + options.rtol * std::abs(numerical)) {
        ADD_FAILURE() << "input " << i << " element " << j << ": analytical " << a[j]
                      << " vs numerical " << numerical;
        ++failures;
      }
    }
  }
}

}  // namespace ompq::testing
