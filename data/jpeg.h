// Image decoding for the ImageNet pipeline: JPEG with libjpeg-turbo's TurboJPEG API, optionally
// shrunk while decoding by DCT scaling (the decoder runs a smaller inverse DCT per 8x8 block, so
// a 1/2-scale decode costs a fraction of a full one), and PNG with libpng (ImageNet's training set
// holds a PNG under a .JPEG name). The format is told by the magic bytes, never by the file name.
//
// Every image comes out as 8-bit RGB: grayscale JPEGs and PNGs are replicated to three channels,
// palette PNGs expanded, alpha dropped (as PIL's convert("RGB")). CMYK/YCCK JPEGs are taken to
// hold Adobe's inverted CMYK, the convention of Photoshop and of libjpeg, which always writes the
// Adobe marker for four-channel JPEGs (PIL assumes the same when the marker is present):
// a stored byte s means ink 255 - s, and R = C_s * K_s / 255 (G and B alike), what PIL 9's
// CMYK -> RGB conversion gives. No colour management, as in PIL.
//
// Thread-safe: each thread decodes with its own TurboJPEG handle.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"

namespace ompq::data {

// A decoded image: 8-bit RGB, row-major HWC (3 * width bytes per row, no padding).
struct Image {
  int64_t height = 0;
  int64_t width = 0;
  std::unique_ptr<uint8_t[]> pixels;

  const uint8_t* row(int64_t y) const { return pixels.get() + y * width * 3; }
};

enum class ImageFormat { kJpeg, kPng };

struct ImageInfo {
  ImageFormat format;
  int64_t height;
  int64_t width;
};

// A DCT scaling factor num/denom of the JPEG decoder.
struct JpegScale {
  int num = 1;
  int denom = 1;
};

// Images of more than 178,956,970 pixels (PIL's decompression-bomb limit) are refused from the
// header, before anything is allocated.
//
// Format and full size, read from the header only. Errors (InvalidArgument) say what is wrong
// with the bytes; callers add the file name.
absl::StatusOr<ImageInfo> read_image_info(std::string_view bytes);

// The smallest scaling factor 1/n of the decoder (tjGetScalingFactors) that is >= min_fraction,
// 1/1 when min_fraction > 1/2: the cheapest decode that still yields min_fraction of each
// dimension. Only 1/n factors are used because libjpeg-turbo has SIMD inverse DCTs for 1/2 and
// 1/4 (1/8 keeps only the DC term) but plain C ones for 7/8, 3/4, 5/8 and 3/8, which decode
// slower than 1/1: on a 500x375 4:2:0 JPEG (86 KB, EPYC, CPU time) 1/1 0.88 ms, 7/8 1.53,
// 3/4 1.25, 5/8 1.10, 1/2 0.76, 3/8 0.84, 1/4 0.71, 1/8 0.62.
JpegScale jpeg_scale_at_least(double min_fraction);

// A dimension after scaling, rounded up as the decoder does (TJSCALED).
int64_t scaled_size(int64_t size, JpegScale scale);

// Decodes `bytes` to RGB. A JPEG is shrunk by `scale` while decoding, to
// scaled_size(height, scale) x scaled_size(width, scale); a PNG always comes at full size, so
// callers take the size from the result. Libjpeg's warnings about recoverable damage (e.g.
// extraneous bytes before a marker) are accepted as PIL accepts them; a JPEG cut short is an error.
absl::StatusOr<Image> decode_image(std::string_view bytes, JpegScale scale = {});

}  // namespace ompq::data
