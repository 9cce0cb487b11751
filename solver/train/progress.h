// Progress of a long loop. On a terminal: one line redrawn in place with a bar, rate and ETA; in a
// log file: one line every `log_interval` steps, so logs stay readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace ompq::solver {

class Progress {
 public:
  // `label` prefixes each line ("epoch 1/2"); `total` steps; `unit` names what the rate counts.
  Progress(std::string label, int64_t total, int log_interval, std::string unit = "img");
  // Step `step` (1-based) finished, having processed `items` more items; `detail` is appended
  // (e.g. "loss 0.4123").
  void update(int64_t step, int64_t items, const std::string& detail);
  // Ends the line on a terminal.
  void finish();
  double items_per_second() const;

 private:
  std::string label_;
  int64_t total_;
  int log_interval_;
  std::string unit_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  int64_t items_ = 0;
  int64_t steps_done_ = 0;
  int64_t first_step_ = -1;
};

// "1:05:03" / "4:07".
std::string format_duration(double seconds);

}  // namespace ompq::solver
