#include "solver/search/linear_program.h"

#include <memory>
#include <numeric>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/error.h"

// Last, after every project, Abseil and standard header: its macros must not reach them.
#include "lp_lib.h"

namespace ompq::solver {
namespace {

struct LpDeleter {
  void operator()(lprec* lp) const { delete_lp(lp); }
};

void check_program(const LinearProgram& p) {
  const size_t n = p.objective.size();
  OMPQ_CHECK(n > 0, "solve_linear_program: no variables");
  OMPQ_CHECK(p.lower.size() == n && p.upper.size() == n, "solve_linear_program: ", n,
             " variables but ", p.lower.size(), " lower and ", p.upper.size(), " upper bounds");
  OMPQ_CHECK(p.rows.size() == p.rhs.size(), "solve_linear_program: ", p.rows.size(),
             " constraint rows but ", p.rhs.size(), " right-hand sides");
  for (size_t r = 0; r < p.rows.size(); ++r) {
    OMPQ_CHECK(p.rows[r].size() == n, "solve_linear_program: constraint row ", r, " has ",
               p.rows[r].size(), " coefficients for ", n, " variables");
  }
}

}  // namespace

absl::StatusOr<std::vector<double>> solve_linear_program(const LinearProgram& program) {
  check_program(program);
  const int n = static_cast<int>(program.objective.size());
  std::unique_ptr<lprec, LpDeleter> lp(make_lp(0, n));
  OMPQ_CHECK(lp != nullptr, "solve_linear_program: lp_solve could not allocate a program of ", n,
             " variables");
  set_verbose(lp.get(), NEUTRAL);
  std::vector<int> columns(n);
  std::iota(columns.begin(), columns.end(), 1);  // lp_solve numbers columns from 1
  std::vector<REAL> row(n);
  set_add_rowmode(lp.get(), TRUE);
  row.assign(program.objective.begin(), program.objective.end());
  set_obj_fnex(lp.get(), n, row.data(), columns.data());
  set_maxim(lp.get());
  for (size_t r = 0; r < program.rows.size(); ++r) {
    row.assign(program.rows[r].begin(), program.rows[r].end());
    add_constraintex(lp.get(), n, row.data(), columns.data(), LE, program.rhs[r]);
  }
  set_add_rowmode(lp.get(), FALSE);
  for (int j = 0; j < n; ++j) {
    set_bounds(lp.get(), j + 1, program.lower[j], program.upper[j]);
    if (program.integer) set_int(lp.get(), j + 1, TRUE);
  }
  const int status = solve(lp.get());
  if (status != OPTIMAL) {
    return absl::InvalidArgumentError(
        absl::StrCat("lp_solve: ", get_statustext(lp.get(), status), " (status ", status,
                     ") for a ", program.integer ? "integer " : "", "program of ", n,
                     " variables and ", program.rows.size(), " constraints"));
  }
  std::vector<REAL> x(n);
  get_variables(lp.get(), x.data());
  return std::vector<double>(x.begin(), x.end());
}

}  // namespace ompq::solver
