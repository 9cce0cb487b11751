// LR schedules against torch.optim.lr_scheduler (1.13) stepped once per iteration, base lr 0.1:
//   lrs = []; for t in range(n): lrs.append(opt.param_groups[0]['lr']); opt.step(); sched.step()
// Tolerance 1e-12 (torch's cosine is recursive; ours is the closed form).
#include "layers/lr_schedule.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

namespace ompq::nn {
namespace {

using ::testing::HasSubstr;

void expect_schedule(const LrSchedule& s, const std::vector<double>& golden) {
  for (size_t t = 0; t < golden.size(); ++t) {
    EXPECT_NEAR(s.lr(static_cast<int64_t>(t), 0.1), golden[t], 1e-12) << "iteration " << t;
  }
}

TEST(LrScheduleTest, StepMatchesTorchStepLR) {
  // StepLR(step_size=3, gamma=0.5)
  expect_schedule(StepLr(3, 0.5), {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125});
}

TEST(LrScheduleTest, CosineMatchesTorchCosineAnnealingLR) {
  // CosineAnnealingLR(T_max=10, eta_min=0.001)
  CosineLr cosine(10, 0.001);
  expect_schedule(cosine,
                  {0.1, 0.097577297556610113, 0.090546341221559898, 0.079595369988477424,
                   0.065796341221559904, 0.050500000000000003, 0.03520365877844011,
                   0.021404630011522589, 0.010453658778440109, 0.0034227024433899004, 0.001});
  // Past T it stays at eta_min (torch's would rise again).
  EXPECT_DOUBLE_EQ(cosine.lr(25, 0.1), 0.001);
}

TEST(LrScheduleTest, WarmupThenCosineMatchesTorchSequentialLR) {
  // SequentialLR([LinearLR(start_factor=0.25, total_iters=4), CosineAnnealingLR(T_max=8)], [4])
  WarmupLr s(4, 0.25, std::make_shared<CosineLr>(8));
  expect_schedule(s, {0.025, 0.043750000000000004, 0.062500000000000014, 0.081250000000000017, 0.1,
                      0.096193976625564337, 0.085355339059327379, 0.069134171618254497, 0.05,
                      0.030865828381745515, 0.014644660940672627, 0.0038060233744356634, 0.0});
}

TEST(LrScheduleTest, WarmupThenStepMatchesTorchSequentialLR) {
  // SequentialLR([LinearLR(start_factor=0.1, total_iters=3), StepLR(step_size=2, gamma=0.1)], [3])
  WarmupLr s(3, 0.1, std::make_shared<StepLr>(2, 0.1));
  expect_schedule(s, {0.01, 0.04, 0.07, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001});
}

TEST(LrScheduleTest, ConstantAndZeroWarmup) {
  expect_schedule(ConstantLr(), {0.1, 0.1, 0.1});
  expect_schedule(WarmupLr(0, 0.0, std::make_shared<StepLr>(1, 0.5)), {0.1, 0.05, 0.025});
}

TEST(LrScheduleTest, ApplySetsEveryGroupFromItsInitialLr) {
  Tensor a = Tensor::zeros({2}).set_requires_grad(true);
  Tensor b = Tensor::zeros({2}).set_requires_grad(true);
  SGD opt(std::vector<ParamGroup>{{{a}, 0.1, 0.0}, {{b}, 0.02, 0.0}}, SgdOptions{});
  StepLr s(2, 0.5);
  s.apply(opt, 5);  // two decays
  EXPECT_DOUBLE_EQ(opt.param_groups()[0].lr, 0.025);
  EXPECT_DOUBLE_EQ(opt.param_groups()[1].lr, 0.005);
  s.apply(opt, 0);  // pure function of the iteration: going back restores the base
  EXPECT_DOUBLE_EQ(opt.param_groups()[0].lr, 0.1);
}

TEST(LrScheduleTest, BadArguments) {
  using ::testing::ThrowsMessage;
  EXPECT_THAT([] { StepLr(0); }, ThrowsMessage<Error>(HasSubstr("StepLr: step_size 0")));
  EXPECT_THAT([] { StepLr(3, -0.1); }, ThrowsMessage<Error>(HasSubstr("StepLr: gamma -0.1")));
  EXPECT_THAT([] { CosineLr(0); }, ThrowsMessage<Error>(HasSubstr("CosineLr: total_iterations 0")));
  EXPECT_THAT([] { CosineLr(10, -1.0); }, ThrowsMessage<Error>(HasSubstr("eta_min -1")));
  EXPECT_THAT([] { WarmupLr(-1, 0.1, std::make_shared<ConstantLr>()); },
              ThrowsMessage<Error>(HasSubstr("warmup_iterations -1")));
  EXPECT_THAT([] { WarmupLr(5, 1.5, std::make_shared<ConstantLr>()); },
              ThrowsMessage<Error>(HasSubstr("start_factor 1.5")));
  EXPECT_THAT([] { WarmupLr(5, 0.1, nullptr); }, ThrowsMessage<Error>(HasSubstr("is null")));
  EXPECT_THAT([] { CosineLr(10).lr(-1, 0.1); },
              ThrowsMessage<Error>(HasSubstr("negative iteration -1")));
}

}  // namespace
}  // namespace ompq::nn
