// The stage record of a pipeline's output folder (stages.pbtxt, proto::PipelineState): which
// stages finished, in pipeline order, with their outputs, so that rerunning the same command skips
// them. A stage counts as finished only while every output it recorded still exists; starting a
// stage forgets it and every stage recorded after it, whose inputs it is about to replace.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "core/proto/ompq.pb.h"

namespace ompq::solver {

class StageLedger {
 public:
  // Reads `dir`/stages.pbtxt when it exists (an empty ledger otherwise). `writes`: false for the
  // processes of a multi-process run that read the folder but leave writing it to one rank.
  static absl::StatusOr<StageLedger> open(const std::string& dir, bool writes = true);

  // The record of `name` when that stage finished and its outputs exist, else null.
  const proto::StageRecord* finished(const std::string& name) const;
  // Forgets `name` and the stages after it (written at once).
  absl::Status begin(const std::string& name);
  // Appends the record of a finished (or skipped) stage and writes the ledger.
  absl::Status finish(const proto::StageRecord& record);

  const proto::PipelineState& state() const { return state_; }
  std::string path() const;

 private:
  StageLedger(std::string dir, bool writes) : dir_(std::move(dir)), writes_(writes) {}
  absl::Status write() const;

  std::string dir_;
  bool writes_;
  proto::PipelineState state_;
};

}  // namespace ompq::solver
