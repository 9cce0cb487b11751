#include "solver/train/progress.h"

#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_format.h"

namespace ompq::solver {

std::string format_duration(double seconds) {
  int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return absl::StrFormat("%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
  return absl::StrFormat("%d:%02d", s / 60, s % 60);
}

Progress::Progress(std::string label, int64_t total, int log_interval, std::string unit)
    : label_(std::move(label)),
      total_(total),
      log_interval_(log_interval > 0 ? log_interval : 100),
      unit_(std::move(unit)),
      terminal_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double Progress::items_per_second() const {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return elapsed > 0 ? items_ / elapsed : 0.0;
}

void Progress::update(int64_t step, int64_t items, const std::string& detail) {
  if (first_step_ < 0) first_step_ = step - 1;  // a resumed loop starts past 0
  items_ += items;
  steps_done_ = step - first_step_;
  auto now = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(now - start_).count();
  double per_step = steps_done_ > 0 ? elapsed / steps_done_ : 0.0;
  double eta = per_step * (total_ - step);
  bool last = step >= total_;
  if (terminal_) {
    // Redraw at most 10 times a second: drawing costs more than a small step.
    if (!last && std::chrono::duration<double>(now - last_draw_).count() < 0.1) return;
    last_draw_ = now;
    constexpr int kWidth = 24;
    int filled = total_ > 0 ? static_cast<int>(kWidth * step / total_) : kWidth;
    std::string bar(filled, '=');
    if (filled < kWidth) bar += '>' + std::string(kWidth - filled - 1, ' ');
    std::fprintf(stderr, "\r%s [%s] %lld/%lld  %.0f %s/s  %s  ETA %s\x1b[K", label_.c_str(),
                 bar.c_str(), static_cast<long long>(step), static_cast<long long>(total_),
                 items_per_second(), unit_.c_str(), detail.c_str(), format_duration(eta).c_str());
  } else if (step % log_interval_ == 0 || last) {
    std::fprintf(stderr, "%s step %lld/%lld  %.0f %s/s  %s  ETA %s\n", label_.c_str(),
                 static_cast<long long>(step), static_cast<long long>(total_), items_per_second(),
                 unit_.c_str(), detail.c_str(), format_duration(eta).c_str());
  }
  std::fflush(stderr);
}

void Progress::finish() {
  if (terminal_) std::fprintf(stderr, "\n");
}

}  // namespace ompq::solver
