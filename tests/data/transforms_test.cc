#include "data/transforms.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <tuple>

#include "tests/data/image_files.h"

namespace ompq::data {
namespace {

using testing::encode_jpeg;
using testing::encode_png;
using ::testing::HasSubstr;
using testing::make_pixels;
using testing::pattern_value;
using testing::smooth_value;

template <typename F>
Image make_image(int64_t height, int64_t width, F value) {
  Image image;
  image.height = height;
  image.width = width;
  image.pixels.reset(new uint8_t[height * width * 3]);
  for (int64_t y = 0; y < height; ++y) {
    for (int64_t x = 0; x < width; ++x) {
      for (int c = 0; c < 3; ++c) image.pixels[(y * width + x) * 3 + c] = value(y, x, c);
    }
  }
  return image;
}

// mean 0, std 1/255: outputs in 0..255 pixel units.
Normalization pixel_units() {
  Normalization n;
  for (int c = 0; c < 3; ++c) {
    n.mean[c] = 0.0f;
    n.std[c] = 1.0f / 255.0f;
  }
  return n;
}

// Resampled to [3, h, w] in pixel units.
std::vector<float> resample(const Image& image, const ResampleRegion& region, int64_t h, int64_t w,
                            bool flip = false) {
  std::vector<float> out(3 * h * w);
  resample_normalize(image, region, h, w, flip, pixel_units(), out.data());
  return out;
}

bool same_box(const CropBox& a, const CropBox& b) {
  return std::tie(a.top, a.left, a.height, a.width) == std::tie(b.top, b.left, b.height, b.width);
}

TEST(RandomResizedCropTest, BoxesStayInsideTheImageWithinTheScaleAndRatioRanges) {
  const int64_t height = 375, width = 500;
  double min_fraction = 1.0, max_fraction = 0.0;
  for (uint64_t seed = 0; seed < 500; ++seed) {
    Generator rng(seed);
    const CropBox box = sample_resized_crop(height, width, rng);
    ASSERT_GE(box.top, 0);
    ASSERT_GE(box.left, 0);
    ASSERT_GE(box.height, 1);
    ASSERT_GE(box.width, 1);
    ASSERT_LE(box.top + box.height, height);
    ASSERT_LE(box.left + box.width, width);
    // Up to the rounding of each side to whole pixels (+-0.5 on >= 122 pixels).
    const double fraction = static_cast<double>(box.height * box.width) / (height * width);
    const double ratio = static_cast<double>(box.width) / box.height;
    EXPECT_GE(fraction, 0.08 * 0.99) << seed;
    EXPECT_LE(fraction, 1.0) << seed;
    EXPECT_GE(ratio, 0.75 * 0.99) << seed;
    EXPECT_LE(ratio, 4.0 / 3.0 * 1.01) << seed;
    min_fraction = std::min(min_fraction, fraction);
    max_fraction = std::max(max_fraction, fraction);
  }
  // The draws span the range rather than sitting in one corner of it.
  EXPECT_LT(min_fraction, 0.12);
  EXPECT_GT(max_fraction, 0.85);
}

TEST(RandomResizedCropTest, BoxIsAPureFunctionOfTheSeed) {
  std::set<std::tuple<int64_t, int64_t, int64_t, int64_t>> distinct;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Generator a(seed), b(seed);
    const CropBox box = sample_resized_crop(375, 500, a);
    EXPECT_TRUE(same_box(box, sample_resized_crop(375, 500, b)));
    distinct.insert({box.top, box.left, box.height, box.width});
  }
  EXPECT_GE(distinct.size(), 48u);
}

// With boxes that can never fit, all 10 attempts fail and torchvision's fallback decides:
// the whole image cut to the nearest allowed ratio (rounded half to even, as Python), centred.
TEST(RandomResizedCropTest, FallsBackToACentredCropOfTheNearestAllowedRatio) {
  RandomResizedCropOptions too_wide;
  too_wide.scale_min = too_wide.scale_max = 1.0;
  too_wide.ratio_min = 2.0;
  too_wide.ratio_max = 3.0;
  Generator rng(7);
  EXPECT_TRUE(same_box(sample_resized_crop(100, 100, rng, too_wide), CropBox{25, 0, 50, 100}));
  // 5 / 2 = 2.5 rounds to 2; the top is (100 - 2) // 2.
  EXPECT_TRUE(same_box(sample_resized_crop(100, 5, rng, too_wide), CropBox{49, 0, 2, 5}));

  RandomResizedCropOptions too_tall;
  too_tall.scale_min = too_tall.scale_max = 1.0;
  too_tall.ratio_min = 0.5;
  too_tall.ratio_max = 1.0;
  EXPECT_TRUE(same_box(sample_resized_crop(100, 400, rng, too_tall), CropBox{0, 150, 100, 100}));

  RandomResizedCropOptions impossible_area = too_wide;  // ratio in range: the whole image
  impossible_area.ratio_min = 0.5;
  impossible_area.ratio_max = 2.0;
  impossible_area.scale_min = impossible_area.scale_max = 4.0;
  EXPECT_TRUE(same_box(sample_resized_crop(30, 40, rng, impossible_area), CropBox{0, 0, 30, 40}));
}

TEST(RandomResizedCropTest, RejectsBadRangesAndEmptyImages) {
  Generator rng(0);
  RandomResizedCropOptions o;
  EXPECT_THAT([&] { sample_resized_crop(0, 10, rng); },
              ::testing::ThrowsMessage<Error>(HasSubstr("image of 0x10 pixels")));
  o.scale_min = 0.5;
  o.scale_max = 0.2;
  EXPECT_THAT([&] { sample_resized_crop(10, 10, rng, o); },
              ::testing::ThrowsMessage<Error>(HasSubstr("scale range (0.5, 0.2)")));
  o = RandomResizedCropOptions();
  o.ratio_min = 0.0;
  EXPECT_THAT([&] { sample_resized_crop(10, 10, rng, o); },
              ::testing::ThrowsMessage<Error>(HasSubstr("ratio range (0, 1.33333)")));
}

// torchvision 0.14 on 500x375: Resize(256) -> 341x256 (int(256 * 500 / 375) = 341), CenterCrop
// offsets round((256 - 224) / 2) = 16 and round((341 - 224) / 2) = round(58.5) = 58.
TEST(ResizeCenterCropTest, RegionFollowsTorchvisionsSizesAndOffsets) {
  const ResampleRegion landscape = resize_then_center_crop_region(375, 500, 256, 224);
  EXPECT_DOUBLE_EQ(landscape.top, 16.0 * 375 / 256);
  EXPECT_DOUBLE_EQ(landscape.left, 58.0 * 500 / 341);
  EXPECT_DOUBLE_EQ(landscape.height, 224.0 * 375 / 256);
  EXPECT_DOUBLE_EQ(landscape.width, 224.0 * 500 / 341);
  EXPECT_EQ(landscape.row_begin, 0);  // the filter sees the whole image
  EXPECT_EQ(landscape.row_end, 375);
  EXPECT_EQ(landscape.col_begin, 0);
  EXPECT_EQ(landscape.col_end, 500);

  const ResampleRegion portrait = resize_then_center_crop_region(500, 375, 256, 224);
  EXPECT_DOUBLE_EQ(portrait.top, 58.0 * 500 / 341);
  EXPECT_DOUBLE_EQ(portrait.left, 16.0 * 375 / 256);

  EXPECT_THAT([] { resize_then_center_crop_region(10, 10, 200, 224); },
              ::testing::ThrowsMessage<Error>(HasSubstr("Resize(200) + CenterCrop(224)")));
}

// Golden values from PIL 9.4 / torchvision 0.14 (HWC, 8-bit) on the pattern of
// tests/data/image_files.h; we keep float where PIL rounds, so they agree to within one level.
void expect_matches_pil(const std::vector<float>& chw, int64_t h, int64_t w,
                        const std::vector<int>& hwc_golden) {
  ASSERT_EQ(static_cast<int64_t>(hwc_golden.size()), 3 * h * w);
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      for (int c = 0; c < 3; ++c) {
        EXPECT_NEAR(chw[(c * h + y) * w + x], hwc_golden[(y * w + x) * 3 + c], 1.001)
            << "y " << y << " x " << x << " c " << c;
      }
    }
  }
}

TEST(ResampleTest, MatchesPilBilinearDownscaleUpscaleAndCrop) {
  const Image image = make_image(13, 17, pattern_value);
  // Image.resize((7, 5), BILINEAR): a downscale by 2.4 / 2.6, where the filter widens.
  expect_matches_pil(
      resample(image, crop_then_resize_region({0, 0, 13, 17}), 5, 7), 5, 7,
      {25,  56,  87,  53,  84,  115, 82,  113, 142, 111, 138, 155, 129, 148, 140, 140, 134, 154,
       126, 155, 111, 66,  97,  128, 119, 146, 167, 156, 161, 145, 137, 131, 101, 110, 119, 114,
       130, 117, 130, 123, 127, 120, 113, 143, 165, 157, 150, 104, 95,  90,  105, 119, 136, 146,
       131, 131, 111, 119, 119, 123, 116, 139, 136, 154, 154, 164, 126, 101, 100, 128, 128, 157,
       128, 107, 124, 113, 132, 139, 127, 133, 131, 120, 132, 117, 155, 137, 126, 113, 117, 134,
       131, 114, 113, 113, 136, 110, 98,  127, 109, 113, 137, 110, 125, 106, 129});
  // Image.crop((2, 3, 11, 10)).resize((4, 4), BILINEAR): the filter stops at the crop.
  expect_matches_pil(
      resample(image, crop_then_resize_region({3, 2, 7, 9}), 4, 4), 4, 4,
      {115, 146, 175, 162, 186, 187, 173, 150, 67,  104, 78,  83,  158, 175, 149, 145,
       102, 82,  83,  90,  110, 112, 143, 148, 172, 167, 93,  78,  86,  103, 132, 150,
       172, 132, 153, 102, 143, 79,  65,  107, 127, 157, 160, 107, 137, 90,  100, 125});
  // 5x4 -> 9x7: an upscale, plain bilinear interpolation.
  const Image small = make_image(4, 5, pattern_value);
  expect_matches_pil(
      resample(small, crop_then_resize_region({0, 0, 4, 5}), 7, 9), 7, 9,
      {0,   31,  62,  2,   33,  64,  6,   37,  68,  10, 41,  72,  14,  45,  76,  18,  49,  80,
       22,  53,  84,  26,  57,  88,  28,  59,  90,  5,  36,  67,  7,   38,  69,  12,  43,  74,
       17,  48,  79,  22,  53,  84,  27,  58,  89,  32, 63,  94,  37,  68,  99,  40,  71,  102,
       12,  43,  74,  16,  47,  78,  23,  54,  85,  29, 60,  91,  35,  66,  97,  42,  73,  104,
       48,  79,  110, 55,  86,  117, 59,  90,  121, 20, 51,  82,  25,  56,  87,  33,  64,  95,
       41,  72,  103, 49,  80,  111, 57,  88,  119, 65, 96,  127, 73,  104, 135, 78,  109, 140,
       27,  58,  89,  33,  64,  95,  42,  73,  104, 52, 83,  114, 62,  93,  124, 71,  102, 133,
       81,  112, 143, 90,  121, 152, 96,  127, 158, 34, 65,  96,  41,  72,  103, 53,  84,  115,
       64,  95,  126, 75,  106, 137, 86,  117, 148, 97, 128, 159, 109, 140, 171, 115, 146, 177,
       39,  70,  101, 46,  77,  108, 59,  90,  121, 71, 102, 133, 83,  114, 145, 95,  126, 157,
       107, 138, 169, 120, 151, 182, 127, 158, 189});
}

TEST(ResampleTest, MatchesTorchvisionResizeThenCenterCrop) {
  // T.CenterCrop(12)(T.Resize(16)(img)) on a 40x30 image: resized to 21x16, then cropped.
  const Image image = make_image(30, 40, pattern_value);
  expect_matches_pil(
      resample(image, resize_then_center_crop_region(30, 40, 16, 12), 12, 12), 12, 12,
      {102, 93,  88,  92,  110, 139, 130, 143, 137, 131, 138, 144, 138, 115, 105, 99,  117, 140,
       138, 135, 118, 133, 106, 126, 117, 140, 129, 126, 99,  106, 96,  127, 136, 130, 122, 123,
       126, 157, 170, 150, 150, 99,  114, 97,  98,  109, 123, 139, 120, 151, 139, 147, 125, 110,
       122, 125, 134, 123, 103, 126, 125, 149, 137, 152, 121, 128, 119, 117, 132, 130, 131, 149,
       151, 104, 117, 86,  117, 131, 147, 150, 154, 109, 138, 117, 112, 134, 117, 143, 136, 109,
       143, 117, 127, 112, 116, 123, 125, 114, 145, 117, 121, 134, 119, 117, 135, 118, 149, 115,
       99,  110, 128, 122, 153, 110, 111, 104, 123, 124, 130, 144, 137, 115, 104, 127, 129, 117,
       114, 143, 113, 102, 133, 112, 132, 120, 151, 140, 132, 140, 128, 114, 128, 117, 107, 136,
       136, 147, 99,  86,  117, 110, 128, 159, 105, 100, 121, 122, 141, 105, 122, 107, 129, 111,
       134, 122, 134, 122, 122, 109, 108, 128, 107, 131, 133, 142, 130, 139, 114, 139, 124, 155,
       134, 117, 114, 123, 154, 110, 104, 135, 127, 109, 122, 153, 134, 107, 138, 140, 127, 119,
       133, 143, 124, 144, 126, 133, 125, 133, 104, 124, 140, 126, 99,  121, 141, 158, 108, 139,
       125, 131, 143, 110, 112, 127, 141, 119, 150, 92,  120, 151, 90,  116, 147, 118, 123, 151,
       142, 133, 107, 134, 119, 122, 131, 135, 111, 138, 121, 122, 124, 125, 124, 142, 87,  118,
       116, 137, 108, 134, 128, 115, 145, 106, 130, 109, 112, 143, 106, 135, 166, 121, 112, 127,
       124, 145, 117, 124, 109, 124, 132, 143, 118, 115, 119, 134, 136, 142, 85,  123, 105, 109,
       108, 139, 122, 107, 137, 124, 135, 153, 124, 107, 121, 147, 117, 128, 124, 139, 106, 130,
       109, 126, 157, 145, 99,  119, 140, 150, 124, 116, 127, 157, 160, 99,  115, 132, 145, 83,
       119, 150, 133, 138, 138, 121, 144, 111, 142, 119, 111, 117, 119, 150, 113, 106, 128, 154,
       112, 103, 134, 155, 88,  109, 147, 157, 87,  122, 153, 128, 113, 128, 159, 98,  116, 132,
       113, 144, 114, 106, 137, 107, 100, 131, 132, 152, 123, 126, 149, 117, 119, 152, 110, 112,
       169, 103, 106, 161, 96,  98,  155, 136, 91,  148, 150, 86,  140, 143, 110, 133, 135, 104,
       124, 127, 121, 108, 139, 107, 119, 126, 118, 132, 136, 129, 121, 147, 140, 129, 158, 101,
       140, 169, 96,  151, 169, 88,  162, 89,  98,  172, 81,  109, 125, 92,  121, 111, 103, 132});
}

// The filter written out directly: every source pixel of the clip range weighs
// max(0, 1 - |p + 0.5 - centre| / widen) along each axis (widen = max(1, scale)), normalized.
std::vector<double> naive_bilinear(const Image& image, const ResampleRegion& r, int64_t h,
                                   int64_t w) {
  auto axis_weights = [](double start, double length, int64_t begin, int64_t end, int64_t out,
                         int64_t o) {
    const double scale = length / out, widen = std::max(1.0, scale);
    const double center = start + (o + 0.5) * scale;
    std::vector<double> weights(end - begin);
    double sum = 0.0;
    for (int64_t p = begin; p < end; ++p) {
      weights[p - begin] = std::max(0.0, 1.0 - std::abs(p + 0.5 - center) / widen);
      sum += weights[p - begin];
    }
    for (double& v : weights) v /= sum;
    return weights;
  };
  std::vector<double> out(3 * h * w, 0.0);
  for (int64_t y = 0; y < h; ++y) {
    const auto wy = axis_weights(r.top, r.height, r.row_begin, r.row_end, h, y);
    for (int64_t x = 0; x < w; ++x) {
      const auto wx = axis_weights(r.left, r.width, r.col_begin, r.col_end, w, x);
      for (int64_t sy = r.row_begin; sy < r.row_end; ++sy) {
        for (int64_t sx = r.col_begin; sx < r.col_end; ++sx) {
          const double weight = wy[sy - r.row_begin] * wx[sx - r.col_begin];
          for (int c = 0; c < 3; ++c) {
            out[(c * h + y) * w + x] += weight * image.pixels[(sy * image.width + sx) * 3 + c];
          }
        }
      }
    }
  }
  return out;
}

TEST(ResampleTest, MatchesANaiveBilinearReferenceOnFractionalRegionsAndFlips) {
  const Image image = make_image(41, 53, pattern_value);
  const ResampleRegion regions[] = {
      crop_then_resize_region({5, 9, 30, 37}),
      resize_then_center_crop_region(41, 53, 20, 16),
      // A region as DCT scaling leaves it: fractional, clipped to scaled pixel bounds.
      scale_region(crop_then_resize_region({10, 12, 60, 80}), 82, 106, 41, 53),
  };
  for (const ResampleRegion& region : regions) {
    for (int64_t out : {7, 16, 64}) {
      const std::vector<double> expected = naive_bilinear(image, region, out, out);
      const std::vector<float> plain = resample(image, region, out, out);
      const std::vector<float> flipped = resample(image, region, out, out, /*flip=*/true);
      for (int c = 0; c < 3; ++c) {
        for (int64_t y = 0; y < out; ++y) {
          for (int64_t x = 0; x < out; ++x) {
            const int64_t at = (c * out + y) * out + x;
            ASSERT_NEAR(plain[at], expected[at], 2e-3) << out << " " << c << " " << y << " " << x;
            ASSERT_EQ(flipped[(c * out + y) * out + (out - 1 - x)], plain[at]);
          }
        }
      }
    }
  }
}

TEST(ResampleTest, SameSizeRegionIsTheIdentity) {
  const Image image = make_image(6, 9, pattern_value);
  const std::vector<float> out = resample(image, crop_then_resize_region({0, 0, 6, 9}), 6, 9);
  for (int64_t y = 0; y < 6; ++y) {
    for (int64_t x = 0; x < 9; ++x) {
      for (int c = 0; c < 3; ++c) EXPECT_EQ(out[(c * 6 + y) * 9 + x], pattern_value(y, x, c));
    }
  }
}

TEST(ResampleTest, NormalizesWithImageNetMeanAndStd) {
  const Image image = make_image(2, 2, [](int64_t, int64_t, int64_t c) {
    return static_cast<uint8_t>(c == 0 ? 255 : c == 1 ? 0 : 128);
  });
  std::vector<float> out(3 * 3 * 3);
  resample_normalize(image, crop_then_resize_region({0, 0, 2, 2}), 3, 3, false, Normalization(),
                     out.data());
  // (255/255 - 0.485) / 0.229, (0 - 0.456) / 0.224, (128/255 - 0.406) / 0.225
  for (int i = 0; i < 9; ++i) {
    EXPECT_NEAR(out[i], 2.2489083f, 1e-5);
    EXPECT_NEAR(out[9 + i], -2.0357143f, 1e-5);
    EXPECT_NEAR(out[18 + i], 0.4264924f, 1e-5);
  }
}

TEST(ResampleTest, RejectsAClipRangeOutsideTheImage) {
  const Image image = make_image(6, 9, pattern_value);
  ResampleRegion region = crop_then_resize_region({0, 0, 6, 10});
  std::vector<float> out(3 * 4 * 4);
  EXPECT_THAT([&] { resample_normalize(image, region, 4, 4, false, {}, out.data()); },
              ::testing::ThrowsMessage<Error>(HasSubstr("outside the 6x9 image")));
}

ImageTransformOptions small_transform(ImageTransformMode mode) {
  ImageTransformOptions o;
  o.mode = mode;
  o.size = 32;
  o.resize = 40;
  return o;
}

Tensor transform_ok(const std::string& bytes, const ImageTransformOptions& o, uint64_t seed) {
  Generator rng(seed);
  absl::StatusOr<Tensor> out = transform_image(bytes, o, rng);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : Tensor::zeros({3, o.size, o.size});
}

TEST(TransformImageTest, TrainOutputIsAPureFunctionOfTheSeed) {
  const std::string jpeg =
      encode_jpeg(make_pixels(75, 100, 3, pattern_value), 75, 100, TJPF_RGB, TJSAMP_420, 90);
  const ImageTransformOptions o = small_transform(ImageTransformMode::kTrain);
  const Tensor a = transform_ok(jpeg, o, 3);
  EXPECT_EQ(a.shape(), (Shape{3, 32, 32}));
  EXPECT_EQ(a.to_vector<float>(), transform_ok(jpeg, o, 3).to_vector<float>());
  EXPECT_NE(a.to_vector<float>(), transform_ok(jpeg, o, 4).to_vector<float>());
}

TEST(TransformImageTest, FlipMirrorsTheSameCropAboutHalfTheTime) {
  const std::string png = encode_png(make_pixels(30, 40, 3, pattern_value), 30, 40, PNG_FORMAT_RGB);
  ImageTransformOptions never = small_transform(ImageTransformMode::kTrain);
  never.flip_probability = 0.0;
  ImageTransformOptions always = never;
  always.flip_probability = 1.0;
  ImageTransformOptions half = never;
  half.flip_probability = 0.5;
  int flipped = 0;
  const int seeds = 400;
  for (uint64_t seed = 0; seed < seeds; ++seed) {
    const std::vector<float> plain = transform_ok(png, never, seed).to_vector<float>();
    const std::vector<float> mirror = transform_ok(png, always, seed).to_vector<float>();
    for (int64_t row = 0; row < 3 * 32; ++row) {
      for (int64_t x = 0; x < 32; ++x) ASSERT_EQ(mirror[row * 32 + 31 - x], plain[row * 32 + x]);
    }
    const std::vector<float> maybe = transform_ok(png, half, seed).to_vector<float>();
    ASSERT_TRUE(maybe == plain || maybe == mirror);
    flipped += maybe == mirror && maybe != plain;
  }
  EXPECT_GT(flipped, seeds * 4 / 10);
  EXPECT_LT(flipped, seeds * 6 / 10);
}

TEST(TransformImageTest, EvalGivesTheCentreCropOfTheDecodedImage) {
  const auto rgb = make_pixels(30, 40, 3, pattern_value);
  const std::string png = encode_png(rgb, 30, 40, PNG_FORMAT_RGB);
  const ImageTransformOptions o = small_transform(ImageTransformMode::kEval);
  Image image = make_image(30, 40, pattern_value);
  std::vector<float> expected(3 * 32 * 32);
  resample_normalize(image, resize_then_center_crop_region(30, 40, 40, 32), 32, 32, false,
                     o.normalization, expected.data());
  EXPECT_EQ(transform_ok(png, o, 0).to_vector<float>(), expected);
  EXPECT_EQ(transform_ok(png, o, 1).to_vector<float>(), expected);  // no randomness
}

// DCT scaling changes how the image is shrunk, not what it shows: on a 1000x750 JPEG, Resize(256)
// + CenterCrop(224) picks a 1/2 decode, and the result stays within a level or two of the
// full-size decode (on this smooth pattern, a quarter of a level on average).
TEST(TransformImageTest, DctScaledDecodeAgreesWithFullDecode) {
  const std::string jpeg =
      encode_jpeg(make_pixels(750, 1000, 3, smooth_value), 750, 1000, TJPF_RGB, TJSAMP_420, 95);
  ImageTransformOptions scaled;
  scaled.mode = ImageTransformMode::kEval;
  ImageTransformOptions full = scaled;
  full.dct_scaling = false;
  const std::vector<float> a = transform_ok(jpeg, scaled, 0).to_vector<float>();
  const std::vector<float> b = transform_ok(jpeg, full, 0).to_vector<float>();
  double total = 0.0;
  for (size_t i = 0; i < a.size(); ++i) total += std::abs(a[i] - b[i]);
  const double one_level = 1.0 / (255.0 * 0.229);
  EXPECT_LT(total / a.size(), 0.5 * one_level);  // 0.23 levels measured
  EXPECT_NE(a, b);                               // a different decode really happened
}

TEST(TransformImageTest, InvalidOptionsAndBadBytesAreErrors) {
  const std::string png = encode_png(make_pixels(8, 8, 3, pattern_value), 8, 8, PNG_FORMAT_RGB);
  auto error = [&](ImageTransformOptions o, std::string bytes = "") {
    Generator rng(0);
    absl::StatusOr<Tensor> out = transform_image(bytes.empty() ? png : bytes, o, rng);
    return out.ok() ? std::string("ok") : std::string(out.status().message());
  };
  ImageTransformOptions o;
  o.size = 0;
  EXPECT_THAT(error(o), HasSubstr("size 0 (expected >= 1)"));
  o = ImageTransformOptions();
  o.mode = ImageTransformMode::kEval;
  o.resize = 200;
  EXPECT_THAT(error(o), HasSubstr("resize 200 is below the crop size 224"));
  o = ImageTransformOptions();
  o.flip_probability = 1.5;
  EXPECT_THAT(error(o), HasSubstr("flip probability 1.5"));
  o = ImageTransformOptions();
  o.crop.scale_max = 0.0;
  EXPECT_THAT(error(o), HasSubstr("scale range (0.08, 0)"));
  o = ImageTransformOptions();
  o.normalization.std[1] = 0.0f;
  EXPECT_THAT(error(o), HasSubstr("std[1] = 0"));
  EXPECT_THAT(error(ImageTransformOptions(), "not an image"), HasSubstr("neither JPEG nor PNG"));
  EXPECT_EQ(error(ImageTransformOptions()), "ok");
}

}  // namespace
}  // namespace ompq::data
