#include "solver/report/metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/atomic_file.h"
#include "core/error.h"

namespace ompq::solver {
namespace {

// The whole file, or "" when it does not exist.
absl::StatusOr<std::string> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::string();
  std::stringstream contents;
  if (!(contents << in.rdbuf()) && !in.eof()) {
    return absl::DataLossError(absl::StrCat(path, ": cannot read metrics"));
  }
  return contents.str();
}

// The complete lines of `text` (each with its newline), without a last line that lacks one.
absl::string_view complete_lines(absl::string_view text) {
  const size_t end = text.rfind('\n');
  return end == absl::string_view::npos ? absl::string_view() : text.substr(0, end + 1);
}

}  // namespace

absl::StatusOr<MetricsCsv> MetricsCsv::open(const std::string& path,
                                            std::vector<std::string> columns) {
  const std::string header = absl::StrCat(absl::StrJoin(columns, ","), "\n");
  OMPQ_ASSIGN_OR_RETURN(std::string contents, read_all(path));
  const absl::string_view kept = complete_lines(contents);
  if (kept.empty()) {
    OMPQ_RETURN_IF_ERROR(write_file_atomically(path, header));
  } else if (!absl::StartsWith(kept, header)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": existing metrics have columns \"", kept.substr(0, kept.find('\n')),
                     "\", expected \"", header.substr(0, header.size() - 1), "\""));
  } else if (kept.size() != contents.size()) {
    OMPQ_RETURN_IF_ERROR(write_file_atomically(path, kept));
  }
  return MetricsCsv(path, columns.size());
}

absl::Status MetricsCsv::append(const std::vector<std::string>& values) {
  if (values.size() != columns_) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": ", values.size(), " values for ", columns_, " columns"));
  }
  const std::string row = absl::StrCat(absl::StrJoin(values, ","), "\n");
  const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    return absl::DataLossError(
        absl::StrCat(path_, ": cannot open to append metrics: ", std::strerror(error)));
  }
  // A full disk may cut the row short; the next open() drops what was written of it.
  int error = 0;
  for (size_t done = 0; done < row.size() && error == 0;) {
    const ssize_t put = ::write(fd, row.data() + done, row.size() - done);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) error = put < 0 ? errno : ENOSPC;  // a write of 0 bytes: the device is full
    if (put > 0) done += static_cast<size_t>(put);
  }
  if (error == 0 && ::fsync(fd) != 0) error = errno;
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error != 0) {
    return absl::DataLossError(
        absl::StrCat(path_, ": cannot append metrics: ", std::strerror(error)));
  }
  return absl::OkStatus();
}

absl::Status MetricsCsv::remove_rows(
    const std::function<bool(const std::vector<std::string>& row)>& drop) {
  OMPQ_ASSIGN_OR_RETURN(std::string contents, read_all(path_));
  std::vector<absl::string_view> lines =
      absl::StrSplit(complete_lines(contents), '\n', absl::SkipEmpty());
  if (lines.empty()) return absl::OkStatus();
  std::string kept = absl::StrCat(lines[0], "\n");  // the header
  bool changed = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::vector<std::string> cells = absl::StrSplit(lines[i], ',');
    if (cells.size() == columns_ && drop(cells)) {
      changed = true;
    } else {
      absl::StrAppend(&kept, lines[i], "\n");
    }
  }
  return changed ? write_file_atomically(path_, kept) : absl::OkStatus();
}

const std::vector<std::string>& metrics_columns() {
  static const std::vector<std::string> columns = {
      "stage",     "epoch",     "train_loss",        "train_top1",    "test_loss",
      "test_top1", "test_top5", "images_per_second", "epoch_seconds", "data_wait"};
  return columns;
}

absl::StatusOr<std::vector<ReportMetrics>> read_metrics(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  auto number = [](absl::string_view cell) {
    double value = std::numeric_limits<double>::quiet_NaN();
    if (!cell.empty() && !absl::SimpleAtod(cell, &value)) value = std::nan("");
    return value;
  };
  std::vector<ReportMetrics> rows;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<absl::string_view> cells = absl::StrSplit(line, ',');
    if (cells.size() != metrics_columns().size()) {
      return absl::DataLossError(absl::StrCat(path, ": row \"", line, "\" has ", cells.size(),
                                              " cells, expected ", metrics_columns().size()));
    }
    ReportMetrics row;
    row.stage = std::string(cells[0]);
    double epoch = number(cells[1]);
    row.epoch = std::isnan(epoch) ? 0 : static_cast<int64_t>(epoch);
    row.train_loss = number(cells[2]);
    row.train_top1 = number(cells[3]);
    row.test_loss = number(cells[4]);
    row.test_top1 = number(cells[5]);
    row.test_top5 = number(cells[6]);
    rows.push_back(row);
  }
  return rows;
}

}  // namespace ompq::solver
