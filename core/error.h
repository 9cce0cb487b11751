// Errors. Ops and tensor methods throw ompq::Error for programming errors and bad arguments
// (wrong shape, dtype, device); I/O and user input return absl::Status. An Error's message names
// the op and the offending values so that it can be shown to a user as it is.
#pragma once

#include <stdexcept>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace ompq {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

[[noreturn]] void throw_error(const char* file, int line, const std::string& message);

// Throws an absl::Status that is not ok as an Error (for code paths that cannot return a Status).
void throw_if_error(const absl::Status& status);

}  // namespace ompq

// OMPQ_CHECK(cond, parts...) throws ompq::Error with absl::StrCat(parts...) when cond is false.
#define OMPQ_CHECK(cond, ...)                                                          \
  do {                                                                                 \
    if (!(cond)) ::ompq::throw_error(__FILE__, __LINE__, ::absl::StrCat(__VA_ARGS__)); \
  } while (0)

// Evaluates an expression returning absl::Status and returns it from the enclosing function
// when it is not ok.
#define OMPQ_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::absl::Status _ompq_status = (expr);        \
    if (!_ompq_status.ok()) return _ompq_status; \
  } while (0)

#define OMPQ_CONCAT_INNER(a, b) a##b
#define OMPQ_CONCAT(a, b) OMPQ_CONCAT_INNER(a, b)
// OMPQ_ASSIGN_OR_RETURN(auto x, StatusOrExpr()) unwraps a StatusOr or returns its status.
#define OMPQ_ASSIGN_OR_RETURN(lhs, expr)                                                        \
  auto OMPQ_CONCAT(_ompq_or_, __LINE__) = (expr);                                               \
  if (!OMPQ_CONCAT(_ompq_or_, __LINE__).ok()) return OMPQ_CONCAT(_ompq_or_, __LINE__).status(); \
  lhs = std::move(OMPQ_CONCAT(_ompq_or_, __LINE__)).value()
