// The lp_solve wrapper on textbook programs (solved by hand), an infeasible one and malformed
// ones.
#include "solver/search/linear_program.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"

namespace ompq::solver {
namespace {

using ::testing::HasSubstr;

// maximize x + y  s.t.  x + 2y <= 4,  3x + y <= 6,  0 <= x, y <= 10.
LinearProgram two_constraints() {
  LinearProgram p;
  p.objective = {1, 1};
  p.rows = {{1, 2}, {3, 1}};
  p.rhs = {4, 6};
  p.lower = {0, 0};
  p.upper = {10, 10};
  return p;
}

TEST(LinearProgram, ContinuousOptimumIsTheVertex) {
  absl::StatusOr<std::vector<double>> x = solve_linear_program(two_constraints());
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_NEAR((*x)[0], 1.6, 1e-9);
  EXPECT_NEAR((*x)[1], 1.2, 1e-9);
}

TEST(LinearProgram, IntegerOptimum) {
  LinearProgram p = two_constraints();
  p.integer = true;
  p.objective = {1, 1.1};  // unique integer optimum (0, 2): 2.2 beats (1, 1) = 2.1 and (2, 0) = 2
  absl::StatusOr<std::vector<double>> x = solve_linear_program(p);
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_NEAR((*x)[0], 0.0, 1e-9);
  EXPECT_NEAR((*x)[1], 2.0, 1e-9);
}

TEST(LinearProgram, InfeasibleAndMalformedPrograms) {
  LinearProgram p = two_constraints();
  p.lower = {5, 0};  // x >= 5 contradicts x + 2y <= 4
  absl::StatusOr<std::vector<double>> x = solve_linear_program(p);
  ASSERT_FALSE(x.ok());
  EXPECT_THAT(std::string(x.status().message()), HasSubstr("INFEASIBLE"));
  EXPECT_THAT(std::string(x.status().message()), HasSubstr("program of 2 variables and 2"));
  LinearProgram bad = two_constraints();
  bad.rows[1] = {1};
  EXPECT_THAT([&] { (void)solve_linear_program(bad); },
              ::testing::ThrowsMessage<Error>(HasSubstr("constraint row 1 has 1 coefficients")));
  bad = two_constraints();
  bad.upper = {1};
  EXPECT_THAT([&] { (void)solve_linear_program(bad); },
              ::testing::ThrowsMessage<Error>(HasSubstr("2 variables but 2 lower and 1 upper")));
}

}  // namespace
}  // namespace ompq::solver
