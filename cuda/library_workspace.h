// Workspace memory for cuDNN and cuBLASLt calls. The libraries rank their algorithms (fastest
// first), and the fastest often wants scratch memory; it comes from the caching allocator, and
// when it cannot be had the next algorithm that needs less is tried, down to one that needs none
// (every candidate list ends with such algorithms where the library has them). The first
// fallback in a process is reported on stderr once.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/tensor.h"

namespace ompq::cuda {

// For tests: requests above `bytes` fail as if the device were out of memory.
// kNoWorkspaceLimit (the default) lifts the limit.
constexpr size_t kNoWorkspaceLimit = std::numeric_limits<size_t>::max();
void set_workspace_limit(size_t bytes);
size_t workspace_limit();

struct WorkspaceStats {
  int64_t fallbacks = 0;        // calls that ran a later candidate for want of workspace
  size_t last_bytes = 0;        // workspace of the candidate that ran last
  int64_t last_candidate = -1;  // its index in the candidate list
};
WorkspaceStats workspace_stats();

// `bytes` of scratch on cuda:`device` (an undefined Tensor for 0 bytes). Sets *ok = false and
// returns an undefined Tensor when the allocator cannot provide it (or the limit forbids it).
Tensor try_allocate_workspace(size_t bytes, int device, bool* ok);

// Records that candidate `index` (needing `bytes`) ran; index > 0 counts as a fallback, and the
// first fallback of the process is reported with `what` and `skipped_bytes` (what the first
// candidate wanted).
void note_workspace_choice(const std::string& what, int64_t index, size_t bytes,
                           size_t skipped_bytes);

// Runs `run(candidate, workspace_ptr, workspace_bytes)` for the first of `candidates` (each with
// a `size_t workspace` member) whose workspace can be allocated. Throws an Error naming `what`
// when there are no candidates or none fits.
template <typename Candidate, typename Run>
void run_first_fitting(const std::vector<Candidate>& candidates, int device,
                       const std::string& what, const Run& run) {
  OMPQ_CHECK(!candidates.empty(), what, ": the library offers no algorithm for this problem");
  size_t smallest = kNoWorkspaceLimit;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const size_t bytes = candidates[i].workspace;
    bool ok = true;
    Tensor workspace = try_allocate_workspace(bytes, device, &ok);
    if (!ok) {
      smallest = std::min(smallest, bytes);
      continue;
    }
    run(candidates[i], bytes == 0 ? nullptr : workspace.data_ptr(), bytes);
    note_workspace_choice(what, static_cast<int64_t>(i), bytes, candidates[0].workspace);
    return;
  }
  throw Error(absl::StrCat(what, ": no algorithm's workspace could be allocated (the smallest ",
                           "needs ", smallest, " bytes)"));
}

}  // namespace ompq::cuda
