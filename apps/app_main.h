// The shared tail of every app's main(): initialize the runtime, run the app, and turn any failure
// (a Status or an exception) into one "NAME: error: ..." line on stderr and exit status 1.
#pragma once

#include <cstdio>
#include <exception>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "layers/models/registry.h"
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

// The error every app gives when --model is empty, listing the registry's names; OK otherwise.
inline absl::Status check_model_flag(const std::string& name) {
  if (!name.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--model is required (one of: ", absl::StrJoin(nn::model_names(), ", "), ")"));
}

}  // namespace ompq
