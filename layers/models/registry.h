// Models by name, as on every command line.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/random.h"
#include "layers/models/model.h"

namespace ompq::nn {

struct ModelSpec {
  std::string name;  // one of model_names()
  int64_t num_classes = 1000;
  // The variant for 28-32 px images (3x3 stride-1 stem, no max-pool; see resnet.h and
  // mobilenet_v2.h); vgg16_bn is the same network, declared for 32 px (vgg.h). resnet20 and
  // fashion_cnn are small-image designs already and ignore it.
  bool small_input = false;
  double width_mult = 1.0;  // channel width multiplier; mobilenet_v2 only
};

// The names make_model() knows.
std::vector<std::string> model_names();
// A freshly initialized model; an unknown name or an option the model does not have is an error.
// `gen` draws the initial weights and, for models with dropout, the masks: it must outlive the
// model.
absl::StatusOr<std::shared_ptr<Model>> make_model(const ModelSpec& spec,
                                                  Generator& gen = default_generator());

// Loads a safetensors file into `model` strictly (every name, shape and dtype must fit, nothing
// extra). A mismatch names the file and `model_name`, and when the file's metadata names another
// model, says so: the usual cause is the wrong model, class count, small-input flag or width.
absl::Status load_model_weights(Model& model, const std::string& path,
                                const std::string& model_name);

}  // namespace ompq::nn
