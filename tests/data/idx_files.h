// Writing small IDX files (plain or gzipped) into a per-test temporary folder.
#pragma once

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/temp_dir.h"

namespace ompq::data::testing {

// Each test writes its files into a ScopedTempDir, removed when the test ends.
using ompq::testing::ScopedTempDir;

// The magic (type code, number of dims) and the big-endian dims.
inline std::string idx_header(uint8_t type_code, const std::vector<uint32_t>& dims) {
  std::string bytes = {0, 0, static_cast<char>(type_code), static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<char>(d >> shift));
  }
  return bytes;
}

inline std::string idx_u8(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& values) {
  return idx_header(0x08, dims) + std::string(values.begin(), values.end());
}

inline void write_file(const std::string& path, const std::string& bytes, bool gzip) {
  if (gzip) {
    gzFile file = gzopen(path.c_str(), "wb");
    ASSERT_NE(file, nullptr) << path;
    ASSERT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
    ASSERT_EQ(gzclose(file), Z_OK);
  } else {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << path;
  }
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace ompq::data::testing
