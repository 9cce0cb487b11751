#include "data/idx.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "tests/data/idx_files.h"

namespace ompq::data {
namespace {

using ::testing::HasSubstr;
using testing::idx_header;
using testing::idx_u8;
using testing::read_file;
using testing::ScopedTempDir;
using testing::write_file;

// Every case runs on a plain and on a gzipped file: errors about the IDX content must not
// depend on the compression.
class IdxTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { dir_ = temp_.path().string(); }
  std::string write(const std::string& bytes) {
    std::string path = dir_ + "/file.idx";
    write_file(path, bytes, GetParam());
    return path;
  }
  absl::Status read_error(const std::string& bytes) { return read_idx(write(bytes)).status(); }
  ScopedTempDir temp_;
  std::string dir_;
};

TEST_P(IdxTest, ReadsU8WithShape) {
  std::vector<uint8_t> values(2 * 3 * 4);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<uint8_t>(i * 11);
  absl::StatusOr<Tensor> t = read_idx(write(idx_u8({2, 3, 4}, values)));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->dtype(), DType::kU8);
  EXPECT_EQ(t->shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(t->to_vector<uint8_t>(), values);
}

TEST_P(IdxTest, ConvertsBigEndianValues) {
  // i32 1, -2, 0x01020304 stored big-endian.
  std::string i32 = idx_header(0x0C, {3}) + std::string("\x00\x00\x00\x01", 4) +
                    std::string("\xFF\xFF\xFF\xFE", 4) + std::string("\x01\x02\x03\x04", 4);
  absl::StatusOr<Tensor> t = read_idx(write(i32));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->dtype(), DType::kI32);
  EXPECT_EQ(t->to_vector<int32_t>(), (std::vector<int32_t>{1, -2, 0x01020304}));

  // f32 1.5 = 0x3FC00000, f64 -2.25 = 0xC002000000000000, i8 -3 = 0xFD.
  t = read_idx(write(idx_header(0x0D, {1}) + std::string("\x3F\xC0\x00\x00", 4)));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->to_vector<float>(), std::vector<float>{1.5f});
  t = read_idx(write(idx_header(0x0E, {1, 1}) + std::string("\xC0\x02\0\0\0\0\0\0", 8)));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->shape(), (Shape{1, 1}));
  EXPECT_EQ(t->to_vector<double>(), std::vector<double>{-2.25});
  t = read_idx(write(idx_header(0x09, {1}) + "\xFD"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->to_vector<int8_t>(), std::vector<int8_t>{-3});
}

TEST_P(IdxTest, ReadsEmptyTensor) {
  absl::StatusOr<Tensor> t = read_idx(write(idx_u8({0, 28}, {})));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->shape(), (Shape{0, 28}));
}

TEST_P(IdxTest, RejectsBadMagic) {
  absl::Status s = read_error(std::string("\x12\x34\x08\x01", 4) + std::string(5, '\0'));
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("file.idx"));
  EXPECT_THAT(s.message(), HasSubstr("bad magic 0x12340801"));
}

TEST_P(IdxTest, RejectsUnsupportedTypeCode) {
  EXPECT_THAT(read_error(idx_header(0x0B, {2}) + std::string(4, '\0')).message(),
              HasSubstr("unsupported type code 0x0B"));
  EXPECT_THAT(read_error(idx_header(0x07, {2}) + std::string(2, '\0')).message(),
              HasSubstr("unsupported type code 0x07"));
}

TEST_P(IdxTest, RejectsTruncatedHeader) {
  EXPECT_THAT(read_error(std::string("\x00\x00", 2)).message(),
              HasSubstr("truncated header: expected at least 4 bytes, got 2"));
  // Three dims need 16 header bytes; only the first dim is there.
  EXPECT_THAT(read_error(idx_header(0x08, {60000, 28, 28}).substr(0, 8)).message(),
              HasSubstr("truncated header: 3 dims need 16 bytes, got 8"));
}

TEST_P(IdxTest, RejectsTruncatedData) {
  absl::Status s = read_error(idx_u8({2, 3}, {1, 2, 3, 4, 5}));
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("file.idx"));
  EXPECT_THAT(s.message(), HasSubstr("truncated data: shape [2, 3] of u8 needs 6 bytes, got 5"));
  // Multi-byte types count bytes, not values.
  EXPECT_THAT(read_error(idx_header(0x0C, {2}) + std::string(7, '\0')).message(),
              HasSubstr("needs 8 bytes, got 7"));
}

TEST_P(IdxTest, RejectsTrailingBytes) {
  EXPECT_THAT(read_error(idx_u8({2, 3}, {1, 2, 3, 4, 5, 6, 7})).message(),
              HasSubstr("1 trailing bytes after the 6 data bytes of shape [2, 3]"));
}

TEST_P(IdxTest, RejectsDimsBeyondMemory) {
  EXPECT_THAT(read_error(idx_header(0x08, {0xFFFFFFFF, 0xFFFFFFFF})).message(),
              HasSubstr("describe more than 2^48 elements"));
}

INSTANTIATE_TEST_SUITE_P(PlainAndGzip, IdxTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Gzip" : "Plain";
                         });

TEST(IdxFileTest, DetectsGzipByContentNotName) {
  ScopedTempDir temp;
  std::string dir = temp.path().string();
  std::vector<uint8_t> values = {7, 8, 9};
  write_file(dir + "/compressed.idx", idx_u8({3}, values), /*gzip=*/true);
  write_file(dir + "/plain.gz", idx_u8({3}, values), /*gzip=*/false);
  for (const char* name : {"/compressed.idx", "/plain.gz"}) {
    absl::StatusOr<Tensor> t = read_idx(dir + name);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->to_vector<uint8_t>(), values);
  }
}

TEST(IdxFileTest, ReportsMissingFile) {
  ScopedTempDir temp;
  std::string path = temp.file("absent-idx1-ubyte");
  absl::Status s = read_idx(path).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr(path));
  EXPECT_THAT(s.message(), HasSubstr("No such file"));
}

TEST(IdxFileTest, ReportsCorruptGzipStream) {
  ScopedTempDir temp;
  std::string dir = temp.path().string();
  std::vector<uint8_t> values(4096);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<uint8_t>((i * 7919) >> 3);
  write_file(dir + "/good.gz", idx_u8({4096}, values), /*gzip=*/true);
  std::string gz = read_file(dir + "/good.gz");
  ASSERT_GT(gz.size(), 40u);

  std::string flipped = gz;
  for (size_t i = 12; i < 28; ++i) flipped[i] = static_cast<char>(flipped[i] ^ 0x5A);
  write_file(dir + "/flipped.gz", flipped, /*gzip=*/false);
  absl::Status s = read_idx(dir + "/flipped.gz").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("flipped.gz"));
  EXPECT_THAT(s.message(), HasSubstr("corrupt gzip stream"));

  write_file(dir + "/cut.gz", gz.substr(0, gz.size() / 2), /*gzip=*/false);
  s = read_idx(dir + "/cut.gz").status();
  EXPECT_THAT(s.message(), HasSubstr("cut.gz"));
  EXPECT_THAT(s.message(), HasSubstr("corrupt gzip stream (unexpected end of file)"));
}

}  // namespace
}  // namespace ompq::data
