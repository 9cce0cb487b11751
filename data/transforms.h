// The image transforms of the torchvision ImageNet recipes, fused into one resampling pass from
// the decoded image to the normalized f32 CHW tensor:
//   train: RandomResizedCrop(size, scale, ratio) + RandomHorizontalFlip(p) + ToTensor + Normalize
//   eval:  Resize(resize) (shorter side) + CenterCrop(size) + ToTensor + Normalize
//
// Geometry is torchvision 0.14's exactly (crop sampling with its 10 attempts and centre-crop
// fallback, Python's round-half-to-even, Resize's truncated long side, CenterCrop's rounded
// offsets). Resampling is PIL's BILINEAR filter as torchvision uses it on PIL images: a triangle
// filter widened by the downscale factor (so it antialiases), separable, horizontal pass first,
// clipped to the crop in RandomResizedCrop (torchvision crops, then resizes) and to the whole
// image in Resize + CenterCrop (it resizes, then crops). Differences from PIL, each at most about
// one 8-bit level on natural images: we keep the intermediate in float where PIL rounds it to
// 8 bits and uses 22-bit fixed-point weights; and, with DCT scaling on, the decoder has already
// shrunk the image by 1/2, 1/4 or 1/8 (a frequency-domain downscale), so the remaining bilinear
// step is narrower than PIL's single wide one. Tensor-input torchvision (antialias=False) differs
// more: it does not widen the filter at all.
//
// Random choices come from the Generator that Dataset::load receives, so an example is a pure
// function of (index, sample_seed): the crop's draws first, then the flip's.
#pragma once

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/random.h"
#include "core/tensor.h"
#include "data/jpeg.h"

namespace ompq::data {

// A crop in pixels of the image, as torchvision's get_params returns it.
struct CropBox {
  int64_t top, left, height, width;
};

struct RandomResizedCropOptions {
  double scale_min = 0.08, scale_max = 1.0;             // fraction of the image area
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;  // width / height
};

// torchvision RandomResizedCrop.get_params: up to 10 draws of (area fraction, log aspect ratio),
// the first whose box fits the image being taken at a uniformly drawn position; otherwise the
// whole image cut down to the nearest allowed ratio, centred. Throws Error for an empty image or
// invalid ranges.
CropBox sample_resized_crop(int64_t image_height, int64_t image_width, Generator& rng,
                            const RandomResizedCropOptions& options = {});

// What one resampling pass maps onto its output.
struct ResampleRegion {
  // The area of the source that becomes the output, in source pixels (fractional for a resize
  // followed by a crop); output pixel (y, x) is centred on source point
  // (top + (y + 0.5) * height / out_height, left + (x + 0.5) * width / out_width).
  double top, left, height, width;
  // The source pixels the filter may read: rows [row_begin, row_end), columns [col_begin, col_end).
  int64_t row_begin, row_end, col_begin, col_end;
};

// RandomResizedCrop: crop, then resize, so the filter reads only the crop.
ResampleRegion crop_then_resize_region(const CropBox& box);
// Resize(resize) of the shorter side, then CenterCrop(crop), as torchvision computes both on
// an image_height x image_width image; the filter reads the whole image. Throws Error unless
// crop <= resize.
ResampleRegion resize_then_center_crop_region(int64_t image_height, int64_t image_width,
                                              int64_t resize, int64_t crop);
// The same region on the image scaled from (from_height, from_width) to (to_height, to_width),
// e.g. decoded with DCT scaling.
ResampleRegion scale_region(const ResampleRegion& region, int64_t from_height, int64_t from_width,
                            int64_t to_height, int64_t to_width);

// ToTensor + Normalize: channel c becomes (v / 255 - mean[c]) / std[c].
struct Normalization {
  float mean[3] = {0.485f, 0.456f, 0.406f};  // ImageNet
  float std[3] = {0.229f, 0.224f, 0.225f};
};

// Resamples `region` of `image` to out_height x out_width with PIL's bilinear filter (see the top
// of this file), mirrored left-right when `flip`, normalized, into `out`: f32 CHW, contiguous
// [3, out_height, out_width].
void resample_normalize(const Image& image, const ResampleRegion& region, int64_t out_height,
                        int64_t out_width, bool flip, const Normalization& normalization,
                        float* out);

enum class ImageTransformMode {
  kTrain,  // RandomResizedCrop + RandomHorizontalFlip
  kEval,   // Resize + CenterCrop
};

struct ImageTransformOptions {
  ImageTransformMode mode = ImageTransformMode::kTrain;
  int64_t size = 224;    // output side
  int64_t resize = 256;  // eval: the shorter side before the centre crop
  RandomResizedCropOptions crop;
  double flip_probability = 0.5;
  // Decode JPEGs shrunk by 1/2, 1/4 or 1/8 when the region would still cover at least `size`
  // pixels in each direction (never for regions smaller than the output).
  bool dct_scaling = true;
  Normalization normalization;
};

// InvalidArgument naming the first option out of range.
absl::Status check_transform_options(const ImageTransformOptions& options);

// Decodes `bytes` (JPEG or PNG) and applies the transform: f32 [3, size, size]. Errors are those
// of check_transform_options and decode_image.
absl::StatusOr<Tensor> transform_image(std::string_view bytes, const ImageTransformOptions& options,
                                       Generator& rng);

}  // namespace ompq::data
