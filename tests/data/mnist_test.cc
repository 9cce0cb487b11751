#include "data/mnist.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <numeric>
#include <tuple>

#include "tests/data/idx_files.h"

namespace ompq::data {
namespace {

using ::testing::HasSubstr;
using testing::idx_u8;
using testing::ScopedTempDir;
using testing::write_file;

// Pixel (y, x) of generated image n; not affine in (y, x), so resampling is really exercised.
uint8_t pixel(int n, int y, int x) { return static_cast<uint8_t>((13 * y + 7 * x + 31 * n) % 251); }

std::vector<uint8_t> images(int count) {
  std::vector<uint8_t> values;
  for (int n = 0; n < count; ++n) {
    for (int y = 0; y < 28; ++y) {
      for (int x = 0; x < 28; ++x) values.push_back(pixel(n, y, x));
    }
  }
  return values;
}

float normalized(uint8_t p) { return (p / 255.0f - kFashionMnistMean) / kFashionMnistStd; }

// A folder with a 3-image train split (plain files) and a 2-image test split (gzipped).
class MnistFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_.path().string();
    write("train-images-idx3-ubyte", idx_u8({3, 28, 28}, images(3)), false);
    write("train-labels-idx1-ubyte", idx_u8({3}, {4, 0, 9}), false);
    write("t10k-images-idx3-ubyte.gz", idx_u8({2, 28, 28}, images(2)), true);
    write("t10k-labels-idx1-ubyte.gz", idx_u8({2}, {7, 1}), true);
  }
  void write(const std::string& name, const std::string& bytes, bool gzip) {
    write_file(dir_ + "/" + name, bytes, gzip);
  }
  MnistOptions options(Split split = Split::kTrain) const {
    MnistOptions o;
    o.folder = dir_;
    o.split = split;
    return o;
  }
  absl::Status open_error(const MnistOptions& o) { return MnistDataset::open(o).status(); }
  ScopedTempDir temp_;
  std::string dir_;
};

TEST_F(MnistFolderTest, LoadsNormalizedImagesAndLabels) {
  auto train = MnistDataset::open(options());
  ASSERT_TRUE(train.ok()) << train.status();
  const Dataset& ds = **train;
  EXPECT_EQ(ds.size(), 3);
  EXPECT_EQ(ds.num_classes(), 10);
  EXPECT_EQ(ds.input_shape(), (Shape{1, 28, 28}));
  EXPECT_THAT(ds.name(), HasSubstr(dir_));
  Example e = ds.get(2);
  EXPECT_EQ(e.label, 9);
  ASSERT_EQ(e.input.shape(), (Shape{1, 28, 28}));
  std::vector<float> v = e.input.to_vector<float>();
  for (int y = 0; y < 28; ++y) {
    for (int x = 0; x < 28; ++x) ASSERT_NEAR(v[y * 28 + x], normalized(pixel(2, y, x)), 1e-6f);
  }

  auto test = MnistDataset::open(options(Split::kTest));
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ((*test)->size(), 2);
  EXPECT_EQ((*test)->get(0).label, 7);
  EXPECT_EQ((*test)->get(1).label, 1);
}

TEST_F(MnistFolderTest, AppliesMeanAndStd) {
  MnistOptions o = options();
  o.mean = kMnistMean;
  o.std = kMnistStd;
  auto ds = MnistDataset::open(o);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_NEAR((*ds)->get(1).input.to_vector<float>()[5],
              (pixel(1, 0, 5) / 255.0f - kMnistMean) / kMnistStd, 1e-6f);
}

TEST_F(MnistFolderTest, PadsTo32AndReplicatesChannels) {
  MnistOptions o = options();
  o.image_size = 32;
  o.channels = 3;
  auto ds = MnistDataset::open(o);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ((*ds)->input_shape(), (Shape{3, 32, 32}));
  std::vector<float> v = (*ds)->get(1).input.to_vector<float>();
  ASSERT_EQ(v.size(), 3u * 32 * 32);
  const float black = normalized(0);
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < 32; ++y) {
      for (int x = 0; x < 32; ++x) {
        bool inside = y >= 2 && y < 30 && x >= 2 && x < 30;
        float expected = inside ? normalized(pixel(1, y - 2, x - 2)) : black;
        ASSERT_NEAR(v[(c * 32 + y) * 32 + x], expected, 1e-6f) << c << " " << y << " " << x;
      }
    }
  }
}

// Golden values: torch 1.13, F.interpolate(img / 255, size, mode="bilinear",
// align_corners=False), then (x - 0.2860) / 0.3530, for image 0 of pixel().
TEST_F(MnistFolderTest, ResizesBilinearLikePyTorch) {
  struct Case {
    int64_t size;
    std::vector<std::tuple<int, int, float>> points;
  };
  const Case cases[] = {
      {32,
       {{0, 0, -0.8101983666f},
        {0, 31, 1.2894518375f},
        {5, 7, 0.2840637565f},
        {17, 30, 0.5770704746f},
        {31, 31, -0.3880464733f},
        {16, 16, -0.5019164086f}}},
      {14,
       {{0, 0, -0.6991057992f},
        {0, 13, 1.3227796555f},
        {5, 7, 1.8338055611f},
        {8, 12, 0.6895518303f},
        {13, 13, -0.4991391003f},
        {7, 7, -0.3769372106f}}},
  };
  for (const Case& c : cases) {
    MnistOptions o = options();
    o.image_size = c.size;
    o.resize = true;
    auto ds = MnistDataset::open(o);
    ASSERT_TRUE(ds.ok()) << ds.status();
    std::vector<float> v = (*ds)->get(0).input.to_vector<float>();
    ASSERT_EQ(static_cast<int64_t>(v.size()), c.size * c.size);
    for (auto [y, x, expected] : c.points) {
      EXPECT_NEAR(v[y * c.size + x], expected, 2e-5f)
          << "size " << c.size << " at " << y << "," << x;
    }
  }
}

TEST_F(MnistFolderTest, ReportsMissingFolderAndFiles) {
  MnistOptions o = options();
  o.folder = dir_ + "/nowhere";
  absl::Status s = open_error(o);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("nowhere' does not exist"));
  EXPECT_THAT(s.message(), HasSubstr("dataset-fashion-mnist"));

  std::filesystem::remove(dir_ + "/t10k-labels-idx1-ubyte.gz");
  s = open_error(options(Split::kTest));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(),
              HasSubstr("neither t10k-labels-idx1-ubyte nor t10k-labels-idx1-ubyte.gz found"));
}

TEST_F(MnistFolderTest, RejectsCountMismatch) {
  write("train-labels-idx1-ubyte", idx_u8({2}, {4, 0}), false);
  EXPECT_THAT(open_error(options()).message(),
              HasSubstr("train-images-idx3-ubyte' holds 3 images but"));
}

TEST_F(MnistFolderTest, RejectsLabelOutOfRange) {
  write("train-labels-idx1-ubyte", idx_u8({3}, {4, 10, 9}), false);
  absl::Status s = open_error(options());
  EXPECT_THAT(s.message(),
              HasSubstr("train-labels-idx1-ubyte': label 10 at index 1 is outside 0..9"));
}

TEST_F(MnistFolderTest, RejectsImageShape) {
  write("train-images-idx3-ubyte", idx_u8({3, 27, 28}, std::vector<uint8_t>(3 * 27 * 28)), false);
  EXPECT_THAT(open_error(options()).message(),
              HasSubstr("holds u8 of shape [3, 27, 28] (expected u8 [N, 28, 28])"));
  write("train-images-idx3-ubyte", idx_u8({3 * 28 * 28}, images(3)), false);
  EXPECT_THAT(open_error(options()).message(), HasSubstr("(expected u8 [N, 28, 28])"));
}

TEST_F(MnistFolderTest, ReportsCorruptFileByName) {
  write("train-images-idx3-ubyte", idx_u8({3, 28, 28}, images(3)).substr(0, 100), false);
  absl::Status s = open_error(options());
  EXPECT_THAT(s.message(), HasSubstr("train-images-idx3-ubyte"));
  EXPECT_THAT(s.message(), HasSubstr("truncated data"));
}

TEST_F(MnistFolderTest, RejectsBadOptions) {
  MnistOptions o = options();
  o.channels = 2;
  EXPECT_THAT(open_error(o).message(), HasSubstr("channels = 2 (expected 1 or 3)"));
  o = options();
  o.image_size = 20;
  EXPECT_THAT(open_error(o).message(), HasSubstr("image_size = 20 is below 28"));
  o = options();
  o.std = 0.0f;
  EXPECT_THAT(open_error(o).message(), HasSubstr("std = 0 (expected > 0)"));
}

TEST_F(MnistFolderTest, GetRejectsIndexOutOfRange) {
  auto ds = MnistDataset::open(options());
  ASSERT_TRUE(ds.ok()) << ds.status();
  try {
    (*ds)->get(3);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("MNIST-format train split"));
    EXPECT_THAT(e.what(), HasSubstr("index 3 is out of range [0, 3)"));
  }
}

// The real Fashion-MNIST files (Debian dataset-fashion-mnist). Golden values read once with
// python3 (gzip + numpy) from the same files.
class FashionMnistTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::is_directory(kFashionMnistFolder)) {
      GTEST_SKIP() << kFashionMnistFolder << " is missing (Debian package dataset-fashion-mnist)";
    }
  }
  static std::unique_ptr<MnistDataset> open(Split split) {
    MnistOptions o;
    o.split = split;
    auto ds = MnistDataset::open(o);
    EXPECT_TRUE(ds.ok()) << ds.status();
    return ds.ok() ? std::move(*ds) : nullptr;
  }
  // Image pixels back from normalized values.
  static std::vector<int> pixels(const Example& e) {
    std::vector<int> out;
    for (float v : e.input.to_vector<float>()) {
      out.push_back(
          static_cast<int>(std::lround((v * kFashionMnistStd + kFashionMnistMean) * 255)));
    }
    return out;
  }
};

TEST_F(FashionMnistTest, TrainSplitMatchesKnownValues) {
  auto ds = open(Split::kTrain);
  ASSERT_NE(ds, nullptr);
  EXPECT_EQ(ds->size(), 60000);
  const int64_t first_labels[] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
  for (int i = 0; i < 10; ++i) EXPECT_EQ(ds->get(i).label, first_labels[i]) << i;
  EXPECT_EQ(ds->get(59999).label, 5);
  std::vector<int> p = pixels(ds->get(0));
  EXPECT_EQ(std::accumulate(p.begin(), p.end(), 0), 76247);
  const std::vector<int> row14 = {0,   0,   1,   4,   6,   7,   2,   0,   0,   0,
                                  0,   0,   237, 226, 217, 223, 222, 219, 222, 221,
                                  216, 223, 229, 215, 218, 255, 77,  0};
  EXPECT_EQ(std::vector<int>(p.begin() + 14 * 28, p.begin() + 15 * 28), row14);
  p = pixels(ds->get(59999));
  EXPECT_EQ(std::accumulate(p.begin(), p.end(), 0), 16684);
}

TEST_F(FashionMnistTest, TestSplitMatchesKnownValues) {
  auto ds = open(Split::kTest);
  ASSERT_NE(ds, nullptr);
  EXPECT_EQ(ds->size(), 10000);
  const int64_t first_labels[] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
  for (int i = 0; i < 10; ++i) EXPECT_EQ(ds->get(i).label, first_labels[i]) << i;
  std::vector<int> p = pixels(ds->get(0));
  EXPECT_EQ(std::accumulate(p.begin(), p.end(), 0), 33456);
  p = pixels(ds->get(9999));
  EXPECT_EQ(std::accumulate(p.begin(), p.end(), 0), 24390);
}

}  // namespace
}  // namespace ompq::data
