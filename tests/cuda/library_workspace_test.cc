// The workspace fallback loop of cuda/library_workspace.h on made-up candidate lists. The limit
// keeps every nonzero request away from the allocator, so these run without a GPU too.
#include "cuda/library_workspace.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

namespace ompq {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

struct FakeAlgorithm {
  int id;
  size_t workspace;
};

struct WorkspaceLimit {
  explicit WorkspaceLimit(size_t bytes) { cuda::set_workspace_limit(bytes); }
  ~WorkspaceLimit() { cuda::set_workspace_limit(cuda::kNoWorkspaceLimit); }
};

// The id of the candidate that ran, and the workspace it was handed.
struct Ran {
  int id = -1;
  void* workspace = reinterpret_cast<void*>(1);
  size_t bytes = 1;
};

Ran run(const std::vector<FakeAlgorithm>& candidates) {
  Ran ran;
  cuda::run_first_fitting(candidates, 0, "fake op",
                          [&](const FakeAlgorithm& a, void* workspace, size_t bytes) {
                            ran = {a.id, workspace, bytes};
                          });
  return ran;
}

TEST(LibraryWorkspace, RunsTheFirstCandidateThatFitsTheLimit) {
  WorkspaceLimit limit(1000);
  const int64_t fallbacks = cuda::workspace_stats().fallbacks;
  const Ran ran = run({{7, 4096}, {8, 2048}, {9, 0}, {10, 0}});
  EXPECT_EQ(ran.id, 9);
  EXPECT_EQ(ran.workspace, nullptr);
  EXPECT_EQ(ran.bytes, 0u);
  EXPECT_EQ(cuda::workspace_stats().last_candidate, 2);
  EXPECT_EQ(cuda::workspace_stats().last_bytes, 0u);
  EXPECT_EQ(cuda::workspace_stats().fallbacks, fallbacks + 1);
}

TEST(LibraryWorkspace, TheFirstCandidateIsNoFallback) {
  WorkspaceLimit limit(0);
  const int64_t fallbacks = cuda::workspace_stats().fallbacks;
  EXPECT_EQ(run({{3, 0}, {4, 0}}).id, 3);
  EXPECT_EQ(cuda::workspace_stats().last_candidate, 0);
  EXPECT_EQ(cuda::workspace_stats().fallbacks, fallbacks);
}

TEST(LibraryWorkspace, NamesTheOpWhenNothingFits) {
  WorkspaceLimit limit(100);
  EXPECT_THAT(
      [] {
        run({{1, 4096}, {2, 512}});
      },
      ThrowsMessage<Error>(HasSubstr("fake op: no algorithm's workspace could be "
                                     "allocated (the smallest needs 512 bytes)")));
  EXPECT_THAT([] { run({}); },
              ThrowsMessage<Error>(HasSubstr("fake op: the library offers no algorithm")));
}

TEST(LibraryWorkspace, LimitIsSetAndLifted) {
  EXPECT_EQ(cuda::workspace_limit(), cuda::kNoWorkspaceLimit);
  {
    WorkspaceLimit limit(123);
    EXPECT_EQ(cuda::workspace_limit(), 123u);
  }
  EXPECT_EQ(cuda::workspace_limit(), cuda::kNoWorkspaceLimit);
}

}  // namespace
}  // namespace ompq
