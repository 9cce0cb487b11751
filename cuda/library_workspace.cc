#include "cuda/library_workspace.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace ompq::cuda {
namespace {

std::atomic<size_t> g_limit{kNoWorkspaceLimit};
std::mutex g_stats_mu;
WorkspaceStats g_stats;

}  // namespace

void set_workspace_limit(size_t bytes) { g_limit = bytes; }

size_t workspace_limit() { return g_limit; }

WorkspaceStats workspace_stats() {
  std::lock_guard<std::mutex> lock(g_stats_mu);
  return g_stats;
}

Tensor try_allocate_workspace(size_t bytes, int device, bool* ok) {
  *ok = true;
  if (bytes == 0) return Tensor();
  if (bytes > g_limit) {
    *ok = false;
    return Tensor();
  }
  try {
    return Tensor::empty({static_cast<int64_t>(bytes)}, DType::kU8, Device::cuda(device));
  } catch (const Error&) {  // out of memory even after the allocator released its cache
    *ok = false;
    return Tensor();
  }
}

void note_workspace_choice(const std::string& what, int64_t index, size_t bytes,
                           size_t skipped_bytes) {
  bool report = false;
  {
    std::lock_guard<std::mutex> lock(g_stats_mu);
    g_stats.last_bytes = bytes;
    g_stats.last_candidate = index;
    if (index > 0) report = g_stats.fallbacks++ == 0;
  }
  if (report) {
    std::fprintf(stderr,
                 "ompq: %s: could not allocate the %zu-byte workspace of the preferred algorithm; "
                 "running candidate %lld, which needs %zu bytes (reported once per process)\n",
                 what.c_str(), skipped_bytes, static_cast<long long>(index), bytes);
  }
}

}  // namespace ompq::cuda
