#include "data/catalog.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "data/imagenet.h"
#include "data/mnist.h"
#include "data/subset.h"

namespace ompq::data {
namespace {

struct KindName {
  DatasetKind kind;
  const char* name;
};
constexpr KindName kKindNames[] = {{DatasetKind::kFashionMnist, "fashion_mnist"},
                                   {DatasetKind::kMnist, "mnist"},
                                   {DatasetKind::kImageNet, "imagenet"}};

absl::StatusOr<std::shared_ptr<const Dataset>> open_idx(const DatasetRequest& request) {
  OMPQ_ASSIGN_OR_RETURN(MnistOptions options,
                        mnist_options_for_input(request.input, request.model));
  if (request.kind == DatasetKind::kMnist) {
    if (request.dir.empty()) return absl::InvalidArgumentError("mnist needs a data folder");
    options.mean = kMnistMean;
    options.std = kMnistStd;
  }
  if (!request.dir.empty()) options.folder = request.dir;
  options.split = request.use == DatasetUse::kEval ? Split::kTest : Split::kTrain;
  OMPQ_ASSIGN_OR_RETURN(std::unique_ptr<MnistDataset> dataset, MnistDataset::open(options));
  return std::shared_ptr<const Dataset>(std::move(dataset));
}

absl::StatusOr<std::shared_ptr<const Dataset>> open_image_folder(const DatasetRequest& request) {
  if (request.dir.empty()) {
    return absl::InvalidArgumentError(
        "imagenet needs a data folder (the one holding train/ and val/)");
  }
  const Shape& input = request.input;
  if (input.size() != 3 || input[0] != 3 || input[1] != input[2]) {
    return absl::InvalidArgumentError(absl::StrCat(request.model, " takes input ", shape_str(input),
                                                   ", ImageNet images are [3, S, S]"));
  }
  const bool eval = request.use == DatasetUse::kEval;
  ImageFolderOptions options =
      imagenet_options(request.dir, eval ? "val" : "train", eval ? request.val_labels : "");
  options.transform.size = input[1];
  options.transform.resize = input[1] * 256 / 224;  // torchvision's 256 -> 224 ratio
  if (request.use == DatasetUse::kSearch) {
    // The reference's DALI search reader; its crop makes up to 100 attempts where torchvision's,
    // used here, makes 10 before falling back to a centre crop.
    options.transform.crop.scale_min = 0.1;
    options.transform.crop.ratio_min = 0.8;
    options.transform.crop.ratio_max = 1.25;
  }
  if (!request.augment) {
    options.transform.mode = ImageTransformMode::kEval;
    options.transform.resize = input[1];
  }
  options.strict = request.strict_images;
  OMPQ_ASSIGN_OR_RETURN(std::unique_ptr<ImageFolderDataset> dataset,
                        ImageFolderDataset::open(options));
  return std::shared_ptr<const Dataset>(std::move(dataset));
}

// The image folder behind `dataset` (through the Subset of a limit), or null.
const ImageFolderDataset* image_folder(const Dataset& dataset) {
  if (const auto* subset = dynamic_cast<const Subset*>(&dataset)) {
    return image_folder(subset->base());
  }
  return dynamic_cast<const ImageFolderDataset*>(&dataset);
}

}  // namespace

const char* dataset_kind_name(DatasetKind kind) {
  for (const KindName& entry : kKindNames) {
    if (kind == entry.kind) return entry.name;
  }
  return "unknown";
}

absl::StatusOr<std::shared_ptr<const Dataset>> open_dataset(const DatasetRequest& request) {
  return request.kind == DatasetKind::kImageNet ? open_image_folder(request) : open_idx(request);
}

absl::Status check_same_classes(const Dataset& train, const Dataset& eval) {
  const ImageFolderDataset* train_folder = image_folder(train);
  const ImageFolderDataset* eval_folder = image_folder(eval);
  if (train_folder == nullptr || eval_folder == nullptr) {
    if (train.num_classes() == eval.num_classes()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(train.name(), " has ", train.num_classes(),
                                                   " classes but ", eval.name(), " has ",
                                                   eval.num_classes()));
  }
  const std::vector<std::string>& a = train_folder->classes();
  const std::vector<std::string>& b = eval_folder->classes();
  if (a == b) return absl::OkStatus();
  const auto [in_a, in_b] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  std::string difference;
  if (in_a == a.end()) {
    difference = absl::StrCat("class '", *in_b, "' is only in the second");
  } else if (in_b == b.end() || *in_a < *in_b) {
    difference = absl::StrCat("class '", *in_a, "' is only in the first");
  } else {
    difference = absl::StrCat("class '", *in_b, "' is only in the second");
  }
  return absl::InvalidArgumentError(
      absl::StrCat("the classes of ", train.name(), " and ", eval.name(), " differ: ", difference));
}

int64_t skipped_images(const Dataset& dataset) {
  const ImageFolderDataset* folder = image_folder(dataset);
  return folder != nullptr ? folder->skipped_images() : 0;
}

}  // namespace ompq::data
