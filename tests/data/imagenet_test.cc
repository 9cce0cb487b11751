#include "data/imagenet.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "data/dataloader.h"
#include "tests/data/idx_files.h"
#include "tests/data/image_files.h"

namespace ompq::data {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using testing::encode_jpeg;
using testing::encode_png;
using ::testing::HasSubstr;
using testing::make_pixels;
using testing::ScopedTempDir;

// Small images on disk, each a different pattern (`seed`), in a per-test folder.
class ImageFolderTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = temp_.path().string(); }

  std::string jpeg(int seed) const {
    auto value = [seed](int64_t y, int64_t x, int64_t c) {
      return static_cast<uint8_t>((11 * y + 5 * x + 40 * c + 29 * seed) % 256);
    };
    return encode_jpeg(make_pixels(20, 24, 3, value), 20, 24, TJPF_RGB, TJSAMP_420, 90);
  }
  void write(const std::string& relative, const std::string& bytes) const {
    const fs::path path = fs::path(dir_) / relative;
    fs::create_directories(path.parent_path());
    testing::write_file(path.string(), bytes, /*gzip=*/false);
  }
  void mkdir(const std::string& relative) const {
    fs::create_directories(fs::path(dir_) / relative);
  }
  ImageFolderOptions options(const std::string& split, const std::string& label_file = "") const {
    ImageFolderOptions o =
        imagenet_options(dir_, split, label_file.empty() ? "" : path(label_file));
    o.transform.size = 16;
    o.transform.resize = 20;
    return o;
  }
  std::string path(const std::string& relative) const { return dir_ + "/" + relative; }
  std::unique_ptr<ImageFolderDataset> open(const ImageFolderOptions& o) const {
    absl::StatusOr<std::unique_ptr<ImageFolderDataset>> ds = ImageFolderDataset::open(o);
    EXPECT_TRUE(ds.ok()) << ds.status();
    return ds.ok() ? *std::move(ds) : nullptr;
  }
  std::string open_error(const ImageFolderOptions& o) const {
    absl::StatusOr<std::unique_ptr<ImageFolderDataset>> ds = ImageFolderDataset::open(o);
    return ds.ok() ? "opened" : std::string(ds.status().message());
  }
  // A train split of three classes, one image each.
  void write_train_classes() const {
    write("train/n01/t0.JPEG", jpeg(0));
    write("train/n02/t1.JPEG", jpeg(1));
    write("train/n03/t2.JPEG", jpeg(2));
  }
  void write_flat_val() const {
    write("val/v1.JPEG", jpeg(10));
    write("val/v2.JPEG", jpeg(11));
    write("val/v3.JPEG", jpeg(12));
  }

  ScopedTempDir temp_;
  std::string dir_;
};

std::vector<std::string> relative_paths(const ImageFolderDataset& ds, const std::string& base) {
  std::vector<std::string> paths;
  for (int64_t i = 0; i < ds.size(); ++i) paths.push_back(ds.path(i).substr(base.size() + 1));
  return paths;
}

std::vector<int64_t> labels(const ImageFolderDataset& ds) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < ds.size(); ++i) out.push_back(ds.label(i));
  return out;
}

TEST_F(ImageFolderTest, ClassesAreSortedFoldersAndImagesFollowTorchvisionsWalk) {
  write("train/n10/z.JPEG", jpeg(0));
  write("train/n10/notes.txt", "not an image, ignored");
  write("train/n02/b.JPEG", jpeg(1));
  write("train/n02/a.jpg", jpeg(2));
  write("train/n01/x.PNG",
        encode_png(make_pixels(20, 24, 3, testing::pattern_value), 20, 24, PNG_FORMAT_RGB));
  write("train/n01/sub/y.jpeg", jpeg(3));  // nested: after the files of n01/ itself
  fs::create_symlink(path("nowhere.JPEG"), path("train/n02/broken_link.JPEG"));  // not an image
  auto ds = open(options("train"));
  ASSERT_NE(ds, nullptr);
  EXPECT_THAT(ds->classes(), ElementsAre("n01", "n02", "n10"));
  EXPECT_EQ(ds->num_classes(), 3);
  EXPECT_THAT(relative_paths(*ds, path("train")),
              ElementsAre("n01/x.PNG", "n01/sub/y.jpeg", "n02/a.jpg", "n02/b.JPEG", "n10/z.JPEG"));
  EXPECT_THAT(labels(*ds), ElementsAre(0, 0, 1, 1, 2));
  EXPECT_THAT(ds->name(), HasSubstr("5 images, 3 classes"));
  EXPECT_EQ(ds->input_shape(), (Shape{3, 16, 16}));
}

TEST_F(ImageFolderTest, ExamplesAreTransformedImagesAndAPureFunctionOfTheSeed) {
  write_train_classes();
  write("val/n01/e0.JPEG", jpeg(5));
  write("train/n02/png_named_jpeg.JPEG",
        encode_png(make_pixels(20, 24, 3, testing::pattern_value), 20, 24, PNG_FORMAT_RGB));
  auto train = open(options("train"));
  ASSERT_NE(train, nullptr);
  for (int64_t i = 0; i < train->size(); ++i) {
    Example a = train->get(i, 99), b = train->get(i, 99);
    EXPECT_EQ(a.input.shape(), (Shape{3, 16, 16}));
    EXPECT_EQ(a.label, train->label(i));
    EXPECT_EQ(a.input.to_vector<float>(), b.input.to_vector<float>());
  }
  EXPECT_NE(train->get(0, 1).input.to_vector<float>(), train->get(0, 2).input.to_vector<float>());
  EXPECT_EQ(train->skipped_images(), 0);  // the PNG under a .JPEG name decodes

  auto val = open(options("val"));  // Resize + CenterCrop: no randomness
  ASSERT_NE(val, nullptr);
  EXPECT_EQ(val->get(0, 1).input.to_vector<float>(), val->get(0, 2).input.to_vector<float>());
}

TEST_F(ImageFolderTest, ImagenetOptionsPickTheRecipeBySplit) {
  EXPECT_EQ(imagenet_options("/r", "train").transform.mode, ImageTransformMode::kTrain);
  ImageFolderOptions val = imagenet_options("/r", "val", "/r/labels.txt");
  EXPECT_EQ(val.transform.mode, ImageTransformMode::kEval);
  EXPECT_EQ(val.transform.size, 224);
  EXPECT_EQ(val.transform.resize, 256);
  EXPECT_EQ(val.label_file, "/r/labels.txt");
  EXPECT_FALSE(val.strict);
}

TEST_F(ImageFolderTest, FlatValWithWnidLabelsTakesTheClassesOfTrain) {
  write_train_classes();
  write_flat_val();
  write("labels.txt", "v2.JPEG n03\nv1.JPEG n01\n\nv3.JPEG\tn03\n");
  auto val = open(options("val", "labels.txt"));
  ASSERT_NE(val, nullptr);
  EXPECT_THAT(val->classes(), ElementsAre("n01", "n02", "n03"));  // n02 has no val image
  EXPECT_THAT(relative_paths(*val, path("val")), ElementsAre("v1.JPEG", "v2.JPEG", "v3.JPEG"));
  EXPECT_THAT(labels(*val), ElementsAre(0, 2, 2));
  EXPECT_EQ(val->get(1).label, 2);
}

TEST_F(ImageFolderTest, FlatValWithIndexLabels) {
  write_train_classes();
  write_flat_val();
  write("labels.txt", "v1.JPEG 2\nv2.JPEG 0\nv3.JPEG 1\n");
  auto val = open(options("val", "labels.txt"));
  ASSERT_NE(val, nullptr);
  EXPECT_EQ(val->num_classes(), 3);
  EXPECT_THAT(labels(*val), ElementsAre(2, 0, 1));
}

TEST_F(ImageFolderTest, FlatValWithoutTrainTakesTheClassesOfTheLabelFile) {
  write_flat_val();
  write("wnids.txt", "v1.JPEG n05\nv2.JPEG n04\nv3.JPEG n05\n");
  write("indices.txt", "v1.JPEG 4\nv2.JPEG 0\nv3.JPEG 4\n");
  auto by_wnid = open(options("val", "wnids.txt"));
  ASSERT_NE(by_wnid, nullptr);
  EXPECT_THAT(by_wnid->classes(), ElementsAre("n04", "n05"));
  EXPECT_THAT(labels(*by_wnid), ElementsAre(1, 0, 1));
  auto by_index = open(options("val", "indices.txt"));
  ASSERT_NE(by_index, nullptr);
  EXPECT_EQ(by_index->num_classes(), 5);  // 0 up to the largest index
  EXPECT_THAT(labels(*by_index), ElementsAre(4, 0, 4));
}

TEST_F(ImageFolderTest, MissingFoldersAndMissingImagesAreOneClearErrorEach) {
  ImageFolderOptions o = options("train");
  o.root = path("absent");
  EXPECT_THAT(open_error(o),
              HasSubstr("image folder root '" + path("absent") + "' is not a folder"));
  EXPECT_THAT(open_error(options("train")),
              HasSubstr("split folder '" + path("train") + "' does not exist"));

  mkdir("train");
  EXPECT_THAT(open_error(options("train")), HasSubstr("no images in '" + path("train") + "'"));

  write("train/loose1.JPEG", jpeg(0));
  write("train/loose2.JPEG", jpeg(1));
  EXPECT_THAT(open_error(options("train")),
              HasSubstr("holds 2 images but no class folders: the flat layout needs a label file"));

  write("train/n01/a.JPEG", jpeg(0));
  mkdir("train/n02");
  write("train/n03/readme.txt", "no images here");
  EXPECT_THAT(open_error(options("train")),
              HasSubstr("class folder '" + path("train") +
                        "/n02' holds no .jpeg, .jpg or .png image (2 of 3 class folders are "
                        "empty)"));

  o = options("train");
  o.transform.size = 0;
  EXPECT_THAT(open_error(o), HasSubstr("image transform: size 0"));
}

TEST_F(ImageFolderTest, BadLabelFilesAreOneClearErrorEach) {
  write_train_classes();
  write_flat_val();
  const struct {
    const char* text;
    std::string message;
  } cases[] = {
      {"v1.JPEG n01\nv2.JPEG\n", "line 2: expected '<file> <wnid or class index>', got 'v2.JPEG'"},
      {"v1.JPEG n01 extra\n", "line 1: expected '<file> <wnid or class index>'"},
      {"v1.JPEG n01\nv2.JPEG n02\nv1.JPEG n03\n",
       "line 3: 'v1.JPEG' is already labelled on line 1"},
      {"v1.JPEG n01\nv2.JPEG 3\n", "line 2: '3' mixes a class index into a file of wnids"},
      {"v1.JPEG 0\nv2.JPEG n01\n", "line 2: 'n01' mixes a wnid into a file of class indices"},
      {"v1.JPEG n99\n", "line 1: class 'n99' is not among the 3 classes of " + path("train")},
      {"v1.JPEG 0\nv2.JPEG 3\n",
       "line 2: class index 3 is outside [0, 3) (classes of " + path("train") + ")"},
      {"v1.JPEG 99999999999999999999\n", "line 1: class index 99999999999999999999 is too large"},
      // Found by fuzzing: without the bound, 2147483647 made 2^31 class names.
      {"v1.JPEG 1000000\n", "line 1: class index 1000000 is too large (expected < 1000000)"},
      {"v1.JPEG n01\nv2.JPEG n01\nv3.JPEG n01\nv9.JPEG n02\n",
       "line 4: no .jpeg, .jpg or .png image 'v9.JPEG' in '" + path("val") + "'"},
      {"v1.JPEG n01\nv2.JPEG n01\n", "image '" + path("val") +
                                         "/v3.JPEG' has no line in label file '" +
                                         path("labels.txt") + "'"},
  };
  for (const auto& c : cases) {
    write("labels.txt", c.text);
    EXPECT_THAT(open_error(options("val", "labels.txt")), HasSubstr(c.message)) << c.text;
  }
  EXPECT_THAT(open_error(options("val", "absent.txt")),
              HasSubstr("cannot open label file '" + path("absent.txt") + "'"));
  mkdir("empty_val");
  write("empty.txt", "\n\n");
  EXPECT_THAT(open_error(options("empty_val", "empty.txt")),
              HasSubstr("no images in '" + path("empty_val") + "' and no lines in label file"));
}

// Train split with an unreadable image at index 1 (of 0..3).
class UnreadableImageTest : public ImageFolderTest {
 protected:
  void SetUp() override {
    ImageFolderTest::SetUp();
    write("train/n01/a.JPEG", jpeg(0));
    write("train/n01/b.JPEG", "definitely not a JPEG");
    write("train/n02/c.JPEG", jpeg(1));
    const std::string whole = encode_jpeg(make_pixels(200, 240, 3, testing::pattern_value), 200,
                                          240, TJPF_RGB, TJSAMP_420, 90);
    write("train/n02/d.JPEG", whole.substr(0, whole.size() / 2));  // cut in the image data
  }
};

TEST_F(UnreadableImageTest, DefaultSkipsToTheNextReadableImageCountsAndLogsOnce) {
  auto ds = open(options("train"));
  ASSERT_NE(ds, nullptr);
  ::testing::internal::CaptureStderr();
  Example substitute = ds->get(1, 42);
  const std::string log = ::testing::internal::GetCapturedStderr();
  Example next = ds->get(2, 42);
  EXPECT_EQ(substitute.label, 1);
  EXPECT_EQ(substitute.input.to_vector<float>(), next.input.to_vector<float>());
  EXPECT_THAT(log, HasSubstr("skipping unreadable image '" + path("train") + "/n01/b.JPEG'"));
  EXPECT_THAT(log, HasSubstr("neither JPEG nor PNG"));
  EXPECT_THAT(log, HasSubstr("1 skipped so far"));
  EXPECT_EQ(ds->skipped_images(), 1);

  // The truncated last image wraps around to the first.
  ::testing::internal::CaptureStderr();
  Example wrapped = ds->get(3, 42);
  const std::string log2 = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(wrapped.label, 0);
  EXPECT_EQ(wrapped.input.to_vector<float>(), ds->get(0, 42).input.to_vector<float>());
  EXPECT_THAT(log2, HasSubstr("n02/d.JPEG': bad JPEG data: Premature end of JPEG file"));
  EXPECT_EQ(ds->skipped_images(), 2);

  ::testing::internal::CaptureStderr();
  ds->get(1, 7);  // met again: counted and named once
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_EQ(ds->skipped_images(), 2);
}

TEST_F(UnreadableImageTest, BatchesKeepTheirSize) {
  DataLoaderOptions o;
  o.batch_size = 4;
  ::testing::internal::CaptureStderr();
  DataLoader loader(open(options("train")), o);
  std::vector<Batch> batches;
  for (Batch& b : loader.batches()) batches.push_back(std::move(b));
  ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].inputs.shape(), (Shape{4, 3, 16, 16}));
  EXPECT_THAT(batches[0].labels.to_vector<int64_t>(), ElementsAre(0, 1, 1, 0));
}

TEST_F(UnreadableImageTest, StrictModeIsFatalAndNamesTheFile) {
  ImageFolderOptions o = options("train");
  o.strict = true;
  auto ds = open(o);
  ASSERT_NE(ds, nullptr);
  EXPECT_THAT([&] { ds->get(1); },
              ::testing::ThrowsMessage<Error>(
                  AllOf(HasSubstr("unreadable image '" + path("train") + "/n01/b.JPEG'"),
                        HasSubstr("strict mode"))));
  EXPECT_EQ(ds->get(0).label, 0);
  DataLoader loader(std::move(ds), DataLoaderOptions());
  BatchStream stream = loader.batches();
  EXPECT_TRUE(stream.next().has_value());
  EXPECT_THAT([&] { stream.next(); },
              ::testing::ThrowsMessage<Error>(
                  AllOf(HasSubstr("loading example 1 of"), HasSubstr("/n01/b.JPEG'"))));
}

TEST_F(UnreadableImageTest, VanishedFileIsSkippedAndAllUnreadableIsAnError) {
  auto ds = open(options("train"));
  ASSERT_NE(ds, nullptr);
  fs::remove(path("train/n01/a.JPEG"));
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(ds->get(0).label, 1);  // a and b unreadable: c
  EXPECT_THAT(::testing::internal::GetCapturedStderr(), HasSubstr("a.JPEG': cannot open the file"));
  fs::remove(path("train/n02/c.JPEG"));
  ::testing::internal::CaptureStderr();
  EXPECT_THAT([&] { ds->get(0); },
              ::testing::ThrowsMessage<Error>(HasSubstr("none of its images is readable")));
  ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(ds->skipped_images(), 4);
}

}  // namespace
}  // namespace ompq::data
