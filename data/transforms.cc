#include "data/transforms.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/error.h"
#include "core/philox.h"

namespace ompq::data {
namespace {

// Uniform in [0, 1) with 53 random bits, from two stream positions of `rng`.
double uniform01(Generator& rng) {
  const uint64_t at = rng.advance(2);
  const uint64_t bits =
      (static_cast<uint64_t>(philox_word(rng.seed(), at)) << 32) | philox_word(rng.seed(), at + 1);
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

double uniform(Generator& rng, double low, double high) {
  return low + (high - low) * uniform01(rng);
}

// Uniform in [0, n).
int64_t random_below(Generator& rng, int64_t n) {
  return std::min<int64_t>(static_cast<int64_t>(uniform01(rng) * n), n - 1);
}

// Python's round(): to nearest, ties to even (the default floating-point rounding mode).
int64_t round_half_even(double x) { return static_cast<int64_t>(std::nearbyint(x)); }

// The source taps of each output sample along one axis, as PIL's precompute_coeffs builds them
// for its BILINEAR filter: output o is centred on c = start + (o + 0.5) * scale, scale =
// length / out; the triangle filter is widened by max(scale, 1) and cut to the clip range;
// weights are normalized to sum to 1. Indices are relative to clip_begin while they are
// computed, as PIL computes them on the already cropped image, so that rounding matches.
struct AxisTaps {
  int64_t max_taps = 0;
  std::vector<int64_t> first;  // absolute source index of each output's first tap
  std::vector<int64_t> count;
  std::vector<float> weights;  // [out, max_taps]
};

AxisTaps bilinear_taps(double start, double length, int64_t clip_begin, int64_t clip_end,
                       int64_t out) {
  const double scale = length / static_cast<double>(out);
  const double filter_scale = std::max(scale, 1.0);
  const double support = filter_scale;  // the triangle's half-width is 1 before widening
  const double inverse_filter_scale = 1.0 / filter_scale;
  const int64_t clip_size = clip_end - clip_begin;
  AxisTaps taps;
  taps.max_taps = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  taps.first.resize(out);
  taps.count.resize(out);
  taps.weights.assign(out * taps.max_taps, 0.0f);
  std::vector<double> w(taps.max_taps);
  for (int64_t o = 0; o < out; ++o) {
    const double center = start - static_cast<double>(clip_begin) + (o + 0.5) * scale;
    const int64_t lo = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    const int64_t hi = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), clip_size);
    OMPQ_CHECK(hi > lo, "resample: output ", o, " of ", out, " centred on ", center,
               " reads no source pixel of the ", clip_size, " in range");
    double sum = 0.0;
    for (int64_t k = 0; k < hi - lo; ++k) {
      const double t =
          std::abs((static_cast<double>(lo + k) - center + 0.5) * inverse_filter_scale);
      w[k] = t < 1.0 ? 1.0 - t : 0.0;
      sum += w[k];
    }
    for (int64_t k = 0; k < hi - lo; ++k) {
      taps.weights[o * taps.max_taps + k] = static_cast<float>(sum != 0.0 ? w[k] / sum : 0.0);
    }
    taps.first[o] = clip_begin + lo;
    taps.count[o] = hi - lo;
  }
  return taps;
}

absl::Status check_crop_options(const RandomResizedCropOptions& o) {
  if (!(o.scale_min >= 0.0 && o.scale_min <= o.scale_max && o.scale_max > 0.0)) {
    return absl::InvalidArgumentError(absl::StrCat("RandomResizedCrop: scale range (", o.scale_min,
                                                   ", ", o.scale_max,
                                                   ") (expected 0 <= min <= max, max > 0)"));
  }
  if (!(o.ratio_min > 0.0 && o.ratio_min <= o.ratio_max)) {
    return absl::InvalidArgumentError(absl::StrCat("RandomResizedCrop: ratio range (", o.ratio_min,
                                                   ", ", o.ratio_max,
                                                   ") (expected 0 < min <= max)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status check_transform_options(const ImageTransformOptions& o) {
  auto invalid = [](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat("image transform: ", parts...));
  };
  if (o.size < 1) return invalid("size ", o.size, " (expected >= 1)");
  if (o.mode == ImageTransformMode::kEval && o.resize < o.size) {
    return invalid("resize ", o.resize, " is below the crop size ", o.size);
  }
  if (!(o.flip_probability >= 0.0 && o.flip_probability <= 1.0)) {
    return invalid("flip probability ", o.flip_probability, " (expected 0..1)");
  }
  OMPQ_RETURN_IF_ERROR(check_crop_options(o.crop));
  for (int ch = 0; ch < 3; ++ch) {
    if (!(o.normalization.std[ch] > 0.0f)) {
      return invalid("std[", ch, "] = ", o.normalization.std[ch], " (expected > 0)");
    }
  }
  return absl::OkStatus();
}

CropBox sample_resized_crop(int64_t image_height, int64_t image_width, Generator& rng,
                            const RandomResizedCropOptions& o) {
  OMPQ_CHECK(image_height >= 1 && image_width >= 1, "RandomResizedCrop: image of ", image_height,
             "x", image_width, " pixels");
  throw_if_error(check_crop_options(o));
  const double area = static_cast<double>(image_height) * static_cast<double>(image_width);
  const double log_ratio_min = std::log(o.ratio_min), log_ratio_max = std::log(o.ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * uniform(rng, o.scale_min, o.scale_max);
    const double aspect_ratio = std::exp(uniform(rng, log_ratio_min, log_ratio_max));
    const int64_t width = round_half_even(std::sqrt(target_area * aspect_ratio));
    const int64_t height = round_half_even(std::sqrt(target_area / aspect_ratio));
    if (width > 0 && width <= image_width && height > 0 && height <= image_height) {
      const int64_t top = random_below(rng, image_height - height + 1);
      const int64_t left = random_below(rng, image_width - width + 1);
      return CropBox{top, left, height, width};
    }
  }
  // The whole image, cut to the nearest allowed aspect ratio, centred.
  const double in_ratio = static_cast<double>(image_width) / static_cast<double>(image_height);
  int64_t width = image_width, height = image_height;
  if (in_ratio < o.ratio_min) {
    height = round_half_even(static_cast<double>(width) / o.ratio_min);
  } else if (in_ratio > o.ratio_max) {
    width = round_half_even(static_cast<double>(height) * o.ratio_max);
  }
  return CropBox{(image_height - height) / 2, (image_width - width) / 2, height, width};
}

ResampleRegion crop_then_resize_region(const CropBox& box) {
  return ResampleRegion{static_cast<double>(box.top),
                        static_cast<double>(box.left),
                        static_cast<double>(box.height),
                        static_cast<double>(box.width),
                        box.top,
                        box.top + box.height,
                        box.left,
                        box.left + box.width};
}

ResampleRegion resize_then_center_crop_region(int64_t image_height, int64_t image_width,
                                              int64_t resize, int64_t crop) {
  OMPQ_CHECK(image_height >= 1 && image_width >= 1, "Resize: image of ", image_height, "x",
             image_width, " pixels");
  OMPQ_CHECK(crop >= 1 && crop <= resize, "Resize(", resize, ") + CenterCrop(", crop,
             "): expected 1 <= crop <= resize");
  // torchvision: the shorter side becomes `resize`, the longer int(resize * long / short).
  const int64_t short_side = std::min(image_height, image_width);
  const int64_t long_side = std::max(image_height, image_width);
  const int64_t new_long =
      static_cast<int64_t>(static_cast<double>(resize) * static_cast<double>(long_side) /
                           static_cast<double>(short_side));
  const bool portrait = image_width <= image_height;
  const int64_t new_height = portrait ? new_long : resize;
  const int64_t new_width = portrait ? resize : new_long;
  const int64_t crop_top = round_half_even(static_cast<double>(new_height - crop) / 2.0);
  const int64_t crop_left = round_half_even(static_cast<double>(new_width - crop) / 2.0);
  const double scale_y = static_cast<double>(image_height) / static_cast<double>(new_height);
  const double scale_x = static_cast<double>(image_width) / static_cast<double>(new_width);
  return ResampleRegion{
      crop_top * scale_y, crop_left * scale_x, crop * scale_y, crop * scale_x, 0, image_height, 0,
      image_width};
}

ResampleRegion scale_region(const ResampleRegion& r, int64_t from_height, int64_t from_width,
                            int64_t to_height, int64_t to_width) {
  const double sy = static_cast<double>(to_height) / static_cast<double>(from_height);
  const double sx = static_cast<double>(to_width) / static_cast<double>(from_width);
  auto begin = [](int64_t i, double s) { return static_cast<int64_t>(std::floor(i * s)); };
  auto end = [](int64_t i, double s, int64_t limit) {
    return std::min<int64_t>(static_cast<int64_t>(std::ceil(i * s)), limit);
  };
  return ResampleRegion{r.top * sy,
                        r.left * sx,
                        r.height * sy,
                        r.width * sx,
                        begin(r.row_begin, sy),
                        end(r.row_end, sy, to_height),
                        begin(r.col_begin, sx),
                        end(r.col_end, sx, to_width)};
}

// Two separable passes per output row, vertical first: the vertical pass reads whole contiguous
// source rows (u8 in, f32 out, vectorized) into `row`, f32 [columns the horizontal taps need, 3],
// interleaved RGB as the source; the horizontal pass, the one that gathers, then runs on one
// row of floats in L1 and writes the three CHW planes, normalized and mirrored when flipping.
// PIL filters horizontally first; in exact arithmetic the order does not matter, and in float
// the results differ by rounding only (far below PIL's own 8-bit intermediate).
void resample_normalize(const Image& image, const ResampleRegion& region, int64_t out_height,
                        int64_t out_width, bool flip, const Normalization& normalization,
                        float* out) {
  OMPQ_CHECK(out_height >= 1 && out_width >= 1, "resample: output ", out_height, "x", out_width);
  OMPQ_CHECK(0 <= region.row_begin && region.row_begin < region.row_end &&
                 region.row_end <= image.height && 0 <= region.col_begin &&
                 region.col_begin < region.col_end && region.col_end <= image.width,
             "resample: clip rows [", region.row_begin, ", ", region.row_end, ") x columns [",
             region.col_begin, ", ", region.col_end, ") outside the ", image.height, "x",
             image.width, " image");
  const AxisTaps xt =
      bilinear_taps(region.left, region.width, region.col_begin, region.col_end, out_width);
  const AxisTaps yt =
      bilinear_taps(region.top, region.height, region.row_begin, region.row_end, out_height);
  const int64_t col_first = xt.first[0];
  const int64_t span = (xt.first[out_width - 1] + xt.count[out_width - 1] - col_first) * 3;

  float gain[3], bias[3];
  for (int c = 0; c < 3; ++c) {
    gain[c] = 1.0f / (255.0f * normalization.std[c]);
    bias[c] = -normalization.mean[c] / normalization.std[c];
  }
  const int64_t plane = out_height * out_width;
  std::vector<float> row(span);
  for (int64_t oy = 0; oy < out_height; ++oy) {
    float* __restrict a = row.data();
    std::fill(row.begin(), row.end(), 0.0f);
    const float* wy = yt.weights.data() + oy * yt.max_taps;
    for (int64_t k = 0; k < yt.count[oy]; ++k) {
      const uint8_t* __restrict src = image.row(yt.first[oy] + k) + col_first * 3;
      const float wk = wy[k];
#pragma omp simd
      for (int64_t j = 0; j < span; ++j) a[j] += wk * static_cast<float>(src[j]);
    }
    float* dst = out + oy * out_width;
    for (int64_t ox = 0; ox < out_width; ++ox) {
      const float* p = a + (xt.first[ox] - col_first) * 3;
      const float* wx = xt.weights.data() + ox * xt.max_taps;
      float r = 0.0f, g = 0.0f, b = 0.0f;
      for (int64_t k = 0; k < xt.count[ox]; ++k) {
        r += wx[k] * p[3 * k];
        g += wx[k] * p[3 * k + 1];
        b += wx[k] * p[3 * k + 2];
      }
      const int64_t x = flip ? out_width - 1 - ox : ox;
      dst[x] = r * gain[0] + bias[0];
      dst[plane + x] = g * gain[1] + bias[1];
      dst[2 * plane + x] = b * gain[2] + bias[2];
    }
  }
}

absl::StatusOr<Tensor> transform_image(std::string_view bytes, const ImageTransformOptions& options,
                                       Generator& rng) {
  OMPQ_RETURN_IF_ERROR(check_transform_options(options));
  OMPQ_ASSIGN_OR_RETURN(ImageInfo info, read_image_info(bytes));
  ResampleRegion region;
  bool flip = false;
  if (options.mode == ImageTransformMode::kTrain) {
    region =
        crop_then_resize_region(sample_resized_crop(info.height, info.width, rng, options.crop));
    flip = uniform01(rng) < options.flip_probability;
  } else {
    region = resize_then_center_crop_region(info.height, info.width, options.resize, options.size);
  }
  JpegScale scale;
  if (options.dct_scaling && info.format == ImageFormat::kJpeg) {
    const double size = static_cast<double>(options.size);
    scale = jpeg_scale_at_least(
        std::max(std::min(1.0, size / region.height), std::min(1.0, size / region.width)));
  }
  OMPQ_ASSIGN_OR_RETURN(Image image, decode_image(bytes, scale));
  if (image.height != info.height || image.width != info.width) {
    region = scale_region(region, info.height, info.width, image.height, image.width);
  }
  Tensor out = Tensor::empty({3, options.size, options.size});
  resample_normalize(image, region, options.size, options.size, flip, options.normalization,
                     out.data<float>());
  return out;
}

}  // namespace ompq::data
