#include "core/error.h"

namespace ompq {

void throw_error(const char* file, int line, const std::string& message) {
  (void)file;
  (void)line;
  throw Error(message);
}

void throw_if_error(const absl::Status& status) {
  if (!status.ok()) throw Error(std::string(status.message()));
}

}  // namespace ompq
