// The shared tail of every app's main(): initialize the runtime, run the app, and turn any failure
// (a Status or an exception) into one "NAME: error: ..." line on stderr and exit status 1.
#pragma once

#include <cstdio>
#include <exception>
#include <string>

#include "absl/status/status.h"
#include "runtime/init.h"

namespace ompq {

inline int run_app(const char* name, absl::Status (*run)()) {
  std::string error;
  try {
    init();
    absl::Status status = run();
    if (status.ok()) return 0;
    error = std::string(status.message());
  } catch (const std::exception& e) {
    error = e.what();
  }
  std::fprintf(stderr, "%s: error: %s\n", name, error.c_str());
  return 1;
}

}  // namespace ompq
