// Leaf-gradient hooks (core/autograd.h): when they run, what they see, and removal.
#include <gtest/gtest.h>

#include <vector>

#include "core/autograd.h"
#include "core/functional/elementwise.h"
#include "core/functional/reduce.h"

namespace ompq {
namespace {

TEST(LeafGradHook, RunsOncePerLeafWithItsFinalGradientBeforeBackwardEnds) {
  Tensor a = Tensor::from_vector<double>({1, 2}, {2});
  Tensor b = Tensor::from_vector<double>({3}, {1});
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  // a meets the graph on two paths; its hook must see the sum of both, once. b's gradient is
  // final before a's (it is closer to the loss), and a's hook must come after it.
  Tensor hidden = a * 2.0;
  Tensor loss = sum(hidden * b) + sum(a * a);
  std::vector<std::pair<std::string, std::vector<double>>> seen;
  int64_t id = add_leaf_grad_hook([&](const Tensor& leaf) {
    seen.emplace_back(leaf.same(a)   ? "a"
                      : leaf.same(b) ? "b"
                                     : "other",
                      leaf.grad().to_vector<double>());
  });
  loss.backward();
  remove_leaf_grad_hook(id);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].first, "b");
  EXPECT_EQ(seen[0].second, (std::vector<double>{6}));  // sum(2a)
  EXPECT_EQ(seen[1].first, "a");
  EXPECT_EQ(seen[1].second, (std::vector<double>{8, 10}));  // 2b + 2a
  sum(a * 3.0).backward();
  EXPECT_EQ(seen.size(), 2u);  // removed: no longer called
}

TEST(LeafGradHook, IsNotCalledForLeavesWithoutGradOrUnreached) {
  Tensor a = Tensor::from_vector<double>({1}, {1});
  Tensor frozen = Tensor::from_vector<double>({2}, {1});
  Tensor unused = Tensor::from_vector<double>({3}, {1});
  a.set_requires_grad(true);
  unused.set_requires_grad(true);
  int calls = 0;
  int64_t id = add_leaf_grad_hook([&](const Tensor& leaf) {
    ++calls;
    EXPECT_TRUE(leaf.same(a));
  });
  sum(a * frozen).backward();
  remove_leaf_grad_hook(id);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace ompq
