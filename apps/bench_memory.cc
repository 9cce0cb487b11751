#include "apps/bench_memory.h"

#include <fstream>
#include <sstream>
#include <string>

#include "core/error.h"

namespace ompq {
namespace {

// One "Name:   <n> kB" line of /proc/self/status, in bytes.
int64_t status_field_bytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  OMPQ_CHECK(status.good(), "ompq_bench: cannot read /proc/self/status (needs Linux procfs)");
  std::string line;
  while (std::getline(status, line)) {
    if (line.compare(0, field.size() + 1, field + ":") != 0) continue;
    std::istringstream value(line.substr(field.size() + 1));
    int64_t kib = -1;
    std::string unit;
    value >> kib >> unit;
    OMPQ_CHECK(kib >= 0 && unit == "kB", "ompq_bench: /proc/self/status line '", line, "' is not '",
               field, ": <n> kB'");
    return kib * 1024;
  }
  throw_error(__FILE__, __LINE__,
              absl::StrCat("ompq_bench: /proc/self/status has no ", field, " line"));
}

}  // namespace

int64_t reset_peak_resident_bytes() {
  std::ofstream clear_refs("/proc/self/clear_refs");
  clear_refs << "5";
  clear_refs.close();
  OMPQ_CHECK(clear_refs.good(),
             "ompq_bench: writing 5 to /proc/self/clear_refs failed (resets the peak resident "
             "memory; needs Linux >= 4.0)");
  return status_field_bytes("VmRSS");
}

int64_t peak_resident_bytes() { return status_field_bytes("VmHWM"); }

void set_memory_counters(benchmark::State& state, int64_t start_resident_bytes) {
  constexpr double kMiB = 1024.0 * 1024.0;
  state.counters["peak_rss_mib"] = static_cast<double>(peak_resident_bytes()) / kMiB;
  state.counters["start_rss_mib"] = static_cast<double>(start_resident_bytes) / kMiB;
}

}  // namespace ompq
