// Peak resident memory of one benchmark case, for ompq_bench's model benchmarks. getrusage's
// ru_maxrss is the process's maximum since it started, so it cannot tell one case from the one
// before; Linux lets a process reset its own high-water mark instead (writing 5 to
// /proc/self/clear_refs sets VmHWM to the current VmRSS), which is what a case does when it starts.
// Memory an earlier case freed but the allocator kept still counts as resident at the reset, so
// the exact per-case figure comes from running one case per process (--benchmark_filter), as
// scripts/bench_torch_models.py does.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>

namespace ompq {

// Resets the high-water mark and returns the resident bytes at that moment (VmRSS).
int64_t reset_peak_resident_bytes();

// Resident bytes at their highest since the last reset (VmHWM).
int64_t peak_resident_bytes();

// Adds the counters peak_rss_mib (VmHWM since the case's reset) and start_rss_mib (VmRSS at
// the reset: the process, libraries and anything earlier cases left resident) to a case.
void set_memory_counters(benchmark::State& state, int64_t start_resident_bytes);

}  // namespace ompq
