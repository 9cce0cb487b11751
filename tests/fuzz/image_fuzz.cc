// JPEG / PNG bytes through the ImageNet input path (data/transforms.h): the header probe, the
// decoder (libjpeg-turbo or libpng, with and without DCT scaling) and both transforms, as
// ImageFolderDataset reads an image file. An image that decodes must come out of the transform
// as the f32 [3, size, size] it promises.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "data/jpeg.h"
#include "data/transforms.h"

namespace {

// Small outputs keep each run fast; the geometry (crop, scaling, resampling) is the same code.
ompq::data::ImageTransformOptions transform_options(ompq::data::ImageTransformMode mode) {
  ompq::data::ImageTransformOptions options;
  options.mode = mode;
  options.size = 8;
  options.resize = 10;
  return options;
}

void check_transform(std::string_view bytes, ompq::data::ImageTransformMode mode) {
  const ompq::data::ImageTransformOptions options = transform_options(mode);
  ompq::Generator rng(7);
  absl::StatusOr<ompq::Tensor> tensor = ompq::data::transform_image(bytes, options, rng);
  if (!tensor.ok()) return;
  if (tensor->shape() != ompq::Shape{3, options.size, options.size}) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<ompq::data::ImageInfo> info = ompq::data::read_image_info(bytes);
  absl::StatusOr<ompq::data::Image> full = ompq::data::decode_image(bytes);
  if (!info.ok()) return 0;
  if (info->height <= 0 || info->width <= 0) std::abort();
  // A full-size decode yields the size the header announced.
  if (full.ok() && (full->height != info->height || full->width != info->width)) std::abort();
  check_transform(bytes, ompq::data::ImageTransformMode::kTrain);
  check_transform(bytes, ompq::data::ImageTransformMode::kEval);
  return 0;
}
