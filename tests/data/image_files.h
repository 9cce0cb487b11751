// Encoding test images in memory: JPEGs with TurboJPEG (RGB, grayscale, CMYK) and PNGs with
// libpng, from pixel patterns the tests know.
#pragma once

#include <gtest/gtest.h>
#include <png.h>
#include <turbojpeg.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace ompq::data::testing {

// Channel c of pixel (y, x) of a test pattern: not affine in (y, x), so resampling is really
// exercised, and different per channel.
inline uint8_t pattern_value(int64_t y, int64_t x, int64_t c) {
  return static_cast<uint8_t>((13 * y + 7 * x + 31 * c + 5 * x * y) % 251);
}

// A smooth pattern, a triangle wave in 40..210 (JPEG keeps it to within a few levels).
inline uint8_t smooth_value(int64_t y, int64_t x, int64_t c) {
  const int64_t t = (2 * x + 3 * y + 50 * c) % 340;
  return static_cast<uint8_t>(40 + (t < 170 ? t : 340 - t));
}

template <typename F>
std::vector<uint8_t> make_pixels(int height, int width, int channels, F value) {
  std::vector<uint8_t> pixels(static_cast<size_t>(height) * width * channels);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) pixels[(y * width + x) * channels + c] = value(y, x, c);
    }
  }
  return pixels;
}

// `pixels` in TurboJPEG pixel format `format` (TJPF_RGB, TJPF_GRAY, TJPF_CMYK) as a JPEG.
inline std::string encode_jpeg(const std::vector<uint8_t>& pixels, int height, int width,
                               int format, int subsampling, int quality) {
  tjhandle handle = tjInitCompress();
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  const int rc = tjCompress2(handle, pixels.data(), width, 0, height, format, &jpeg, &size,
                             subsampling, quality, 0);
  std::string bytes;
  if (rc == 0) bytes.assign(reinterpret_cast<const char*>(jpeg), size);
  EXPECT_EQ(rc, 0) << tjGetErrorStr2(handle);
  tjFree(jpeg);
  tjDestroy(handle);
  return bytes;
}

// `pixels` in libpng simplified format `format` (PNG_FORMAT_RGB, _RGBA, _GRAY) as a PNG.
inline std::string encode_png(const std::vector<uint8_t>& pixels, int height, int width,
                              uint32_t format) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  image.width = width;
  image.height = height;
  image.format = format;
  png_alloc_size_t size = 0;
  EXPECT_TRUE(png_image_write_to_memory(&image, nullptr, &size, 0, pixels.data(), 0, nullptr))
      << image.message;
  std::string bytes(size, '\0');
  EXPECT_TRUE(png_image_write_to_memory(&image, bytes.data(), &size, 0, pixels.data(), 0, nullptr))
      << image.message;
  bytes.resize(size);
  return bytes;
}

}  // namespace ompq::data::testing
