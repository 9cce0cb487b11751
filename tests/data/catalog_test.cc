// The data sets by name (data/catalog.h) and the slices of them that limits take (data/subset.h).
#include "data/catalog.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "data/imagenet.h"
#include "data/subset.h"
#include "tests/data/idx_files.h"
#include "tests/data/image_files.h"

namespace ompq::data {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

// Example i has input [i] and label i mod 3.
class Numbered : public Dataset {
 public:
  explicit Numbered(int64_t size) : size_(size) {}
  int64_t size() const override { return size_; }
  Shape input_shape() const override { return {1}; }
  int64_t num_classes() const override { return 3; }
  std::string name() const override { return "numbered"; }

 protected:
  Example load(int64_t index, Generator&) const override {
    return {Tensor::from_vector<float>({static_cast<float>(index)}, {1}), index % 3};
  }

 private:
  int64_t size_;
};

std::vector<float> pixels(const Example& example) { return example.input.to_vector<float>(); }

std::vector<float> inputs(const Dataset& dataset) {
  std::vector<float> values;
  for (int64_t i = 0; i < dataset.size(); ++i) values.push_back(dataset.get(i).input.item<float>());
  return values;
}

TEST(Subset, FirstTakesThePrefixAndSpreadTakesEvenlySpacedExamples) {
  auto base = std::make_shared<Numbered>(10);
  Subset first(base, 4, SubsetSpacing::kFirst);
  EXPECT_EQ(inputs(first), (std::vector<float>{0, 1, 2, 3}));
  EXPECT_THAT(first.name(), HasSubstr("first 4 of numbered"));
  Subset spread(base, 4, SubsetSpacing::kSpread);
  EXPECT_EQ(inputs(spread), (std::vector<float>{0, 2, 5, 7}));
  EXPECT_THAT(spread.name(), HasSubstr("4 spread over numbered"));
  EXPECT_EQ(inputs(Subset(base, 10, SubsetSpacing::kSpread)), inputs(*base));
  EXPECT_EQ(&spread.base(), base.get());
  EXPECT_THROW(Subset(base, 11, SubsetSpacing::kFirst), Error);
  EXPECT_THROW(Subset(base, -1, SubsetSpacing::kSpread), Error);
}

TEST(DatasetKind, NamesAreTheCommandLines) {
  EXPECT_STREQ(dataset_kind_name(DatasetKind::kFashionMnist), "fashion_mnist");
  EXPECT_STREQ(dataset_kind_name(DatasetKind::kMnist), "mnist");
  EXPECT_STREQ(dataset_kind_name(DatasetKind::kImageNet), "imagenet");
}

class ImageFolderCatalogTest : public ::testing::Test {
 protected:
  void write_jpeg(const std::string& relative, int seed) const {
    auto value = [seed](int64_t y, int64_t x, int64_t c) {
      return static_cast<uint8_t>((7 * y + 3 * x + 50 * c + 31 * seed) % 256);
    };
    const fs::path path = temp_.path() / relative;
    fs::create_directories(path.parent_path());
    testing::write_file(path.string(),
                        testing::encode_jpeg(testing::make_pixels(40, 48, 3, value), 40, 48,
                                             TJPF_RGB, TJSAMP_420, 90),
                        /*gzip=*/false);
  }
  void write_split(const std::string& split, const std::vector<std::string>& classes) const {
    int seed = 0;
    for (const std::string& wnid : classes) {
      write_jpeg(split + "/" + wnid + "/a.JPEG", seed++);
      write_jpeg(split + "/" + wnid + "/b.JPEG", seed++);
    }
  }
  DatasetRequest request(DatasetUse use) const {
    DatasetRequest r;
    r.kind = DatasetKind::kImageNet;
    r.dir = temp_.path().string();
    r.input = {3, 32, 32};
    r.model = "resnet18";
    r.use = use;
    return r;
  }
  std::shared_ptr<const Dataset> open(DatasetUse use) const {
    absl::StatusOr<std::shared_ptr<const Dataset>> dataset = open_dataset(request(use));
    EXPECT_TRUE(dataset.ok()) << dataset.status();
    return dataset.ok() ? *dataset : nullptr;
  }

  testing::ScopedTempDir temp_;
};

TEST_F(ImageFolderCatalogTest, EachUseReadsItsSplitWithItsTransform) {
  write_split("train", {"n01", "n02"});
  write_split("val", {"n01", "n02"});
  std::shared_ptr<const Dataset> training = open(DatasetUse::kTraining);
  std::shared_ptr<const Dataset> search = open(DatasetUse::kSearch);
  std::shared_ptr<const Dataset> eval = open(DatasetUse::kEval);
  ASSERT_TRUE(training && search && eval);
  EXPECT_THAT(training->name(), HasSubstr("/train"));
  EXPECT_THAT(search->name(), HasSubstr("/train"));
  EXPECT_THAT(eval->name(), HasSubstr("/val"));
  EXPECT_EQ(training->input_shape(), (Shape{3, 32, 32}));
  EXPECT_EQ(training->num_classes(), 2);
  // Evaluation is deterministic (a centre crop); training crops differ by sample seed, and the
  // search's crop ranges differ from training's, so the same seed crops differently.
  EXPECT_EQ(pixels(eval->get(0, 1)), pixels(eval->get(0, 2)));
  bool training_crops_differ = false, search_crops_differ = false;
  for (uint64_t seed = 1; seed < 8; ++seed) {
    training_crops_differ |= pixels(training->get(0, 0)) != pixels(training->get(0, seed));
    search_crops_differ |= pixels(training->get(0, seed)) != pixels(search->get(0, seed));
  }
  EXPECT_TRUE(training_crops_differ);
  EXPECT_TRUE(search_crops_differ);
  EXPECT_TRUE(check_same_classes(*training, *eval).ok());
  EXPECT_EQ(skipped_images(*training), 0);
}

TEST_F(ImageFolderCatalogTest, WithoutAugmentationEveryUseReadsTheWholeImageScaled) {
  write_split("train", {"n01"});
  write_split("val", {"n01"});
  DatasetRequest plain = request(DatasetUse::kTraining);
  plain.augment = false;
  absl::StatusOr<std::shared_ptr<const Dataset>> training = open_dataset(plain);
  ASSERT_TRUE(training.ok()) << training.status();
  // The same pixels whatever the sample seed: no crop, no flip.
  EXPECT_EQ(pixels((*training)->get(0, 1)), pixels((*training)->get(0, 2)));
  // Scaled as a whole: the 40x48 image's centre 40x40 square resized to 32 px, not the 36-px
  // resize of evaluation's crop.
  ImageFolderOptions whole = imagenet_options(temp_.path().string(), "train");
  whole.transform.mode = ImageTransformMode::kEval;
  whole.transform.size = 32;
  whole.transform.resize = 32;
  absl::StatusOr<std::unique_ptr<ImageFolderDataset>> expected = ImageFolderDataset::open(whole);
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(pixels((*training)->get(1, 0)), pixels((*expected)->get(1, 0)));
  DatasetRequest plain_eval = request(DatasetUse::kEval);
  plain_eval.augment = false;
  whole.split = "val";
  absl::StatusOr<std::shared_ptr<const Dataset>> eval = open_dataset(plain_eval);
  absl::StatusOr<std::unique_ptr<ImageFolderDataset>> expected_eval =
      ImageFolderDataset::open(whole);
  ASSERT_TRUE(eval.ok() && expected_eval.ok());
  EXPECT_EQ(pixels((*eval)->get(1, 0)), pixels((*expected_eval)->get(1, 0)));
}

TEST_F(ImageFolderCatalogTest, ClassesThatDifferBetweenSplitsNameTheFirstDifference) {
  write_split("train", {"n01", "n02", "n03"});
  write_split("val", {"n01", "n02", "n04"});
  absl::Status status = check_same_classes(*open(DatasetUse::kTraining), *open(DatasetUse::kEval));
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("differ"), HasSubstr("'n03' is only in the first")));
  // A limit's Subset is seen through: the whole folders are compared.
  status = check_same_classes(Subset(open(DatasetUse::kTraining), 2, SubsetSpacing::kFirst),
                              Subset(open(DatasetUse::kEval), 2, SubsetSpacing::kSpread));
  EXPECT_THAT(std::string(status.message()), HasSubstr("'n03' is only in the first"));
  write_split("val", {"n03"});  // val: n01..n04
  status = check_same_classes(*open(DatasetUse::kTraining), *open(DatasetUse::kEval));
  EXPECT_THAT(std::string(status.message()), HasSubstr("'n04' is only in the second"));
}

TEST_F(ImageFolderCatalogTest, BadRequestsAreOneClearErrorEach) {
  write_split("train", {"n01"});
  DatasetRequest no_val = request(DatasetUse::kEval);
  EXPECT_THAT(std::string(open_dataset(no_val).status().message()),
              AllOf(HasSubstr("/val"), HasSubstr("does not exist")));
  DatasetRequest gray = request(DatasetUse::kTraining);
  gray.input = {1, 28, 28};
  gray.model = "fashion_cnn";
  EXPECT_THAT(std::string(open_dataset(gray).status().message()),
              AllOf(HasSubstr("fashion_cnn takes input [1, 28, 28]"), HasSubstr("[3, S, S]")));
  DatasetRequest no_dir = request(DatasetUse::kTraining);
  no_dir.dir.clear();
  EXPECT_THAT(std::string(open_dataset(no_dir).status().message()),
              HasSubstr("imagenet needs a data folder"));
  fs::create_directories(temp_.path() / "train" / "n02");
  EXPECT_FALSE(open_dataset(request(DatasetUse::kTraining)).ok());  // an empty class folder
}

}  // namespace
}  // namespace ompq::data
