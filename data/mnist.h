// MNIST and Fashion-MNIST (same IDX layout) from a folder holding the four standard files,
// each plain or gzipped: {train,t10k}-images-idx3-ubyte[.gz], {train,t10k}-labels-idx1-ubyte[.gz].
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "data/dataset.h"

namespace ompq::data {

// Where Debian's dataset-fashion-mnist package installs the files.
inline constexpr char kFashionMnistFolder[] = "/usr/share/datasets/fashion-mnist";
// Pixel statistics of the training images, in [0, 1] units.
inline constexpr float kFashionMnistMean = 0.2860f;
inline constexpr float kFashionMnistStd = 0.3530f;
inline constexpr float kMnistMean = 0.1307f;
inline constexpr float kMnistStd = 0.3081f;

enum class Split { kTrain, kTest };

struct MnistOptions {
  std::string folder = kFashionMnistFolder;
  Split split = Split::kTrain;
  // Pixels go to [0, 1], then (x - mean) / std.
  float mean = kFashionMnistMean;
  float std = kFashionMnistStd;
  // Output side length. Above 28 the image is centred and padded with black (pixel 0, as
  // torchvision's Pad before ToTensor) unless `resize` is set; `resize` scales it bilinearly
  // instead, as torch.nn.functional.interpolate(mode="bilinear", align_corners=False) does.
  int64_t image_size = 28;
  bool resize = false;
  // 1, or 3 to replicate the gray channel for models built for RGB input.
  int64_t channels = 1;
};

// Inputs are f32 [channels, image_size, image_size]; labels 0..9. The images stay in memory as
// bytes (47 MB for the training split) and are converted on each get().
class MnistDataset : public Dataset {
 public:
  // Reads and validates the split's two files; every error names the file or the folder.
  static absl::StatusOr<std::unique_ptr<MnistDataset>> open(const MnistOptions& options);

  int64_t size() const override { return images_.size(0); }
  Shape input_shape() const override;
  int64_t num_classes() const override { return 10; }
  std::string name() const override;

 protected:
  Example load(int64_t index, Generator& rng) const override;

 private:
  MnistDataset(MnistOptions options, Tensor images, Tensor labels);

  MnistOptions options_;
  Tensor images_;  // u8 [N, 28, 28]
  Tensor labels_;  // u8 [N]
};

// Options that shape the 28x28 gray images for a model whose input is `input_shape` [C, S, S]:
// C = 1 or 3 (the gray channel replicated), padded to S up to 32 px (the CIFAR-style models' size)
// and resized beyond (an ImageNet model). An input that cannot be reached is an error naming
// `model_name` and the shape.
absl::StatusOr<MnistOptions> mnist_options_for_input(const Shape& input_shape,
                                                     const std::string& model_name);

}  // namespace ompq::data
