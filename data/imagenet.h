// ImageNet (or any image classification set) on disk, in torchvision's ImageFolder layout:
//
//   root/train/<wnid>/*.JPEG        root/val/<wnid>/*.JPEG
//
// Classes are the split folder's sub-folders in sorted (byte) order: class index = position, as
// torchvision's ImageFolder numbers them. Each class folder is searched recursively; images are
// the files whose extension is .jpeg, .jpg or .png in any letter case (other files are ignored,
// as ImageFolder ignores what it cannot read), taken in sorted path order within a class.
//
// The flat validation layout of the ILSVRC2012 archive is read with a label file:
//
//   root/val/ILSVRC2012_val_00000001.JPEG ...    + label file, one line per image:
//   ILSVRC2012_val_00000001.JPEG n01751748       <file> <wnid>
//   ILSVRC2012_val_00000002.JPEG 970             <file> <class index>
//
// <file> is the image's path relative to the split folder; fields are separated by spaces or
// tabs; blank lines are skipped; a file uses wnids or indices throughout, not both. Classes come
// from root/train's class folders when that folder exists (so that train and val agree);
// otherwise they are the label file's distinct wnids in sorted order, or, for indices, 0 up to
// the largest index (indices are below 1,000,000). Every image of the split folder must have
// exactly one line, and every line must name an image there and a known class.
//
// An unreadable image (corrupt, truncated, not JPEG/PNG, vanished) is skipped by default: the
// example is replaced by the next readable image in index order (index + 1, + 2, ... wrapping
// around), loaded with the same sample seed, so that batches keep their size and an example stays
// a pure function of (index, sample_seed). Each unreadable file is counted once and named in one
// line on stderr. With `strict`, the first unreadable image is an Error naming the file.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "data/transforms.h"

namespace ompq::data {

struct ImageFolderOptions {
  std::string root;
  std::string split = "train";  // the folder under root
  // Set for the flat layout: the labels of the split folder's images (format above).
  std::string label_file;
  ImageTransformOptions transform;
  bool strict = false;  // an unreadable image throws instead of being skipped
};

// The torchvision ImageNet recipe for `split`: RandomResizedCrop(224) + flip for "train",
// Resize(256) + CenterCrop(224) for any other split.
ImageFolderOptions imagenet_options(const std::string& root, const std::string& split,
                                    const std::string& label_file = "");

// Inputs are f32 [3, size, size] normalized as the transform says; labels are class indices.
class ImageFolderDataset : public Dataset {
 public:
  // Lists the split (not reading any image). Errors, one clear message each: root or split
  // folder missing, an empty class folder, no images at all, images but no class folders and
  // no label file, a malformed label file, a label line naming an unknown file or class, an
  // image without a label line, invalid transform options.
  static absl::StatusOr<std::unique_ptr<ImageFolderDataset>> open(
      const ImageFolderOptions& options);

  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  Shape input_shape() const override;
  int64_t num_classes() const override { return static_cast<int64_t>(classes_.size()); }
  std::string name() const override;

  // Class names (wnids; for index labels without a train folder, the indices as text).
  const std::vector<std::string>& classes() const { return classes_; }
  // Full path and class index of example `index`.
  std::string path(int64_t index) const;
  int64_t label(int64_t index) const { return labels_.at(index); }
  // Distinct unreadable images met so far.
  int64_t skipped_images() const;

 protected:
  Example load(int64_t index, Generator& rng) const override;

 private:
  ImageFolderDataset(ImageFolderOptions options, std::string split_dir,
                     std::vector<std::string> classes, std::string names,
                     std::vector<uint64_t> name_ends, std::vector<int32_t> labels);
  // The transformed image of `index`, or why it could not be read.
  absl::StatusOr<Tensor> read(int64_t index, uint64_t sample_seed) const;
  void note_unreadable(int64_t index, const absl::Status& why) const;

  ImageFolderOptions options_;
  std::string split_dir_;
  std::vector<std::string> classes_;
  // Image paths relative to split_dir_, concatenated (ImageNet's train split has 1.28M of
  // them): example i's is names_[name_ends_[i - 1], name_ends_[i]).
  std::string names_;
  std::vector<uint64_t> name_ends_;
  std::vector<int32_t> labels_;

  mutable std::mutex unreadable_mu_;
  mutable std::set<int64_t> unreadable_;
};

}  // namespace ompq::data
