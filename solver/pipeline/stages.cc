#include "solver/pipeline/stages.h"

#include <filesystem>

#include "core/error.h"
#include "solver/config/proto_io.h"

namespace ompq::solver {
namespace {

namespace fs = std::filesystem;
constexpr char kLedgerFile[] = "stages.pbtxt";

}  // namespace

absl::StatusOr<StageLedger> StageLedger::open(const std::string& dir, bool writes) {
  StageLedger ledger(dir, writes);
  if (fs::exists(ledger.path()))
    OMPQ_RETURN_IF_ERROR(read_text_proto(ledger.path(), &ledger.state_));
  return ledger;
}

std::string StageLedger::path() const { return (fs::path(dir_) / kLedgerFile).string(); }

const proto::StageRecord* StageLedger::finished(const std::string& name) const {
  for (const proto::StageRecord& record : state_.stage()) {
    if (record.name() != name) continue;
    for (const std::string& output : record.outputs()) {
      if (!fs::exists(fs::path(dir_) / output)) return nullptr;
    }
    return &record;
  }
  return nullptr;
}

absl::Status StageLedger::begin(const std::string& name) {
  auto* stages = state_.mutable_stage();
  for (int i = 0; i < stages->size(); ++i) {
    if (stages->Get(i).name() == name) {
      stages->DeleteSubrange(i, stages->size() - i);
      return write();
    }
  }
  return absl::OkStatus();
}

absl::Status StageLedger::finish(const proto::StageRecord& record) {
  OMPQ_RETURN_IF_ERROR(begin(record.name()));
  *state_.add_stage() = record;
  return write();
}

absl::Status StageLedger::write() const {
  if (!writes_) return absl::OkStatus();
  return write_text_proto(path(), state_);
}

}  // namespace ompq::solver
