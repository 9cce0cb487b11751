#include "layers/models/registry.h"

#include <cmath>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "layers/models/fashion_cnn.h"
#include "layers/models/mobilenet_v2.h"
#include "layers/models/resnet.h"
#include "layers/models/vgg.h"

namespace ompq::nn {
namespace {

struct Entry {
  const char* name;
  bool has_width_mult;
  std::function<std::shared_ptr<Model>(const ModelSpec&, Generator&)> make;
};

const std::vector<Entry>& registry() {
  static const std::vector<Entry> entries = {
      {"resnet18", false,
       [](const ModelSpec& s, Generator& g) { return resnet18(s.num_classes, s.small_input, g); }},
      {"resnet34", false,
       [](const ModelSpec& s, Generator& g) { return resnet34(s.num_classes, s.small_input, g); }},
      {"resnet50", false,
       [](const ModelSpec& s, Generator& g) { return resnet50(s.num_classes, s.small_input, g); }},
      {"resnet101", false,
       [](const ModelSpec& s, Generator& g) { return resnet101(s.num_classes, s.small_input, g); }},
      {"mobilenet_v2", true,
       [](const ModelSpec& s, Generator& g) {
         MobileNetV2Options options;
         options.num_classes = s.num_classes;
         options.width_mult = s.width_mult;
         options.small_input = s.small_input;
         return std::make_shared<MobileNetV2>(options, g);
       }},
      {"vgg16_bn", false,
       [](const ModelSpec& s, Generator& g) { return vgg16_bn(s.num_classes, s.small_input, g); }},
      {"resnet20", false,
       [](const ModelSpec& s, Generator& g) { return resnet20(s.num_classes, g); }},
      {"fashion_cnn", false,
       [](const ModelSpec& s, Generator& g) {
         return std::make_shared<FashionCnn>(s.num_classes, g);
       }},
  };
  return entries;
}

}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const Entry& e : registry()) names.push_back(e.name);
  return names;
}

absl::StatusOr<std::shared_ptr<Model>> make_model(const ModelSpec& spec, Generator& gen) {
  if (spec.num_classes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_classes must be positive, got ", spec.num_classes));
  }
  if (!(std::isfinite(spec.width_mult) && spec.width_mult > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("width_mult must be positive, got ", spec.width_mult));
  }
  for (const Entry& e : registry()) {
    if (spec.name != e.name) continue;
    if (!e.has_width_mult && spec.width_mult != 1.0) {
      return absl::InvalidArgumentError(absl::StrCat("width_mult ", spec.width_mult, " given for ",
                                                     spec.name, ", which has no width multiplier"));
    }
    return e.make(spec, gen);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown model \"", spec.name, "\" (known: ", absl::StrJoin(model_names(), ", "), ")"));
}

absl::Status load_model_weights(Model& model, const std::string& path,
                                const std::string& model_name) {
  OMPQ_ASSIGN_OR_RETURN(SafetensorsContents weights, load_safetensors(path));
  // The classifier is the model's last matrix parameter; a file for another class count is the
  // most common mismatch, so it gets a message of its own with both numbers.
  std::pair<std::string, Tensor> classifier;
  for (const auto& [name, parameter] : model.named_parameters()) {
    if (parameter.dim() == 2) classifier = {name, parameter};
  }
  auto in_file = weights.tensors.find(classifier.first);
  if (classifier.second.defined() && in_file != weights.tensors.end() &&
      in_file->second.dim() == 2 && in_file->second.size(0) != classifier.second.size(0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " holds a classifier for ", in_file->second.size(0), " classes (",
                     classifier.first, " ", shape_str(in_file->second.shape()), "), but the ",
                     model_name, " being loaded has ", classifier.second.size(0)));
  }
  absl::Status loaded = model.load_state_dict(weights.tensors, /*strict=*/true);
  if (loaded.ok()) return loaded;
  std::string hint = "check the model name, num_classes, small_input and width_mult";
  auto it = weights.metadata.find("model");
  if (it != weights.metadata.end() && it->second != model_name) {
    hint = absl::StrCat("the file's metadata says model \"", it->second, "\"; ", hint);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path, " does not fit model ", model_name, " (", hint, "): ", loaded.message()));
}

}  // namespace ompq::nn
