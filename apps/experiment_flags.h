// The flags that set proto::ExperimentConfig's fields (--model, --data_dir, --weights, --epochs,
// --ptq_iters, ...), one per field, shared by the apps that run an experiment config: ompq_train
// and ompq_sweep. --config=FILE (a config in protobuf text format) sets fields first; the flags
// given on the command line override them.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "core/proto/ompq.pb.h"

namespace ompq {

// Call before absl::ParseCommandLine: remembers which flags the command line names (this Abseil
// has no public "was it set" query).
void collect_given_flags(int argc, char** argv);

// Whether the command line named --`name` (or --no`name`), any flag of the app.
bool flag_given(const std::string& name);

// The flag defaults, then the fields of --config, then every flag given on the command line. A
// bad enum name or an unreadable --config is an error naming the flag or the file.
absl::StatusOr<proto::ExperimentConfig> resolve_experiment_config();

}  // namespace ompq
