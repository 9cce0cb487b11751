// metrics.csv: one row per evaluation, appended as a run goes, so that a killed run keeps the rows
// it wrote and a resumed run continues the same file. A kill can leave a row half written (the
// next open drops it) or rows that the resumed run writes again (remove_rows() drops them first).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "solver/report/report.h"

namespace ompq::solver {

class MetricsCsv {
 public:
  // Opens `path` for appending; writes the header when the file is new or empty, drops a last row
  // without its newline (cut short by a crash), and fails when an existing file has a different
  // header.
  static absl::StatusOr<MetricsCsv> open(const std::string& path, std::vector<std::string> columns);
  // One value per column (none may hold a comma or newline); on disk when it returns. An error
  // names the file and the system's reason.
  absl::Status append(const std::vector<std::string>& values);
  // Rewrites the file (atomically) without the rows for which `drop` is true; `drop` sees each
  // row's cells in column order.
  absl::Status remove_rows(const std::function<bool(const std::vector<std::string>& row)>& drop);

 private:
  MetricsCsv(std::string path, size_t columns) : path_(std::move(path)), columns_(columns) {}
  std::string path_;
  size_t columns_;
};

// The columns of an experiment's metrics.csv, in order.
const std::vector<std::string>& metrics_columns();

// An experiment's metrics.csv rows back as report rows (empty cells: NaN); a row with another
// number of cells is a DataLoss error naming the file and the row.
absl::StatusOr<std::vector<ReportMetrics>> read_metrics(const std::string& path);

}  // namespace ompq::solver
