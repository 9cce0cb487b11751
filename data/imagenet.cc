#include "data/imagenet.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <unordered_map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/error.h"

namespace ompq::data {
namespace fs = std::filesystem;
namespace {

constexpr char kImageKinds[] = ".jpeg, .jpg or .png";
// Class indices of a label file lie below this: without a train/ folder, the classes are 0 up to
// the largest index, so one line "x.JPEG 2147483647" would otherwise make two billion class names
// (and a classifier that wide). A million leaves room for any real data set (ImageNet-21k has
// 21,841 classes).
constexpr int64_t kMaxClassIndex = 1'000'000;

bool is_image_name(const fs::path& path) {
  const std::string ext = absl::AsciiStrToLower(path.extension().string());
  return ext == ".jpeg" || ext == ".jpg" || ext == ".png";
}

// Orders paths as torchvision's sorted(os.walk(...)) then sorted(file names): by folder, then name.
bool walk_order(const std::string& a, const std::string& b) {
  const size_t slash_a = a.rfind('/'), slash_b = b.rfind('/');
  const std::string_view dir_a =
      slash_a == std::string::npos ? "" : std::string_view(a).substr(0, slash_a);
  const std::string_view dir_b =
      slash_b == std::string::npos ? "" : std::string_view(b).substr(0, slash_b);
  if (dir_a != dir_b) return dir_a < dir_b;
  return a < b;
}

// Image files under `dir` (recursively, following links), as paths relative to `base` in
// walk_order.
absl::StatusOr<std::vector<std::string>> list_images(const fs::path& dir, const fs::path& base) {
  std::vector<std::string> images;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code entry_ec;  // a broken link is no image, not a failed listing
    if (it->is_regular_file(entry_ec) && is_image_name(it->path())) {
      images.push_back(it->path().lexically_relative(base).generic_string());
    }
  }
  if (ec)
    return absl::UnavailableError(absl::StrCat("cannot list '", dir.string(), "': ", ec.message()));
  std::sort(images.begin(), images.end(), walk_order);
  return images;
}

// Names of the sub-folders of `dir`, sorted.
absl::StatusOr<std::vector<std::string>> list_folders(const fs::path& dir) {
  std::vector<std::string> folders;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::error_code entry_ec;
    if (it->is_directory(entry_ec)) folders.push_back(it->path().filename().string());
  }
  if (ec)
    return absl::UnavailableError(absl::StrCat("cannot list '", dir.string(), "': ", ec.message()));
  std::sort(folders.begin(), folders.end());
  return folders;
}

bool is_folder(const fs::path& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

struct Listing {
  std::vector<std::string> classes;
  std::vector<std::string> images;  // relative to the split folder
  std::vector<int32_t> labels;
};

absl::StatusOr<Listing> list_class_folders(const fs::path& split_dir) {
  Listing listing;
  OMPQ_ASSIGN_OR_RETURN(listing.classes, list_folders(split_dir));
  if (listing.classes.empty()) {
    OMPQ_ASSIGN_OR_RETURN(std::vector<std::string> loose, list_images(split_dir, split_dir));
    if (loose.empty()) {
      return absl::NotFoundError(absl::StrCat("no images in '", split_dir.string(),
                                              "' (expected class folders <wnid>/ holding ",
                                              kImageKinds, " files)"));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "'", split_dir.string(), "' holds ", loose.size(),
        " images but no class folders: the flat layout needs a label file (see data/imagenet.h)"));
  }
  std::vector<std::string> empty;
  for (size_t c = 0; c < listing.classes.size(); ++c) {
    OMPQ_ASSIGN_OR_RETURN(std::vector<std::string> images,
                          list_images(split_dir / listing.classes[c], split_dir));
    if (images.empty()) empty.push_back(listing.classes[c]);
    listing.images.insert(listing.images.end(), images.begin(), images.end());
    listing.labels.insert(listing.labels.end(), images.size(), static_cast<int32_t>(c));
  }
  if (!empty.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "class folder '", (split_dir / empty[0]).string(), "' holds no ", kImageKinds, " image (",
        empty.size(), " of ", listing.classes.size(), " class folders are empty)"));
  }
  return listing;
}

struct LabelLine {
  std::string label;  // as written: a wnid or a class index
  int64_t line;
  int32_t index = -1;  // the class it names
};

absl::StatusOr<Listing> list_with_label_file(const fs::path& root, const fs::path& split_dir,
                                             const std::string& label_file) {
  std::ifstream in(label_file);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open label file '", label_file, "'"));
  auto bad_line = [&label_file](int64_t line, auto&&... parts) {
    return absl::InvalidArgumentError(
        absl::StrCat("label file '", label_file, "' line ", line, ": ", parts...));
  };
  // By file, in the order of the examples.
  std::map<std::string, LabelLine, decltype(&walk_order)> lines(walk_order);
  std::string text;
  bool numeric = false;
  for (int64_t number = 1; std::getline(in, text); ++number) {
    std::vector<std::string> fields =
        absl::StrSplit(text, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    if (fields.size() != 2) {
      return bad_line(number, "expected '<file> <wnid or class index>', got '", text, "'");
    }
    const bool is_index = std::all_of(fields[1].begin(), fields[1].end(), absl::ascii_isdigit);
    if (lines.empty()) numeric = is_index;
    if (is_index != numeric) {
      return bad_line(number, "'", fields[1], "' mixes ", is_index ? "a class index" : "a wnid",
                      " into a file of ", numeric ? "class indices" : "wnids");
    }
    auto [it, added] = lines.emplace(fields[0], LabelLine{fields[1], number});
    if (!added) {
      return bad_line(number, "'", fields[0], "' is already labelled on line ", it->second.line);
    }
  }

  Listing listing;
  std::string class_source = "the label file";
  if (is_folder(root / "train")) {
    OMPQ_ASSIGN_OR_RETURN(listing.classes, list_folders(root / "train"));
    if (!listing.classes.empty()) class_source = (root / "train").string();
  }
  if (listing.classes.empty() && !numeric) {
    for (const auto& [file, label] : lines) listing.classes.push_back(label.label);
    std::sort(listing.classes.begin(), listing.classes.end());
    listing.classes.erase(std::unique(listing.classes.begin(), listing.classes.end()),
                          listing.classes.end());
  }
  std::unordered_map<std::string, int32_t> class_index;
  for (size_t c = 0; c < listing.classes.size(); ++c) class_index[listing.classes[c]] = c;
  const bool count_from_indices = listing.classes.empty();  // indices, no train folder
  int64_t max_index = -1;
  for (auto& [file, label] : lines) {
    if (!numeric) {
      auto found = class_index.find(label.label);
      if (found == class_index.end()) {
        return bad_line(label.line, "class '", label.label, "' is not among the ",
                        listing.classes.size(), " classes of ", class_source);
      }
      label.index = found->second;
      continue;
    }
    int64_t index = 0;
    if (!absl::SimpleAtoi(label.label, &index) || index >= kMaxClassIndex) {
      return bad_line(label.line, "class index ", label.label, " is too large (expected < ",
                      kMaxClassIndex, ")");
    }
    if (!count_from_indices && index >= static_cast<int64_t>(listing.classes.size())) {
      return bad_line(label.line, "class index ", index, " is outside [0, ", listing.classes.size(),
                      ") (classes of ", class_source, ")");
    }
    label.index = static_cast<int32_t>(index);
    max_index = std::max(max_index, index);
  }
  for (int64_t c = 0; count_from_indices && c <= max_index; ++c) {
    listing.classes.push_back(std::to_string(c));
  }

  OMPQ_ASSIGN_OR_RETURN(std::vector<std::string> images, list_images(split_dir, split_dir));
  if (images.empty() && lines.empty()) {
    return absl::NotFoundError(absl::StrCat("no images in '", split_dir.string(),
                                            "' and no lines in label file '", label_file, "'"));
  }
  // Both lists are sorted: walk them together.
  auto line = lines.begin();
  for (size_t i = 0; i <= images.size(); ++i) {
    const bool image_left = i < images.size();
    if (line != lines.end() && (!image_left || walk_order(line->first, images[i]))) {
      return bad_line(line->second.line, "no ", kImageKinds, " image '", line->first, "' in '",
                      split_dir.string(), "'");
    }
    if (!image_left) break;
    if (line == lines.end() || walk_order(images[i], line->first)) {
      return absl::InvalidArgumentError(absl::StrCat("image '", (split_dir / images[i]).string(),
                                                     "' has no line in label file '", label_file,
                                                     "'"));
    }
    listing.images.push_back(images[i]);
    listing.labels.push_back(line->second.index);
    ++line;
  }
  return listing;
}

absl::StatusOr<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return absl::NotFoundError("cannot open the file");
  std::string bytes(static_cast<size_t>(in.tellg()), '\0');
  in.seekg(0);
  if (!in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()))) {
    return absl::DataLossError("cannot read the file");
  }
  return bytes;
}

}  // namespace

ImageFolderOptions imagenet_options(const std::string& root, const std::string& split,
                                    const std::string& label_file) {
  ImageFolderOptions options;
  options.root = root;
  options.split = split;
  options.label_file = label_file;
  options.transform.mode =
      split == "train" ? ImageTransformMode::kTrain : ImageTransformMode::kEval;
  return options;
}

absl::StatusOr<std::unique_ptr<ImageFolderDataset>> ImageFolderDataset::open(
    const ImageFolderOptions& options) {
  OMPQ_RETURN_IF_ERROR(check_transform_options(options.transform));
  const fs::path root(options.root);
  if (!is_folder(root)) {
    return absl::NotFoundError(
        absl::StrCat("image folder root '", options.root, "' is not a folder"));
  }
  const fs::path split_dir = root / options.split;
  if (!is_folder(split_dir)) {
    return absl::NotFoundError(absl::StrCat("split folder '", split_dir.string(),
                                            "' does not exist (expected ", options.root, "/",
                                            options.split, "/<wnid>/*.JPEG)"));
  }
  OMPQ_ASSIGN_OR_RETURN(Listing listing,
                        options.label_file.empty()
                            ? list_class_folders(split_dir)
                            : list_with_label_file(root, split_dir, options.label_file));
  std::string names;
  std::vector<uint64_t> name_ends;
  name_ends.reserve(listing.images.size());
  for (const std::string& image : listing.images) {
    names += image;
    name_ends.push_back(names.size());
  }
  return std::unique_ptr<ImageFolderDataset>(
      new ImageFolderDataset(options, split_dir.string(), std::move(listing.classes),
                             std::move(names), std::move(name_ends), std::move(listing.labels)));
}

ImageFolderDataset::ImageFolderDataset(ImageFolderOptions options, std::string split_dir,
                                       std::vector<std::string> classes, std::string names,
                                       std::vector<uint64_t> name_ends, std::vector<int32_t> labels)
    : options_(std::move(options)),
      split_dir_(std::move(split_dir)),
      classes_(std::move(classes)),
      names_(std::move(names)),
      name_ends_(std::move(name_ends)),
      labels_(std::move(labels)) {}

Shape ImageFolderDataset::input_shape() const {
  return {3, options_.transform.size, options_.transform.size};
}

std::string ImageFolderDataset::name() const {
  return absl::StrCat("image folder '", split_dir_, "' (", size(), " images, ", num_classes(),
                      " classes)");
}

std::string ImageFolderDataset::path(int64_t index) const {
  OMPQ_CHECK(index >= 0 && index < size(), name(), ": index ", index, " is out of range");
  const uint64_t begin = index == 0 ? 0 : name_ends_[index - 1];
  return absl::StrCat(split_dir_, "/", names_.substr(begin, name_ends_[index] - begin));
}

int64_t ImageFolderDataset::skipped_images() const {
  std::lock_guard<std::mutex> lock(unreadable_mu_);
  return static_cast<int64_t>(unreadable_.size());
}

absl::StatusOr<Tensor> ImageFolderDataset::read(int64_t index, uint64_t sample_seed) const {
  OMPQ_ASSIGN_OR_RETURN(std::string bytes, read_file(path(index)));
  Generator rng(sample_seed);
  return transform_image(bytes, options_.transform, rng);
}

void ImageFolderDataset::note_unreadable(int64_t index, const absl::Status& why) const {
  std::lock_guard<std::mutex> lock(unreadable_mu_);
  if (!unreadable_.insert(index).second) return;
  std::fprintf(stderr,
               "ompq: skipping unreadable image '%s': %s (%zu skipped so far; its examples load "
               "the next readable image)\n",
               path(index).c_str(), std::string(why.message()).c_str(), unreadable_.size());
}

Example ImageFolderDataset::load(int64_t index, Generator& rng) const {
  // Every candidate starts from the example's own seed, so a substitute is exactly what
  // get(substitute, sample_seed) would give.
  const uint64_t sample_seed = rng.seed();
  for (int64_t attempt = 0; attempt < size(); ++attempt) {
    const int64_t candidate = (index + attempt) % size();
    absl::StatusOr<Tensor> input = read(candidate, sample_seed);
    if (input.ok()) return Example{*std::move(input), labels_[candidate]};
    OMPQ_CHECK(!options_.strict, "unreadable image '", path(candidate),
               "': ", input.status().message(), " (strict mode: unreadable images are fatal)");
    note_unreadable(candidate, input.status());
  }
  throw Error(absl::StrCat(name(), ": none of its images is readable"));
}

}  // namespace ompq::data
