// Models by name, as on every command line.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/random.h"
#include "layers/module.h"

namespace ompq::nn {

struct ModelSpec {
  std::string name;
  int64_t num_classes = 10;
};

// The names make_model() knows.
std::vector<std::string> model_names();
// A freshly initialized model; an unknown name is an error listing the known ones.
absl::StatusOr<std::shared_ptr<Module>> make_model(const ModelSpec& spec,
                                                   Generator& gen = default_generator());

}  // namespace ompq::nn
