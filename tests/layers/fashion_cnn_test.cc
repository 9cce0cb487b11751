// Replays scripts/make_fashion_cnn_golden.py: the same FashionCnn weights, the same batch of real
// Fashion-MNIST images and the same SGD steps as PyTorch 1.13 must give the same losses and final
// weights. One check of the whole training step (forward, every backward rule, BN in train mode,
// Nesterov SGD with weight decay) against the peer.
#include "layers/models/fashion_cnn.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/functional/softmax.h"
#include "core/safetensors.h"
#include "layers/optim.h"

namespace ompq::nn {
namespace {

double relative_error(const Tensor& actual, const Tensor& expected) {
  std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - e[i]) * (a[i] - e[i]);
    norm += e[i] * e[i];
  }
  return std::sqrt(diff / std::max(norm, 1e-30));
}

TensorMap with_prefix_removed(const TensorMap& all, const std::string& prefix) {
  TensorMap out;
  for (const auto& [name, t] : all) {
    if (name.rfind(prefix, 0) == 0) out[name.substr(prefix.size())] = t;
  }
  return out;
}

TEST(FashionCnn, TrainingStepsMatchPyTorch) {
  auto golden =
      load_safetensors(std::string(OMPQ_SOURCE_DIR) + "/tests/data/fashion_cnn_steps.safetensors");
  ASSERT_TRUE(golden.ok()) << golden.status();
  const TensorMap& g = golden->tensors;
  FashionCnn model;
  ASSERT_TRUE(model.load_state_dict(with_prefix_removed(g, "initial.")).ok());
  SgdOptions options;
  options.lr = 0.01;
  options.momentum = 0.9;
  options.weight_decay = 5e-4;
  options.nesterov = true;
  SGD optimizer(model.parameters(), options);
  std::vector<float> expected_losses = g.at("losses").to_vector<float>();
  for (size_t step = 0; step < expected_losses.size(); ++step) {
    Tensor loss = cross_entropy(model(g.at("input")), g.at("labels"));
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    EXPECT_NEAR(loss.item<float>(), expected_losses[step], 1e-4 * std::abs(expected_losses[step]))
        << "step " << step;
  }
  for (const auto& [name, expected] : with_prefix_removed(g, "final.")) {
    Tensor actual = model.state_dict().at(name);
    if (actual.dtype() == DType::kI64) {
      EXPECT_EQ(actual.item<int64_t>(), expected.item<int64_t>()) << name;
    } else {
      EXPECT_LE(relative_error(actual, expected), 1e-4) << name;
    }
  }
}

}  // namespace
}  // namespace ompq::nn
