// safetensors I/O: round trips of every dtype, atomic saves, the torch-written golden file, and one
// test per malformed file, each crafted byte by byte.
#include "core/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace ompq {
namespace {

using ::testing::HasSubstr;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("ompq_safetensors_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Writes the 8-byte little-endian `header_length` (the header's size unless given), the header
  // and the data section, and returns the file's path.
  std::string craft(const std::string& header, const std::string& data = "",
                    int64_t header_length = -1) {
    uint64_t n = header_length < 0 ? header.size() : static_cast<uint64_t>(header_length);
    std::string bytes;
    for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
    return write_raw(bytes + header + data);
  }

  std::string write_raw(const std::string& bytes) {
    std::string p = path("crafted.safetensors");
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }

  // Loads `p` and expects an error whose message names the file and contains `problem`.
  void expect_error(const std::string& p, const std::string& problem) {
    absl::StatusOr<SafetensorsContents> loaded = load_safetensors(p);
    ASSERT_FALSE(loaded.ok()) << "loading a bad file succeeded";
    EXPECT_THAT(std::string(loaded.status().message()), HasSubstr(p));
    EXPECT_THAT(std::string(loaded.status().message()), HasSubstr(problem));
  }

  std::filesystem::path dir_;
};

std::string bytes_of(const Tensor& t) {
  Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.nbytes());
}

TEST_F(SafetensorsTest, RoundTripsEveryDtypeAndMetadata) {
  TensorMap tensors;
  tensors["f32"] = Tensor::from_vector<float>({1.5f, -2.25f, 3e-8f, 1e30f, 0.f, -0.f}, {2, 3});
  tensors["f64"] = Tensor::from_vector<double>({1.0 / 3.0, -1e-300}, {2});
  tensors["bf16"] = Tensor::from_vector<bf16>({float_to_bf16(1.5f), float_to_bf16(-3.0f)}, {2, 1});
  tensors["f16"] = Tensor::from_vector<f16>({float_to_f16(0.5f)}, {1});
  tensors["i8"] = Tensor::from_vector<int8_t>({-128, 127, 5}, {3});
  tensors["u8"] = Tensor::from_vector<uint8_t>({0, 255}, {1, 2});
  tensors["i32"] = Tensor::from_vector<int32_t>({INT32_MIN, INT32_MAX}, {2});
  tensors["i64"] = Tensor::from_vector<int64_t>({(int64_t{1} << 53) + 1}, {});
  tensors["empty"] = Tensor::zeros({0, 4});
  // A transposed view: saved in logical (row-major) order.
  tensors["transposed"] = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3}).t();
  MetadataMap metadata = {{"epoch", "3"}, {"format", "pt"}};

  std::string p = path("all.safetensors");
  ASSERT_TRUE(save_safetensors(p, tensors, metadata).ok());
  absl::StatusOr<SafetensorsContents> loaded = load_safetensors(p);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->metadata, metadata);
  ASSERT_EQ(loaded->tensors.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    const Tensor& back = loaded->tensors.at(name);
    EXPECT_EQ(back.dtype(), t.dtype()) << name;
    EXPECT_EQ(back.shape(), t.shape()) << name;
    EXPECT_TRUE(back.is_contiguous()) << name;
    EXPECT_EQ(bytes_of(back), bytes_of(t)) << name;
  }
  EXPECT_EQ(loaded->tensors.at("transposed").to_vector<float>(),
            (std::vector<float>{1, 4, 2, 5, 3, 6}));
}

TEST_F(SafetensorsTest, HeaderIsPaddedToEightBytes) {
  std::string p = path("pad.safetensors");
  ASSERT_TRUE(save_safetensors(p, {{"x", Tensor::ones({3})}}).ok());
  std::ifstream in(p, std::ios::binary);
  unsigned char b[8];
  in.read(reinterpret_cast<char*>(b), 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | b[i];
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(std::filesystem::file_size(p), 8 + n + 12);
}

TEST_F(SafetensorsTest, LoadsTheTorchWrittenGoldenFile) {
  // Written by scripts/make_safetensors_golden.py from torch tensors, data in reverse name order.
  absl::StatusOr<SafetensorsContents> loaded =
      load_safetensors(std::string(OMPQ_SOURCE_DIR) + "/tests/data/safetensors_golden.safetensors");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const TensorMap& t = loaded->tensors;
  EXPECT_EQ(loaded->metadata.at("format"), "pt");
  EXPECT_EQ(t.size(), 10u);

  EXPECT_EQ(t.at("f32").shape(), (Shape{2, 3}));
  EXPECT_EQ(t.at("f32").to_vector<float>(), (std::vector<float>{-1, -0.5, 0, 0.5, 1, 1.5}));
  EXPECT_EQ(t.at("f64").to_vector<double>(), (std::vector<double>{1.0 / 3.0, -2.5, 1e-300}));
  ASSERT_EQ(t.at("bf16").dtype(), DType::kBF16);
  EXPECT_EQ(t.at("bf16").to_vector<float>(), (std::vector<float>{1.0f, -2.5f, 3.140625f}));
  ASSERT_EQ(t.at("f16").dtype(), DType::kF16);
  EXPECT_EQ(t.at("f16").to_vector<float>(),
            (std::vector<float>{0.5f, -65504.0f, 0.00006103515625f}));
  EXPECT_EQ(t.at("i8").to_vector<int8_t>(), (std::vector<int8_t>{-128, 0, 127}));
  EXPECT_EQ(t.at("u8").to_vector<uint8_t>(), (std::vector<uint8_t>{0, 200, 255}));
  EXPECT_EQ(t.at("i32").shape(), (Shape{2, 2}));
  EXPECT_EQ(t.at("i32").to_vector<int32_t>(), (std::vector<int32_t>{INT32_MIN, 7, 123456, -1}));
  EXPECT_EQ(t.at("i64").shape(), Shape{});
  EXPECT_EQ(t.at("i64").data<int64_t>()[0], (int64_t{1} << 53) + 1);
  EXPECT_EQ(t.at("empty").shape(), (Shape{0, 3}));
  EXPECT_EQ(t.at("features.1.running_var").to_vector<float>(),
            (std::vector<float>{0.5f, 1.0f, 1.5f, 2.0f}));
}

TEST_F(SafetensorsTest, SaveReplacesAtomicallyAndLeavesNoTemporaryFile) {
  std::string p = path("model.safetensors");
  ASSERT_TRUE(save_safetensors(p, {{"a", Tensor::ones({2})}}).ok());
  // A save that fails (invalid name) leaves the previous file as it was.
  absl::Status bad = save_safetensors(p, {{"", Tensor::zeros({5})}});
  EXPECT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.message()), HasSubstr("invalid tensor name"));
  ASSERT_TRUE(save_safetensors(p, {{"b", Tensor::full({3}, 7.0)}}).ok());
  absl::StatusOr<SafetensorsContents> loaded = load_safetensors(p);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->tensors.count("a"), 0u);
  EXPECT_EQ(loaded->tensors.at("b").to_vector<float>(), (std::vector<float>{7, 7, 7}));
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    ++files;
    EXPECT_EQ(entry.path().filename(), "model.safetensors");
  }
  EXPECT_EQ(files, 1);
}

TEST_F(SafetensorsTest, SaveIntoMissingDirectoryFailsWithPath) {
  std::string p = path("no/such/dir/model.safetensors");
  absl::Status s = save_safetensors(p, {{"a", Tensor::ones({2})}});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr(p));
}

TEST_F(SafetensorsTest, SaveRejectsReservedAndUndefinedTensors) {
  EXPECT_THAT(
      std::string(save_safetensors(path("x"), {{"__metadata__", Tensor::ones({1})}}).message()),
      HasSubstr("invalid tensor name"));
  EXPECT_THAT(std::string(save_safetensors(path("x"), {{"w", Tensor()}}).message()),
              HasSubstr("'w' is undefined"));
}

TEST_F(SafetensorsTest, AcceptsHolesAndUnsortedOffsets) {
  // "b" lies before "a" in the data section, and 4 unused bytes separate them.
  std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},)"
                       R"("b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})";
  std::string data = "\x07\x09xxxxxx";
  float a = 2.5f;
  data.append(reinterpret_cast<const char*>(&a), 4);
  absl::StatusOr<SafetensorsContents> loaded = load_safetensors(craft(header, data));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->tensors.at("a").item<float>(), 2.5f);
  EXPECT_EQ(loaded->tensors.at("b").to_vector<uint8_t>(), (std::vector<uint8_t>{7, 9}));
}

// ---- malformed files
// ------------------------------------------------------------------------------

TEST_F(SafetensorsTest, MissingFile) {
  std::string p = path("absent.safetensors");
  absl::StatusOr<SafetensorsContents> loaded = load_safetensors(p);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr(p));
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("does not exist"));
}

TEST_F(SafetensorsTest, DirectoryInsteadOfFile) {
  expect_error(dir_.string(), "not a regular file");
}

TEST_F(SafetensorsTest, FileShorterThanHeaderLength) {
  expect_error(write_raw(std::string("\x02\x00\x00\x00\x00", 5)),
               "file is 5 bytes, shorter than the 8-byte header length");
  expect_error(write_raw(""), "file is 0 bytes");
}

TEST_F(SafetensorsTest, HeaderLengthLargerThanFile) {
  expect_error(craft("{}", "", 1000),
               "header length 1000 is larger than the rest of the file (2 bytes)");
  // A length whose top bit is set must not wrap around.
  expect_error(craft("{}", "", INT64_MAX), "is larger than the rest of the file");
}

TEST_F(SafetensorsTest, HeaderLengthAboveTheLimit) {
  // A sparse file: 200 MB long without writing 200 MB.
  std::string p = craft("{}");
  std::filesystem::resize_file(p, 200'000'000);
  {
    std::fstream f(p, std::ios::binary | std::ios::in | std::ios::out);
    const char length[8] = {0, static_cast<char>(0xe2), static_cast<char>(0xf5), 0x05, 0, 0, 0, 0};
    f.write(length, 8);  // 100000256 = 0x05f5e200, little-endian
  }
  expect_error(p, "header length 100000256 exceeds the limit of 100000000 bytes");
}

TEST_F(SafetensorsTest, BadJson) {
  expect_error(craft("{\"a\": [1, 2"), "header is not valid JSON");
}

TEST_F(SafetensorsTest, HeaderNotAnObject) {
  expect_error(craft("[1, 2, 3]"), "header is not a JSON object");
}

TEST_F(SafetensorsTest, EntryNotAnObject) {
  expect_error(craft(R"({"w": [1, 2]})"), "tensor 'w': entry is not a JSON object");
}

TEST_F(SafetensorsTest, MissingDtype) {
  expect_error(craft(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", "abcd"),
               "tensor 'w': missing \"dtype\"");
}

TEST_F(SafetensorsTest, UnknownDtype) {
  expect_error(craft(R"({"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", "a"),
               "tensor 'w': unknown dtype \"F8_E4M3\"");
}

TEST_F(SafetensorsTest, ShapeNotIntegers) {
  expect_error(craft(R"({"w":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}})", "a"),
               "is not a list of integers");
}

TEST_F(SafetensorsTest, NegativeDimension) {
  expect_error(craft(R"({"w":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,0]}})"),
               "tensor 'w': negative dimension -1");
}

TEST_F(SafetensorsTest, OffsetsNotTwoIntegers) {
  expect_error(craft(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", "a"),
               "\"data_offsets\" must be a list of two integers");
}

TEST_F(SafetensorsTest, ShapeDisagreesWithOffsets) {
  expect_error(craft(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "12345678"),
               "tensor 'w': data_offsets [0, 8] hold 8 bytes but shape [3] of F32 needs 12");
}

TEST_F(SafetensorsTest, ShapeTooLarge) {
  expect_error(
      craft(R"({"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
            "12345678"),
      "is too large");
}

TEST_F(SafetensorsTest, OffsetsOutsideTheData) {
  expect_error(craft(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", "12345678"),
               "data_offsets [4, 12] lie outside the data section [0, 8]");
  expect_error(craft(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[5,4]}})", "12345678"),
               "data_offsets [5, 4] lie outside");
  expect_error(craft(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[-1,-1]}})", "12345678"),
               "lie outside");
}

TEST_F(SafetensorsTest, OverlappingTensors) {
  expect_error(craft(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                     "12345678"),
               "tensors 'a' [0, 8) and 'b' [4, 8) overlap");
}

TEST_F(SafetensorsTest, MetadataValuesMustBeStrings) {
  expect_error(craft(R"({"__metadata__":{"epoch":3}})"), "\"__metadata__\" value of \"epoch\"");
  expect_error(craft(R"({"__metadata__":"x"})"), "\"__metadata__\" is not a JSON object");
}

}  // namespace
}  // namespace ompq
