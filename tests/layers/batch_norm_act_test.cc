// BatchNorm::forward_act: the fused batch norm + residual add + activation of a layer equals its
// forward() followed by the add and the activation (training: also the running statistics and
// num_batches_tracked; eval), and a folded layer applies only the add and the activation, with
// gradients to its input and the residual.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/functional/elementwise.h"
#include "core/random.h"
#include "layers/norm.h"

namespace ompq::nn {
namespace {

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

void expect_near_vectors(const std::vector<double>& actual, const std::vector<double>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_NEAR(actual[i], expected[i], 1e-6 * (1 + std::fabs(expected[i]))) << "at " << i;
  }
}

TEST(BatchNormLayer, ForwardActEqualsForwardThenAddAndActivation) {
  Generator gen(51);
  const Tensor x = randn({4, 3, 5, 5}, gen) * 2.0 + 1.0, residual = randn({4, 3, 5, 5}, gen);
  for (bool training : {true, false}) {
    SCOPED_TRACE(training ? "train" : "eval");
    BatchNorm2d fused(3), plain(3);
    for (BatchNorm2d* bn : {&fused, &plain}) {
      bn->weight().detach().copy_(Tensor::from_vector<float>({3, -2, 4}, {3}));
      bn->bias().detach().copy_(Tensor::from_vector<float>({2, 1, 5}, {3}));
      bn->train(training);
    }
    const Tensor y = fused.forward_act(x, NormActivation::kRelu6, residual);
    const Tensor expected = relu6(plain.forward(x) + residual);
    expect_near_vectors(values(y), values(expected));
    expect_near_vectors(values(fused.running_mean()), values(plain.running_mean()));
    expect_near_vectors(values(fused.running_var()), values(plain.running_var()));
    EXPECT_EQ(fused.num_batches_tracked().item<int64_t>(), training ? 1 : 0);
    // Training normalizes with the batch statistics, so the second calls agree too.
    expect_near_vectors(values(fused.forward_act(x, NormActivation::kRelu)),
                        values(relu(plain.forward(x))));
  }
}

TEST(BatchNormLayer, FoldedForwardActIsTheAddAndActivation) {
  Generator gen(52);
  BatchNorm2d bn(3);
  bn.set_folded(true);
  Tensor x = randn({2, 3, 4, 4}, gen), residual = randn({2, 3, 4, 4}, gen);
  x.set_requires_grad(true);
  residual.set_requires_grad(true);
  const Tensor y = bn.forward_act(x, NormActivation::kRelu, residual);
  expect_near_vectors(values(y), values(relu(x.detach() + residual.detach())));
  EXPECT_EQ(bn.num_batches_tracked().item<int64_t>(), 0);
  expect_near_vectors(values(bn.forward_act(x, NormActivation::kIdentity)), values(x));
  y.backward(Tensor::ones(y.shape()));
  const std::vector<double> yv = values(y), gx = values(x.grad()), gr = values(residual.grad());
  for (size_t i = 0; i < yv.size(); ++i) {
    EXPECT_EQ(gx[i], yv[i] > 0 ? 1.0 : 0.0) << i;
    EXPECT_EQ(gr[i], gx[i]) << i;
  }
}

}  // namespace
}  // namespace ompq::nn
