#include "solver/search/search_enums.h"

#include "absl/strings/str_cat.h"
#include "core/error.h"
#include "solver/config/config_enums.h"

namespace ompq::solver {

QuantMode quant_mode(proto::Quant quant) {
  OMPQ_CHECK(quant == proto::QUANT_QAT || quant == proto::QUANT_PTQ, "quant_mode: quant ",
             enum_name(quant), " has no quantization mode");
  return quant == proto::QUANT_QAT ? QuantMode::kQat : QuantMode::kPtq;
}

proto::Quant to_proto(QuantMode mode) {
  return mode == QuantMode::kQat ? proto::QUANT_QAT : proto::QUANT_PTQ;
}

absl::StatusOr<SolverKind> solver_kind(proto::Solver solver) {
  switch (solver) {
    case proto::SOLVER_LP:
      return SolverKind::kLp;
    case proto::SOLVER_ILP:
      return SolverKind::kIlp;
    case proto::SOLVER_PROJECTION:
      return SolverKind::kProjection;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "solver ", enum_name(solver),
          " (expected lp, ilp or projection; the baselines are bit configs of ompq_search "
          "--allocation)"));
  }
}

proto::Solver to_proto(SolverKind solver) {
  switch (solver) {
    case SolverKind::kLp:
      return proto::SOLVER_LP;
    case SolverKind::kIlp:
      return proto::SOLVER_ILP;
    case SolverKind::kProjection:
      return proto::SOLVER_PROJECTION;
  }
  OMPQ_CHECK(false, "to_proto: unknown SolverKind");
  return proto::SOLVER_LP;
}

Rounding rounding_kind(proto::Rounding rounding, const std::string& model_name) {
  switch (rounding) {
    case proto::ROUNDING_DFS:
      return Rounding::kDfs;
    case proto::ROUNDING_NEAREST:
      return Rounding::kHalfToEven;
    default:
      return reference_rounding(model_name);
  }
}

proto::Rounding to_proto(Rounding rounding) {
  return rounding == Rounding::kDfs ? proto::ROUNDING_DFS : proto::ROUNDING_NEAREST;
}

}  // namespace ompq::solver
