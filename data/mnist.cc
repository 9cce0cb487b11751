#include "data/mnist.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "data/idx.h"

namespace ompq::data {
namespace {

constexpr int64_t kSide = 28;

const char* split_prefix(Split split) { return split == Split::kTrain ? "train" : "t10k"; }

// `folder/base`, or `folder/base.gz` when only that exists.
absl::StatusOr<std::string> find_file(const std::string& folder, const std::string& base) {
  for (const char* suffix : {"", ".gz"}) {
    std::filesystem::path path = std::filesystem::path(folder) / (base + suffix);
    std::error_code ec;
    if (std::filesystem::is_regular_file(path, ec)) return path.string();
  }
  return absl::NotFoundError(
      absl::StrCat("MNIST folder '", folder, "': neither ", base, " nor ", base, ".gz found"));
}

absl::Status check_options(const MnistOptions& o) {
  auto invalid = [](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat("MNIST options: ", parts...));
  };
  if (o.channels != 1 && o.channels != 3)
    return invalid("channels = ", o.channels, " (expected 1 or 3)");
  if (!(o.std > 0.0f)) return invalid("std = ", o.std, " (expected > 0)");
  if (o.image_size < 1) return invalid("image_size = ", o.image_size, " (expected >= 1)");
  if (!o.resize && o.image_size < kSide) {
    return invalid("image_size = ", o.image_size, " is below 28: set resize to scale down");
  }
  return absl::OkStatus();
}

// Source row (or column) taps of bilinear resampling from `in` to `out` samples, as PyTorch's
// upsample_bilinear2d with align_corners=False computes them.
struct Taps {
  int64_t i0, i1;
  float w0, w1;
};
std::vector<Taps> bilinear_taps(int64_t in, int64_t out) {
  std::vector<Taps> taps(out);
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  for (int64_t o = 0; o < out; ++o) {
    float src = std::max(scale * (static_cast<float>(o) + 0.5f) - 0.5f, 0.0f);
    int64_t i0 = static_cast<int64_t>(src);
    float frac = src - static_cast<float>(i0);
    taps[o] = {i0, i0 < in - 1 ? i0 + 1 : i0, 1.0f - frac, frac};
  }
  return taps;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MnistDataset>> MnistDataset::open(const MnistOptions& options) {
  OMPQ_RETURN_IF_ERROR(check_options(options));
  std::error_code ec;
  if (!std::filesystem::is_directory(options.folder, ec)) {
    return absl::NotFoundError(absl::StrCat(
        "MNIST folder '", options.folder,
        "' does not exist (for Fashion-MNIST install the Debian package dataset-fashion-mnist)"));
  }
  const std::string prefix = split_prefix(options.split);
  OMPQ_ASSIGN_OR_RETURN(std::string images_path,
                        find_file(options.folder, prefix + "-images-idx3-ubyte"));
  OMPQ_ASSIGN_OR_RETURN(std::string labels_path,
                        find_file(options.folder, prefix + "-labels-idx1-ubyte"));
  OMPQ_ASSIGN_OR_RETURN(Tensor images, read_idx(images_path));
  OMPQ_ASSIGN_OR_RETURN(Tensor labels, read_idx(labels_path));

  if (images.dtype() != DType::kU8 || images.dim() != 3 || images.size(1) != kSide ||
      images.size(2) != kSide) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", images_path, "' holds ", dtype_name(images.dtype()), " of shape ",
                     shape_str(images.shape()), " (expected u8 [N, 28, 28])"));
  }
  if (labels.dtype() != DType::kU8 || labels.dim() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", labels_path, "' holds ", dtype_name(labels.dtype()), " of shape ",
                     shape_str(labels.shape()), " (expected u8 [N])"));
  }
  if (images.size(0) != labels.size(0)) {
    return absl::InvalidArgumentError(absl::StrCat("'", images_path, "' holds ", images.size(0),
                                                   " images but '", labels_path, "' holds ",
                                                   labels.size(0), " labels"));
  }
  const uint8_t* label_values = labels.data<uint8_t>();
  for (int64_t i = 0; i < labels.size(0); ++i) {
    if (label_values[i] > 9) {
      return absl::InvalidArgumentError(absl::StrCat("'", labels_path, "': label ",
                                                     int{label_values[i]}, " at index ", i,
                                                     " is outside 0..9"));
    }
  }
  return std::unique_ptr<MnistDataset>(
      new MnistDataset(options, std::move(images), std::move(labels)));
}

MnistDataset::MnistDataset(MnistOptions options, Tensor images, Tensor labels)
    : options_(std::move(options)), images_(std::move(images)), labels_(std::move(labels)) {}

Shape MnistDataset::input_shape() const {
  return {options_.channels, options_.image_size, options_.image_size};
}

std::string MnistDataset::name() const {
  return absl::StrCat("MNIST-format ", split_prefix(options_.split), " split in ", options_.folder);
}

// Writes channel 0 in normalized units, then replicates it into the other channels.
Example MnistDataset::load(int64_t index, Generator& /*rng*/) const {
  const int64_t side = options_.image_size;
  const int64_t plane = side * side;
  const uint8_t* src = images_.data<uint8_t>() + index * kSide * kSide;
  Tensor input = Tensor::empty(input_shape());
  float* dst = input.data<float>();
  // (p / 255 - mean) / std as one multiply-add.
  const float scale = 1.0f / (255.0f * options_.std);
  const float shift = -options_.mean / options_.std;

  if (options_.resize) {
    const std::vector<Taps> taps = bilinear_taps(kSide, side);
    for (int64_t y = 0; y < side; ++y) {
      const uint8_t* row0 = src + taps[y].i0 * kSide;
      const uint8_t* row1 = src + taps[y].i1 * kSide;
      for (int64_t x = 0; x < side; ++x) {
        const Taps& t = taps[x];
        float top = t.w0 * row0[t.i0] + t.w1 * row0[t.i1];
        float bottom = t.w0 * row1[t.i0] + t.w1 * row1[t.i1];
        dst[y * side + x] = (taps[y].w0 * top + taps[y].w1 * bottom) * scale + shift;
      }
    }
  } else {
    const int64_t border = (side - kSide) / 2;
    std::fill(dst, dst + plane, shift);  // black padding
    for (int64_t y = 0; y < kSide; ++y) {
      float* out_row = dst + (y + border) * side + border;
      for (int64_t x = 0; x < kSide; ++x) out_row[x] = src[y * kSide + x] * scale + shift;
    }
  }
  for (int64_t c = 1; c < options_.channels; ++c) {
    std::memcpy(dst + c * plane, dst, plane * sizeof(float));
  }
  return Example{input, labels_.data<uint8_t>()[index]};
}

absl::StatusOr<MnistOptions> mnist_options_for_input(const Shape& input_shape,
                                                     const std::string& model_name) {
  if (input_shape.size() != 3 || input_shape[1] != input_shape[2] || input_shape[1] < 28 ||
      (input_shape[0] != 1 && input_shape[0] != 3)) {
    return absl::InvalidArgumentError(absl::StrCat(
        model_name, " takes input ", shape_str(input_shape),
        ", which Fashion-MNIST cannot be shaped into (expected [1 or 3, S, S] with S >= 28)"));
  }
  MnistOptions options;
  options.channels = input_shape[0];
  options.image_size = input_shape[1];
  options.resize = input_shape[1] > 32;
  return options;
}

}  // namespace ompq::data
