// The data sets the apps open by name, shaped for a model's input and transformed for what the
// examples are used for:
//
//   fashion_mnist, mnist   IDX files (data/mnist.h), ten classes; each image is padded (up to
//                          32 px) or resized to the model's side and replicated to its channels.
//                          Every use reads the images as they are (no augmentation).
//   imagenet               an ImageFolder tree (data/imagenet.h) with train/ and val/; as many
//                          classes as train/ has class folders.
//                            training: train/, RandomResizedCrop (area [0.08, 1], aspect ratio
//                                      [3/4, 4/3]) + horizontal flip, torchvision's recipe;
//                            search:   train/, RandomResizedCrop with area [0.1, 1] and aspect
//                                      ratio [0.8, 1.25] + flip, the crop of the reference's
//                                      search reader;
//                            eval:     val/, Resize(side * 256 / 224) + CenterCrop(side);
//                          without augmentation, every use reads Resize(side) + CenterCrop(side)
//                          (a square image scaled whole).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/shape.h"
#include "data/dataset.h"

namespace ompq::data {

enum class DatasetKind { kFashionMnist, kMnist, kImageNet };
enum class DatasetUse { kTraining, kSearch, kEval };

// "fashion_mnist", "mnist" or "imagenet", as bit configs record the search data.
const char* dataset_kind_name(DatasetKind kind);

struct DatasetRequest {
  DatasetKind kind = DatasetKind::kFashionMnist;
  // IDX: the folder of the four files (empty: Debian's Fashion-MNIST; MNIST needs one).
  // ImageNet: the folder holding train/ and val/.
  std::string dir;
  // ImageNet: the label file of a flat val/ folder (data/imagenet.h); empty: class folders.
  std::string val_labels;
  // The model's input, [C, S, S], and its name for error messages.
  Shape input;
  std::string model;
  DatasetUse use = DatasetUse::kTraining;
  // ImageNet: an unreadable image is an error instead of being skipped.
  bool strict_images = false;
  // ImageNet: false reads every image of every use scaled whole to the side (Resize(side) +
  // CenterCrop(side)), without random crops or flips.
  bool augment = true;
};

// Opens the split `use` reads. Errors name the folder or file and what was expected: a missing
// folder or split, an empty class folder, a model input the data cannot be shaped into.
absl::StatusOr<std::shared_ptr<const Dataset>> open_dataset(const DatasetRequest& request);

// ImageNet: the class names of both splits must agree (train/ defines the classes; a val/ with
// class folders must have the same ones). InvalidArgument naming the first difference. A limit's
// Subset is seen through: its whole folder is compared.
absl::Status check_same_classes(const Dataset& train, const Dataset& eval);

// Unreadable images skipped so far by an ImageNet dataset, or the one under a limit's Subset (0
// for other datasets).
int64_t skipped_images(const Dataset& dataset);

}  // namespace ompq::data
