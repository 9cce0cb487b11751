// usable_device(): the --device flag of every app, checked against this process's GPUs; and
// use_device(), which makes the chosen GPU current.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "runtime/init.h"

namespace ompq {
namespace {

using ::testing::HasSubstr;

// Sets LOCAL_RANK for one test and restores what was there.
class ScopedLocalRank {
 public:
  explicit ScopedLocalRank(const char* value) {
    const char* old = std::getenv("LOCAL_RANK");
    had_old_ = old != nullptr;
    if (had_old_) old_ = old;
    if (value != nullptr) {
      setenv("LOCAL_RANK", value, 1);
    } else {
      unsetenv("LOCAL_RANK");
    }
  }
  ~ScopedLocalRank() {
    if (had_old_) {
      setenv("LOCAL_RANK", old_.c_str(), 1);
    } else {
      unsetenv("LOCAL_RANK");
    }
  }

 private:
  bool had_old_ = false;
  std::string old_;
};

TEST(UsableDevice, CpuIsAlwaysUsable) {
  absl::StatusOr<Device> device = usable_device("cpu");
  ASSERT_TRUE(device.ok()) << device.status();
  EXPECT_TRUE(device->is_cpu());
}

TEST(UsableDevice, BadSpellingNamesTheFlagAndTheForms) {
  absl::StatusOr<Device> device = usable_device("gpu0", "--search_device");
  ASSERT_FALSE(device.ok());
  EXPECT_THAT(std::string(device.status().message()), HasSubstr("--search_device"));
  EXPECT_THAT(std::string(device.status().message()), HasSubstr("cpu, cuda or cuda:N"));
}

TEST(UsableDevice, MalformedLocalRankIsRefusedBeforeLookingForGpus) {
  ScopedLocalRank local_rank("two");
  absl::StatusOr<Device> device = usable_device("cuda");
  ASSERT_FALSE(device.ok());
  EXPECT_THAT(std::string(device.status().message()), HasSubstr("LOCAL_RANK=\"two\""));
}

TEST(UsableDevice, CudaWithoutAGpuSaysWhy) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is usable here";
  ScopedLocalRank local_rank(nullptr);
  absl::StatusOr<Device> device = usable_device("cuda:0");
  ASSERT_FALSE(device.ok());
  EXPECT_THAT(std::string(device.status().message()), HasSubstr("--device=cuda:0"));
  EXPECT_THAT(std::string(device.status().message()), HasSubstr("no GPU is usable"));
}

TEST(UsableDevice, CudaTakesLocalRankAndChecksTheIndex) {
  if (!cuda_available()) GTEST_SKIP() << "no GPU is usable here";
  const int gpus = runtime_info().cuda_device_count;
  {
    ScopedLocalRank local_rank(std::to_string(gpus - 1).c_str());
    absl::StatusOr<Device> device = usable_device("cuda");
    ASSERT_TRUE(device.ok()) << device.status();
    EXPECT_EQ(*device, Device::cuda(gpus - 1));
  }
  absl::StatusOr<Device> beyond = usable_device("cuda:" + std::to_string(gpus));
  ASSERT_FALSE(beyond.ok());
  EXPECT_THAT(std::string(beyond.status().message()),
              HasSubstr("only " + std::to_string(gpus) + " GPU(s)"));
}

TEST(UseDevice, CpuNeedsNothing) { EXPECT_TRUE(use_device(Device::cpu()).ok()); }

TEST(UseDevice, GpuWithoutAGpuSaysWhy) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is usable here";
  const absl::Status status = use_device(Device::cuda(1));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr("use_device(cuda:1) but no GPU is usable"));
}

TEST(UseDevice, RefusesAGpuBeyondTheUsableOnes) {
  if (!cuda_available()) GTEST_SKIP() << "needs a usable GPU";
  const absl::Status status = use_device(Device::cuda(runtime_info().cuda_device_count));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("GPU(s) are usable"));
}

}  // namespace
}  // namespace ompq
