// The search's own enums (quantization mode, solver, rounding) to and from their config protos.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "core/proto/ompq.pb.h"
#include "solver/search/bit_allocation.h"
#include "solver/space/search_space.h"

namespace ompq::solver {

// QUANT_QAT or QUANT_PTQ; QUANT_NONE has no quantization mode (the caller's error: ompq::Error).
QuantMode quant_mode(proto::Quant quant);
proto::Quant to_proto(QuantMode mode);
// lp, ilp or projection; a baseline (uniform, random) is an InvalidArgument error: it is no solver
// of the search.
absl::StatusOr<SolverKind> solver_kind(proto::Solver solver);
proto::Solver to_proto(SolverKind solver);
// ROUNDING_UNSPECIFIED is the reference's choice for `model_name` (reference_rounding).
Rounding rounding_kind(proto::Rounding rounding, const std::string& model_name);
proto::Rounding to_proto(Rounding rounding);

}  // namespace ompq::solver
