// Rounding (docs/METHOD.md 2.6): numpy's half-to-even and the reference's DFS_bit, on the
// continuous input of docs/METHOD.md 2.11 (ResNet-18 PTQ 4.5 MB) and on the ResNet-18 QAT 6.7 MB
// vertex with and without the reference's solver noise.
#include "solver/search/rounding.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"

namespace ompq::solver {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

constexpr double kMiB = 1024.0 * 1024.0;

// docs/METHOD.md 2.3 parameter counts in MiB ("params / 2^20"), ResNet-18 PTQ order.
std::vector<double> resnet18_sizes(bool ptq) {
  std::vector<double> params = {36992,  36992,  36992,  36992,  73984,   156160,  147712,  147712,
                                295424, 623616, 590336, 590336, 1180672, 2492416, 2360320, 2360320};
  if (ptq) {
    params.insert(params.begin(), 9536);
    params.push_back(513000);
  }
  for (double& p : params) p /= kMiB;
  return params;
}

TEST(Rounding, HalfToEvenLikeNumpy) {
  EXPECT_THAT(round_half_to_even({2.5, 3.5, 4.5, 2.4999999, 5.5, 7.0, 6.5000001}),
              ElementsAre(2, 4, 4, 2, 6, 7, 7));
}

TEST(Rounding, DfsReproducesTheReleasedResNet18Ptq45Config) {
  const std::vector<double> relaxed = {
      3.995760270, 3.983553261, 3.983553261, 3.983553261, 3.983553261, 3.967106521,
      3.930570858, 3.934326861, 3.934326861, 3.868653722, 3.722738705, 3.737535080,
      3.737535080, 3.475070159, 2.891865366, 2.950595591, 2.950595591, 3.771918866};
  absl::StatusOr<std::vector<int>> bits = round_dfs(relaxed, resnet18_sizes(true));
  ASSERT_TRUE(bits.ok()) << bits.status();
  EXPECT_THAT(*bits, ElementsAre(4, 3, 3, 4, 4, 4, 4, 4, 4, 4, 3, 3, 4, 4, 3, 3, 3, 3));
  // Half-to-even ignores the size: it rounds the same input up almost everywhere.
  EXPECT_THAT(round_half_to_even(relaxed),
              ElementsAre(4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 3, 3, 3, 3, 4));
}

TEST(Rounding, DfsOnTheResNet18QatVertexAndWithTheReferenceNoise) {
  // docs/METHOD.md 2.5/2.11: layers {9, 12..15} at 4 bits, layer 10 fractional, the rest at 8.
  std::vector<double> vertex(16, 8.0);
  for (int i : {9, 12, 13, 14, 15}) vertex[i] = 4.0;
  vertex[10] = 5.894341;
  absl::StatusOr<std::vector<int>> exact = round_dfs(vertex, resnet18_sizes(false));
  ASSERT_TRUE(exact.ok());
  EXPECT_THAT(*exact, ElementsAre(8, 8, 8, 8, 8, 8, 8, 8, 8, 4, 5, 8, 4, 4, 4, 4));
  vertex[4] = 8 - 1e-12;  // SLSQP's value in the reference run
  absl::StatusOr<std::vector<int>> noisy = round_dfs(vertex, resnet18_sizes(false));
  ASSERT_TRUE(noisy.ok());
  EXPECT_THAT(*noisy, ElementsAre(8, 8, 8, 8, 7, 8, 8, 8, 8, 4, 6, 8, 4, 4, 4, 4));
}

TEST(Rounding, DfsNeverExceedsAndBreaksTiesInTheReferenceOrder) {
  // Both (2, 1) and (1, 2) hit the continuous cost 3 exactly; the reference decides the last
  // layer first, ceil first, so the last layer gets the ceil.
  absl::StatusOr<std::vector<int>> tie = round_dfs({1.5, 1.5}, {1.0, 1.0});
  ASSERT_TRUE(tie.ok());
  EXPECT_THAT(*tie, ElementsAre(1, 2));
  // The closest choice that does not exceed: 2*3 + 1*2 = 8 <= 2*3.4 + 1*1.5 = 8.3.
  absl::StatusOr<std::vector<int>> bits = round_dfs({3.4, 1.5}, {2.0, 1.0});
  ASSERT_TRUE(bits.ok());
  EXPECT_THAT(*bits, ElementsAre(3, 2));
}

TEST(Rounding, DfsBadInputs) {
  std::vector<double> many(kMaxDfsFractional + 1, 3.5);
  absl::StatusOr<std::vector<int>> too_many = round_dfs(many, std::vector<double>(many.size(), 1));
  ASSERT_FALSE(too_many.ok());
  EXPECT_THAT(std::string(too_many.status().message()),
              HasSubstr("25 layers have fractional bit-widths"));
  EXPECT_THAT(
      [] {
        (void)round_dfs({3.5, 2.0}, {1.0});
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("2 bit-widths and 1 costs")));
  EXPECT_THAT([] { (void)round_dfs({3.5}, {0.0}); },
              ::testing::ThrowsMessage<Error>(HasSubstr("costs[0] = 0")));
  EXPECT_THAT([] { round_half_to_even({-1.0}); },
              ::testing::ThrowsMessage<Error>(HasSubstr("bits[0] = -1")));
}

}  // namespace
}  // namespace ompq::solver
