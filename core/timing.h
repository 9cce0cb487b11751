// Elapsed wall time for the timings that runs report (stage seconds, search and PTQ phases), on
// the monotonic clock so that a clock adjustment never makes a duration negative.
#pragma once

#include <chrono>

namespace ompq {

// Seconds since `start`, a std::chrono::steady_clock::now() taken earlier.
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace ompq
