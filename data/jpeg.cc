#include "data/jpeg.h"

#include <png.h>
#include <turbojpeg.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/error.h"

namespace ompq::data {
namespace {

constexpr unsigned char kJpegMagic[] = {0xFF, 0xD8, 0xFF};
constexpr unsigned char kPngMagic[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

// The most pixels an image may have: PIL's decompression-bomb limit (twice Image.MAX_IMAGE_PIXELS,
// where PIL raises instead of warning). A header of a few hundred bytes may claim 65500 x 65500
// (JPEG) or a million squared (PNG) pixels; without a limit the decoder would allocate gigabytes
// and spend seconds filling them with the gray of missing data.
constexpr int64_t kMaxImagePixels = 178'956'970;

absl::Status check_pixel_count(const char* format, int64_t height, int64_t width) {
  if (height * width <= kMaxImagePixels) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("bad ", format, " header: size ", width, "x",
                                                 height, " has more than ", kMaxImagePixels,
                                                 " pixels (a decompression bomb, as PIL says)"));
}

template <size_t N>
bool starts_with(std::string_view bytes, const unsigned char (&magic)[N]) {
  return bytes.size() >= N && std::memcmp(bytes.data(), magic, N) == 0;
}

const unsigned char* as_uchar(std::string_view bytes) {
  return reinterpret_cast<const unsigned char*>(bytes.data());
}

absl::Status unknown_format(std::string_view bytes) {
  std::string head;
  for (size_t i = 0; i < std::min<size_t>(bytes.size(), 8); ++i) {
    absl::StrAppendFormat(&head, " %02x", static_cast<unsigned char>(bytes[i]));
  }
  return absl::InvalidArgumentError(
      bytes.empty() ? std::string("empty file (expected a JPEG or PNG image)")
                    : absl::StrCat("neither JPEG nor PNG (first bytes:", head, ")"));
}

// One decompressor per thread: creating one costs more than decoding a small image's header.
class Decompressor {
 public:
  Decompressor() : handle_(tjInitDecompress()) {}
  ~Decompressor() {
    if (handle_ != nullptr) tjDestroy(handle_);
  }
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;

  static Decompressor& for_this_thread() {
    thread_local Decompressor decompressor;
    return decompressor;
  }
  tjhandle get() const { return handle_; }
  // The error of the last call, after which the handle is replaced: TurboJPEG 2.1 leaves a
  // decompressor that failed inside the header mid-way, and the next image would fail on it.
  absl::Status error(const char* what) {
    absl::Status status =
        absl::InvalidArgumentError(absl::StrCat(what, ": ", tjGetErrorStr2(handle_)));
    tjDestroy(handle_);
    handle_ = tjInitDecompress();
    return status;
  }

 private:
  tjhandle handle_;
};

struct JpegHeader {
  int width, height, subsampling, colorspace;
};

absl::StatusOr<JpegHeader> read_jpeg_header(std::string_view bytes) {
  Decompressor& d = Decompressor::for_this_thread();
  if (d.get() == nullptr) return absl::InternalError("tjInitDecompress failed (out of memory?)");
  JpegHeader h{0, 0, 0, 0};
  // A header cut short is only a warning to libjpeg: the call succeeds without setting the size.
  if (tjDecompressHeader3(d.get(), as_uchar(bytes), bytes.size(), &h.width, &h.height,
                          &h.subsampling, &h.colorspace) != 0 ||
      h.width < 1 || h.height < 1) {
    return d.error("bad JPEG header");
  }
  OMPQ_RETURN_IF_ERROR(check_pixel_count("JPEG", h.height, h.width));
  return h;
}

// Stored Adobe CMYK (inverted: byte s means ink 255 - s) to RGB, in place over a buffer that
// holds `pixels` CMYK pixels and receives them as RGB (the write position never passes the read).
void adobe_cmyk_to_rgb_inplace(uint8_t* buffer, int64_t pixels) {
  for (int64_t p = 0; p < pixels; ++p) {
    const uint8_t* cmyk = buffer + 4 * p;
    const int k = cmyk[3];
    const uint8_t r = static_cast<uint8_t>((cmyk[0] * k + 127) / 255);
    const uint8_t g = static_cast<uint8_t>((cmyk[1] * k + 127) / 255);
    const uint8_t b = static_cast<uint8_t>((cmyk[2] * k + 127) / 255);
    uint8_t* rgb = buffer + 3 * p;
    rgb[0] = r;
    rgb[1] = g;
    rgb[2] = b;
  }
}

absl::StatusOr<Image> decode_jpeg(std::string_view bytes, JpegScale scale) {
  OMPQ_ASSIGN_OR_RETURN(JpegHeader header, read_jpeg_header(bytes));
  Decompressor& d = Decompressor::for_this_thread();
  const bool cmyk = header.colorspace == TJCS_CMYK || header.colorspace == TJCS_YCCK;
  Image image;
  image.height = scaled_size(header.height, scale);
  image.width = scaled_size(header.width, scale);
  const int64_t pixels = image.height * image.width;
  image.pixels.reset(new uint8_t[pixels * (cmyk ? 4 : 3)]);
  // The requested size selects the scaling factor: the decoder picks the largest that fits.
  if (tjDecompress2(d.get(), as_uchar(bytes), bytes.size(), image.pixels.get(),
                    static_cast<int>(image.width), 0, static_cast<int>(image.height),
                    cmyk ? TJPF_CMYK : TJPF_RGB, 0) != 0) {
    // Libjpeg fills what it could not decode with gray and calls that a warning; PIL rejects a
    // file cut short ("image file is truncated") but accepts the other recoverable damage.
    const bool truncated =
        std::strstr(tjGetErrorStr2(d.get()), "Premature end of JPEG file") != nullptr;
    if (tjGetErrorCode(d.get()) == TJERR_FATAL || truncated) return d.error("bad JPEG data");
  }
  if (cmyk) adobe_cmyk_to_rgb_inplace(image.pixels.get(), pixels);
  return image;
}

absl::StatusOr<Image> decode_png(std::string_view bytes) {
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, bytes.data(), bytes.size())) {
    return absl::InvalidArgumentError(absl::StrCat("bad PNG header: ", png.message));
  }
  if (absl::Status size = check_pixel_count("PNG", png.height, png.width); !size.ok()) {
    png_image_free(&png);
    return size;
  }
  // Alpha is read and then dropped rather than composited, as PIL's convert("RGB") does.
  const bool alpha = (png.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  png.format = alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
  Image image;
  image.height = png.height;
  image.width = png.width;
  const int64_t pixels = image.height * image.width;
  image.pixels.reset(new uint8_t[pixels * (alpha ? 4 : 3)]);
  if (!png_image_finish_read(&png, nullptr, image.pixels.get(), 0, nullptr)) {
    png_image_free(&png);
    return absl::InvalidArgumentError(absl::StrCat("bad PNG data: ", png.message));
  }
  if (alpha) {
    uint8_t* p = image.pixels.get();
    for (int64_t i = 0; i < pixels; ++i) std::memmove(p + 3 * i, p + 4 * i, 3);
  }
  return image;
}

// The PNG signature is followed by the IHDR chunk: length, "IHDR", big-endian width and height.
uint32_t read_be32(std::string_view bytes, size_t at) {
  const unsigned char* p = as_uchar(bytes) + at;
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

}  // namespace

absl::StatusOr<ImageInfo> read_image_info(std::string_view bytes) {
  if (starts_with(bytes, kJpegMagic)) {
    OMPQ_ASSIGN_OR_RETURN(JpegHeader header, read_jpeg_header(bytes));
    return ImageInfo{ImageFormat::kJpeg, header.height, header.width};
  }
  if (starts_with(bytes, kPngMagic)) {
    if (bytes.size() < 24 || bytes.substr(12, 4) != "IHDR") {
      return absl::InvalidArgumentError("bad PNG header: no IHDR chunk after the signature");
    }
    const uint32_t width = read_be32(bytes, 16), height = read_be32(bytes, 20);
    if (width == 0 || height == 0 || width > 0x7FFFFFFFu || height > 0x7FFFFFFFu) {
      return absl::InvalidArgumentError(absl::StrCat("bad PNG header: size ", width, "x", height));
    }
    OMPQ_RETURN_IF_ERROR(check_pixel_count("PNG", height, width));
    return ImageInfo{ImageFormat::kPng, height, width};
  }
  return unknown_format(bytes);
}

JpegScale jpeg_scale_at_least(double min_fraction) {
  int count = 0;
  const tjscalingfactor* factors = tjGetScalingFactors(&count);
  JpegScale best;  // 1/1
  for (int i = 0; i < count; ++i) {
    const double value = static_cast<double>(factors[i].num) / factors[i].denom;
    if (factors[i].num == 1 && value >= min_fraction &&
        value < static_cast<double>(best.num) / best.denom) {
      best = JpegScale{factors[i].num, factors[i].denom};
    }
  }
  return best;
}

int64_t scaled_size(int64_t size, JpegScale scale) {
  return (size * scale.num + scale.denom - 1) / scale.denom;
}

absl::StatusOr<Image> decode_image(std::string_view bytes, JpegScale scale) {
  if (starts_with(bytes, kJpegMagic)) return decode_jpeg(bytes, scale);
  if (starts_with(bytes, kPngMagic)) return decode_png(bytes);
  return unknown_format(bytes);
}

}  // namespace ompq::data
