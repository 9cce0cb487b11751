// Linear and integer linear programs, solved by lp_solve 5.5. This header is free of lp_solve:
// linear_program.cc is the only file of the project that includes lp_lib.h, whose macros (TRUE,
// FALSE, LE, MIN, MAX, ...) break Abseil and the standard library.
#pragma once

#include <vector>

#include "absl/status/statusor.h"

namespace ompq::solver {

// maximize  objective . x
// subject to  rows[r] . x <= rhs[r]   for every r
//             lower <= x <= upper,    x integer when `integer`
struct LinearProgram {
  std::vector<double> objective;
  std::vector<std::vector<double>> rows;
  std::vector<double> rhs;
  std::vector<double> lower, upper;
  bool integer = false;
};

// The optimal x. An infeasible program, or lp_solve giving up, is an error naming lp_solve's
// status.
absl::StatusOr<std::vector<double>> solve_linear_program(const LinearProgram& program);

}  // namespace ompq::solver
