// The label file of ImageNet's flat validation layout (data/imagenet.h) on any bytes: its lines,
// fields, wnids and class indices, checked against two fixed folders, one whose classes come
// from train/ class folders and one whose classes come from the label file itself. No image is
// read (open() only lists the split). A dataset that opens must label every image it lists with
// one of its classes.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "data/imagenet.h"
#include "tests/fuzz/fuzz_files.h"

namespace {

namespace fs = std::filesystem;

void touch(const fs::path& path) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path);
  if (!out) std::abort();
}

// root/val holds a.JPEG, b.jpg, sub/c.png and a file that is no image; with `train_classes`,
// root/train holds the class folders n01 and n02.
std::string make_root(const std::string& name, bool train_classes) {
  const fs::path root = ompq::fuzz::FuzzFolder::path() / name;
  for (const char* file : {"val/a.JPEG", "val/b.jpg", "val/sub/c.png", "val/notes.txt"}) {
    touch(root / file);
  }
  if (train_classes) {
    touch(root / "train/n01/x.JPEG");
    touch(root / "train/n02/y.JPEG");
  }
  return root.string();
}

void check_open(const std::string& root, const std::string& label_file) {
  absl::StatusOr<std::unique_ptr<ompq::data::ImageFolderDataset>> dataset =
      ompq::data::ImageFolderDataset::open(ompq::data::imagenet_options(root, "val", label_file));
  if (!dataset.ok()) return;
  const ompq::data::ImageFolderDataset& d = **dataset;
  if (d.size() != 3) std::abort();
  for (int64_t i = 0; i < d.size(); ++i) {
    if (d.label(i) < 0 || d.label(i) >= d.num_classes()) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string with_train = make_root("with_train", true);
  static const std::string flat_only = make_root("flat_only", false);
  const std::string label_file = ompq::fuzz::write_fuzz_file("labels.txt", data, size);
  check_open(with_train, label_file);
  check_open(flat_only, label_file);
  return 0;
}
