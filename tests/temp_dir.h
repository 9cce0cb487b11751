// A scoped temporary folder for tests that write files: created empty under GoogleTest's temporary
// directory, named after the running test and the process (tests of one binary run in parallel
// under ctest), and removed with everything in it when the object goes out of scope, so that no
// test leaves anything behind, whether it passes or fails.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace ompq::testing {

class ScopedTempDir {
 public:
  // `label` tells apart several folders of one test.
  explicit ScopedTempDir(const std::string& label = "") {
    const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "ompq";
    if (test != nullptr) name += std::string("_") + test->test_suite_name() + "_" + test->name();
    if (!label.empty()) name += "_" + label;
    for (char& c : name) c = c == '/' ? '_' : c;  // parameterized tests: "Prefix/Suite", "Test/0"
    path_ = std::filesystem::path(::testing::TempDir()) / (name + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScopedTempDir() {
    std::error_code ignored;  // a destructor must not throw; a leftover folder is all it costs
    std::filesystem::remove_all(path_, ignored);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // The path of `name` inside the folder.
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace ompq::testing
