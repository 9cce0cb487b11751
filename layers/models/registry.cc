#include "layers/models/registry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "layers/models/fashion_cnn.h"

namespace ompq::nn {

std::vector<std::string> model_names() { return {"fashion_cnn"}; }

absl::StatusOr<std::shared_ptr<Module>> make_model(const ModelSpec& spec, Generator& gen) {
  if (spec.num_classes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_classes must be positive, got ", spec.num_classes));
  }
  if (spec.name == "fashion_cnn") return std::make_shared<FashionCnn>(spec.num_classes, gen);
  return absl::InvalidArgumentError(absl::StrCat("unknown model \"", spec.name, "\" (known: ",
                                                 absl::StrJoin(model_names(), ", "), ")"));
}

}  // namespace ompq::nn
