// Threading for our own CPU loops. OpenMP, the runtime oneDNN uses, so that both share one pool and
// never oversubscribe the cores. Work is split into fixed chunks that depend only on the range and
// the grain, never on timing, so that results are deterministic for a fixed thread count.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace ompq {

inline int num_threads() { return omp_get_max_threads(); }
inline void set_num_threads(int n) { omp_set_num_threads(std::max(n, 1)); }

// Calls fn(begin, end) on disjoint sub-ranges of [begin, end) of at least `grain` items each.
template <typename Fn>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const Fn& fn) {
  int64_t n = end - begin;
  if (n <= 0) return;
  int64_t max_chunks = std::max<int64_t>(1, n / std::max<int64_t>(grain, 1));
  int threads = static_cast<int>(std::min<int64_t>(num_threads(), max_chunks));
  if (threads <= 1 || omp_in_parallel()) {
    fn(begin, end);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num();
    int64_t chunk = (n + threads - 1) / threads;
    int64_t lo = begin + t * chunk;
    int64_t hi = std::min(end, lo + chunk);
    if (lo < hi) fn(lo, hi);
  }
}

}  // namespace ompq
