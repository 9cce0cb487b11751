#include "solver/metrics.h"

#include <fstream>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ompq::solver {

absl::StatusOr<MetricsCsv> MetricsCsv::open(const std::string& path,
                                            std::vector<std::string> columns) {
  std::string header = absl::StrJoin(columns, ",");
  std::ifstream existing(path);
  std::string first_line;
  if (existing && std::getline(existing, first_line) && !first_line.empty()) {
    if (first_line != header) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, ": existing metrics have columns \"", first_line, "\", expected \"", header, "\""));
    }
  } else {
    std::ofstream out(path, std::ios::trunc);
    if (!(out << header << '\n')) {
      return absl::PermissionDeniedError(absl::StrCat(path, ": cannot write metrics"));
    }
  }
  return MetricsCsv(path, columns.size());
}

absl::Status MetricsCsv::append(const std::vector<std::string>& values) {
  if (values.size() != columns_) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", values.size(), " values for ",
                                                   columns_, " columns"));
  }
  std::ofstream out(path_, std::ios::app);
  if (!(out << absl::StrJoin(values, ",") << '\n') || !out.flush()) {
    return absl::DataLossError(absl::StrCat(path_, ": cannot append metrics"));
  }
  return absl::OkStatus();
}

}  // namespace ompq::solver
