#include "data/idx.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ompq::data {
namespace {

constexpr size_t kReadChunk = size_t{1} << 20;

// The whole (decompressed) content of `path`. zlib's gzread passes a file without the gzip magic
// through unchanged, so plain and compressed files share this path.
absl::StatusOr<std::string> read_all(const std::string& path) {
  errno = 0;
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    int error = errno != 0 ? errno : ENOMEM;
    return absl::ErrnoToStatus(error, absl::StrCat("IDX file '", path, "': cannot open"));
  }
  gzbuffer(file, kReadChunk);
  std::string bytes;
  size_t size = 0;
  while (true) {
    bytes.resize(size + kReadChunk);
    int n = gzread(file, &bytes[size], kReadChunk);
    if (n <= 0) break;
    size += static_cast<size_t>(n);
  }
  bytes.resize(size);
  int zerr = Z_OK;
  const char* message = gzerror(file, &zerr);
  bool compressed = gzdirect(file) == 0;
  std::string reason = zerr == Z_ERRNO ? std::strerror(errno) : message;
  // zlib prefixes its messages with the path, which ours already names.
  if (absl::StartsWith(reason, path + ": ")) reason.erase(0, path.size() + 2);
  gzclose(file);
  if (zerr != Z_OK) {
    if (!compressed || zerr == Z_ERRNO) {
      return absl::DataLossError(absl::StrCat("IDX file '", path, "': read error: ", reason));
    }
    return absl::DataLossError(
        absl::StrCat("IDX file '", path, "': corrupt gzip stream (", reason, ")"));
  }
  return bytes;
}

std::optional<DType> dtype_of_code(uint8_t code) {
  switch (code) {
    case 0x08:
      return DType::kU8;
    case 0x09:
      return DType::kI8;
    case 0x0C:
      return DType::kI32;
    case 0x0D:
      return DType::kF32;
    case 0x0E:
      return DType::kF64;
    default:
      return std::nullopt;
  }
}

uint32_t big_endian_u32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Copies `count` big-endian values of `width` bytes into native (little-endian) order.
void copy_from_big_endian(unsigned char* dst, const unsigned char* src, int64_t count,
                          size_t width) {
  // An empty tensor has no storage, and memcpy must not be given its null pointer even for 0 bytes.
  if (count == 0) return;
  if (width == 1) {
    std::memcpy(dst, src, count);
    return;
  }
  for (int64_t i = 0; i < count; ++i) {
    for (size_t b = 0; b < width; ++b) dst[i * width + b] = src[i * width + width - 1 - b];
  }
}

}  // namespace

absl::StatusOr<Tensor> read_idx(const std::string& path) {
  OMPQ_ASSIGN_OR_RETURN(std::string bytes, read_all(path));
  auto error = [&](auto&&... parts) {
    return absl::DataLossError(absl::StrCat("IDX file '", path, "': ", parts...));
  };
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() < 4) {
    return error("truncated header: expected at least 4 bytes, got ", bytes.size());
  }
  if (p[0] != 0 || p[1] != 0) {
    return error(
        absl::StrFormat("bad magic 0x%08X (expected two zero bytes, a type code, "
                        "the number of dims)",
                        big_endian_u32(p)));
  }
  std::optional<DType> dtype = dtype_of_code(p[2]);
  if (!dtype) {
    return error(
        absl::StrFormat("unsupported type code 0x%02X (expected 0x08 u8, 0x09 i8, "
                        "0x0C i32, 0x0D f32 or 0x0E f64)",
                        p[2]));
  }
  const int64_t ndims = p[3];
  const size_t header_bytes = 4 + 4 * static_cast<size_t>(ndims);
  if (bytes.size() < header_bytes) {
    return error("truncated header: ", ndims, " dims need ", header_bytes, " bytes, got ",
                 bytes.size());
  }
  Shape shape(ndims);
  uint64_t numel = 1;
  for (int64_t d = 0; d < ndims; ++d) {
    shape[d] = big_endian_u32(p + 4 + 4 * d);
    // Products of up to 255 uint32 dims overflow; nothing that large fits in memory anyway.
    if (shape[d] != 0 && numel > (uint64_t{1} << 48) / static_cast<uint64_t>(shape[d])) {
      return error("dims ", shape_str(Shape(shape.begin(), shape.begin() + d + 1)),
                   "... describe more than 2^48 elements");
    }
    numel *= static_cast<uint64_t>(shape[d]);
  }
  const size_t width = dtype_size(*dtype);
  const size_t data_bytes = numel * width;
  const size_t got = bytes.size() - header_bytes;
  if (got < data_bytes) {
    return error("truncated data: shape ", shape_str(shape), " of ", dtype_name(*dtype), " needs ",
                 data_bytes, " bytes, got ", got);
  }
  if (got > data_bytes) {
    return error(got - data_bytes, " trailing bytes after the ", data_bytes,
                 " data bytes of shape ", shape_str(shape));
  }
  Tensor tensor = Tensor::empty(shape, *dtype);
  copy_from_big_endian(static_cast<unsigned char*>(tensor.data_ptr()), p + header_bytes,
                       static_cast<int64_t>(numel), width);
  return tensor;
}

}  // namespace ompq::data
