#include "data/jpeg.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "tests/data/image_files.h"

namespace ompq::data {
namespace {

using testing::encode_jpeg;
using testing::encode_png;
using ::testing::HasSubstr;
using testing::make_pixels;
using testing::pattern_value;
using testing::smooth_value;

struct Difference {
  int max = 0;
  double mean = 0.0;
};

// Between a decoded image and expected RGB values.
Difference difference(const Image& image, const std::vector<uint8_t>& expected) {
  Difference d;
  const int64_t n = image.height * image.width * 3;
  EXPECT_EQ(static_cast<int64_t>(expected.size()), n);
  for (int64_t i = 0; i < n && i < static_cast<int64_t>(expected.size()); ++i) {
    const int e = std::abs(int{image.pixels[i]} - int{expected[i]});
    d.max = std::max(d.max, e);
    d.mean += e;
  }
  d.mean /= static_cast<double>(n);
  return d;
}

Image decode_ok(const std::string& bytes, JpegScale scale = {}) {
  absl::StatusOr<Image> image = decode_image(bytes, scale);
  EXPECT_TRUE(image.ok()) << image.status();
  return image.ok() ? *std::move(image) : Image{};
}

TEST(JpegTest, DecodesRgbJpegCloseToTheSource) {
  const auto rgb = make_pixels(48, 64, 3, smooth_value);
  const std::string jpeg = encode_jpeg(rgb, 48, 64, TJPF_RGB, TJSAMP_444, 100);
  absl::StatusOr<ImageInfo> info = read_image_info(jpeg);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->format, ImageFormat::kJpeg);
  EXPECT_EQ(info->height, 48);
  EXPECT_EQ(info->width, 64);
  Image image = decode_ok(jpeg);
  EXPECT_EQ(image.height, 48);
  EXPECT_EQ(image.width, 64);
  Difference d = difference(image, rgb);
  EXPECT_LE(d.max, 5);  // quality 100, 4:4:4: rounding in the colour transform and DCT only
  EXPECT_LT(d.mean, 1.0);
}

TEST(JpegTest, GrayscaleJpegBecomesRgb) {
  const auto gray = make_pixels(20, 30, 1, smooth_value);
  const std::string jpeg = encode_jpeg(gray, 20, 30, TJPF_GRAY, TJSAMP_GRAY, 100);
  Image image = decode_ok(jpeg);
  ASSERT_EQ(image.width, 30);
  std::vector<uint8_t> expected;
  for (uint8_t v : gray) expected.insert(expected.end(), {v, v, v});
  EXPECT_LE(difference(image, expected).max, 2);
  for (int64_t p = 0; p < 20 * 30; ++p) {  // exactly gray
    EXPECT_EQ(image.pixels[3 * p], image.pixels[3 * p + 1]);
    EXPECT_EQ(image.pixels[3 * p], image.pixels[3 * p + 2]);
  }
}

// libjpeg writes four-channel JPEGs with the Adobe marker; PIL then reads the stored bytes as
// inverted CMYK and its convert("RGB") gives R = C * K / 255 on the stored values (checked with
// PIL 9.4 on a file made this way: stored (40, 200, 100, 90) -> RGB (14, 71, 35)).
TEST(JpegTest, CmykJpegBecomesRgbAsPilConvertsIt) {
  auto cmyk_value = [](int64_t y, int64_t x, int64_t c) {
    const int base[4] = {40, 200, 100, 90};
    const int step_x[4] = {10, 0, 5, 0};
    const int step_y[4] = {0, -8, 0, 12};
    return static_cast<uint8_t>(base[c] + step_x[c] * x + step_y[c] * y);
  };
  const auto cmyk = make_pixels(8, 16, 4, cmyk_value);
  const std::string jpeg = encode_jpeg(cmyk, 8, 16, TJPF_CMYK, TJSAMP_444, 100);
  Image image = decode_ok(jpeg);
  std::vector<uint8_t> expected;
  for (size_t p = 0; p < cmyk.size(); p += 4) {
    for (int c = 0; c < 3; ++c) {
      expected.push_back(static_cast<uint8_t>(std::lround(cmyk[p + c] * cmyk[p + 3] / 255.0)));
    }
  }
  EXPECT_LE(difference(image, expected).max, 2);
  EXPECT_EQ(image.pixels[0], 14);  // PIL's value for the first pixel, +-1 for the codec
  EXPECT_NEAR(image.pixels[1], 71, 1);
  EXPECT_NEAR(image.pixels[2], 35, 1);
}

TEST(JpegTest, PngIsDecodedWhateverTheFileIsCalled) {
  const auto rgb = make_pixels(9, 11, 3, pattern_value);
  const std::string png = encode_png(rgb, 9, 11, PNG_FORMAT_RGB);
  absl::StatusOr<ImageInfo> info = read_image_info(png);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->format, ImageFormat::kPng);
  EXPECT_EQ(info->height, 9);
  EXPECT_EQ(info->width, 11);
  Image image = decode_ok(png, JpegScale{1, 8});  // PNGs ignore the scale
  EXPECT_EQ(image.height, 9);
  EXPECT_EQ(difference(image, rgb).max, 0);  // lossless
}

TEST(JpegTest, PngAlphaIsDroppedAndGrayIsReplicated) {
  const auto rgba = make_pixels(5, 6, 4, pattern_value);
  Image with_alpha = decode_ok(encode_png(rgba, 5, 6, PNG_FORMAT_RGBA));
  std::vector<uint8_t> rgb;
  for (size_t p = 0; p < rgba.size(); p += 4)
    rgb.insert(rgb.end(), {rgba[p], rgba[p + 1], rgba[p + 2]});
  EXPECT_EQ(difference(with_alpha, rgb).max, 0);

  const auto gray = make_pixels(5, 6, 1, pattern_value);
  Image from_gray = decode_ok(encode_png(gray, 5, 6, PNG_FORMAT_GRAY));
  std::vector<uint8_t> replicated;
  for (uint8_t v : gray) replicated.insert(replicated.end(), {v, v, v});
  EXPECT_EQ(difference(from_gray, replicated).max, 0);
}

TEST(JpegTest, ScaledDecodeHasTheDecoderDimensionsAndAveragesBlocks) {
  const auto rgb = make_pixels(375, 500, 3, smooth_value);
  const std::string jpeg = encode_jpeg(rgb, 375, 500, TJPF_RGB, TJSAMP_420, 95);
  const struct {
    JpegScale scale;
    int64_t height, width;
  } cases[] = {{{1, 1}, 375, 500}, {{1, 2}, 188, 250}, {{1, 4}, 94, 125}, {{1, 8}, 47, 63}};
  for (const auto& c : cases) {
    EXPECT_EQ(scaled_size(375, c.scale), c.height);
    EXPECT_EQ(scaled_size(500, c.scale), c.width);
    Image image = decode_ok(jpeg, c.scale);
    EXPECT_EQ(image.height, c.height) << c.scale.denom;
    EXPECT_EQ(image.width, c.width) << c.scale.denom;
  }
  // A 1/2 decode is the 2x2 block mean of the image, up to the codec's error.
  Image half = decode_ok(jpeg, JpegScale{1, 2});
  double total_error = 0.0;
  int64_t count = 0;
  for (int64_t y = 0; y + 1 < 187; ++y) {
    for (int64_t x = 0; x < 250; ++x) {
      for (int c = 0; c < 3; ++c) {
        const double mean =
            (rgb[((2 * y) * 500 + 2 * x) * 3 + c] + rgb[((2 * y) * 500 + 2 * x + 1) * 3 + c] +
             rgb[((2 * y + 1) * 500 + 2 * x) * 3 + c] +
             rgb[((2 * y + 1) * 500 + 2 * x + 1) * 3 + c]) /
            4.0;
        total_error += std::abs(half.pixels[(y * 250 + x) * 3 + c] - mean);
        ++count;
      }
    }
  }
  EXPECT_LT(total_error / count, 2.5);
}

TEST(JpegTest, ScaleAtLeastPicksTheSmallestOneOverNFactor) {
  const struct {
    double fraction;
    int denom;
  } cases[] = {{2.0, 1}, {1.0, 1},  {0.6, 1}, {0.51, 1},  {0.5, 2},
               {0.3, 2}, {0.25, 4}, {0.2, 4}, {0.125, 8}, {0.01, 8}};
  for (const auto& c : cases) {
    JpegScale scale = jpeg_scale_at_least(c.fraction);
    EXPECT_EQ(scale.num, 1) << c.fraction;
    EXPECT_EQ(scale.denom, c.denom) << c.fraction;
  }
}

TEST(JpegTest, BadBytesAreReportedWithWhatIsWrong) {
  const std::string jpeg =
      encode_jpeg(make_pixels(64, 64, 3, pattern_value), 64, 64, TJPF_RGB, TJSAMP_420, 90);
  const std::string png = encode_png(make_pixels(8, 8, 3, pattern_value), 8, 8, PNG_FORMAT_RGB);
  const struct {
    std::string bytes;
    const char* message;
  } cases[] = {
      {"", "empty file"},
      {std::string("GIF89a\x01\x00", 8),
       "neither JPEG nor PNG (first bytes: 47 49 46 38 39 61 01 00)"},
      {jpeg.substr(0, 20), "bad JPEG header"},
      {jpeg.substr(0, jpeg.size() / 2), "bad JPEG data: Premature end of JPEG file"},
      {png.substr(0, 20), "bad PNG header"},
      {png.substr(0, png.size() - 20), "bad PNG data"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<Image> image = decode_image(c.bytes);
    ASSERT_FALSE(image.ok()) << c.message;
    EXPECT_THAT(std::string(image.status().message()), HasSubstr(c.message));
  }
  // Tables but no image: an error inside the header (not just a warning), after which the
  // thread's decoder must still decode the next image.
  const std::string no_scan = jpeg.substr(0, jpeg.find("\xFF\xDA")) + "\xFF\xD9";
  EXPECT_THAT(std::string(decode_image(no_scan).status().message()),
              HasSubstr("bad JPEG header: Invalid JPEG file structure: missing SOS marker"));
  EXPECT_EQ(decode_ok(jpeg).width, 64);
  EXPECT_THAT(std::string(read_image_info("\x89PNG\r\n\x1a\n").status().message()),
              HasSubstr("no IHDR"));
  EXPECT_THAT(std::string(read_image_info(jpeg.substr(0, 20)).status().message()),
              HasSubstr("bad JPEG header"));
}

// Found by fuzzing (tests/fuzz/corpus/image/): a 255-byte JPEG whose header claimed 603M pixels
// made the decoder allocate 1.8 GB and fill it. Sizes over PIL's limit are refused from the header.
TEST(JpegTest, DecompressionBombsAreRefusedFromTheHeader) {
  std::string jpeg =
      encode_jpeg(make_pixels(64, 64, 3, pattern_value), 64, 64, TJPF_RGB, TJSAMP_420, 90);
  std::string png = encode_png(make_pixels(8, 8, 3, pattern_value), 8, 8, PNG_FORMAT_RGB);
  // 20000 x 20000: the frame header's height and width, then IHDR's width and height.
  const size_t sof = jpeg.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  jpeg.replace(sof + 5, 4, "\x4E\x20\x4E\x20");
  png.replace(16, 8, std::string("\0\0\x4E\x20\0\0\x4E\x20", 8));
  const char* expected = "size 20000x20000 has more than 178956970 pixels";
  EXPECT_THAT(std::string(decode_image(jpeg).status().message()), HasSubstr(expected));
  EXPECT_THAT(std::string(read_image_info(jpeg).status().message()), HasSubstr(expected));
  EXPECT_THAT(std::string(read_image_info(png).status().message()), HasSubstr(expected));
}

}  // namespace
}  // namespace ompq::data
