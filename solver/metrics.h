// metrics.csv: one row per evaluation, appended as a run goes, so that a killed run keeps the rows
// it wrote and a resumed run continues the same file.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ompq::solver {

class MetricsCsv {
 public:
  // Opens `path` for appending; writes the header when the file is new or empty, and fails when an
  // existing file has a different header.
  static absl::StatusOr<MetricsCsv> open(const std::string& path, std::vector<std::string> columns);
  // One value per column; flushed at once.
  absl::Status append(const std::vector<std::string>& values);

 private:
  MetricsCsv(std::string path, size_t columns) : path_(std::move(path)), columns_(columns) {}
  std::string path_;
  size_t columns_;
};

}  // namespace ompq::solver
