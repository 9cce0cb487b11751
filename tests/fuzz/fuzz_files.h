// Files for fuzz targets whose parser takes a path: a folder of this process's own (fuzzers of
// one target may run side by side), created on first use under $TMPDIR (or /tmp) and removed
// when the process exits normally. A crash leaves it behind on purpose, next to the input that
// libFuzzer saved.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace ompq::fuzz {

class FuzzFolder {
 public:
  // The folder, created on the first call.
  static const std::filesystem::path& path() {
    static FuzzFolder folder;
    return folder.path_;
  }

 private:
  FuzzFolder() {
    const char* tmp = std::getenv("TMPDIR");
    path_ = std::filesystem::path(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") /
            ("ompq_fuzz_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~FuzzFolder() {
    std::error_code ignored;  // nothing to report to at exit
    std::filesystem::remove_all(path_, ignored);
  }

  std::filesystem::path path_;
};

// Writes `size` bytes at `data` to `name` in the process's folder (replacing what was there) and
// returns the file's path. Aborts when the write fails: a fuzzer that cannot write its input would
// only report noise.
inline std::string write_fuzz_file(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = (FuzzFolder::path() / name).string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) std::abort();
  return path;
}

}  // namespace ompq::fuzz
