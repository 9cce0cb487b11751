// AtomicFile and write_file_atomically: a file is replaced whole or not at all. Failures are made
// in ways that hold for root too (a missing folder, a file where a folder should be, a temporary
// name taken by a folder, a file-size limit), since permissions do not stop root.
#include "core/atomic_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "tests/temp_dir.h"

namespace ompq {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  return names;
}

TEST(AtomicFile, WritesAndReplacesAFileLeavingNoTemporaryFile) {
  testing::ScopedTempDir dir;
  const std::string path = dir.file("config.pbtxt");
  ASSERT_TRUE(write_file_atomically(path, "first\n").ok());
  EXPECT_EQ(read_text(path), "first\n");
  ASSERT_TRUE(write_file_atomically(path, std::string("sec\0nd", 6)).ok());
  EXPECT_EQ(read_text(path), std::string("sec\0nd", 6));
  ASSERT_TRUE(write_file_atomically(path, "").ok());
  EXPECT_EQ(read_text(path), "");
  EXPECT_THAT(files_in(dir.path()), UnorderedElementsAre("config.pbtxt"));
}

TEST(AtomicFile, PiecesAppearOnlyAtCommit) {
  testing::ScopedTempDir dir;
  const std::string path = dir.file("a.bin");
  ASSERT_TRUE(write_file_atomically(path, "old").ok());
  absl::StatusOr<AtomicFile> file = AtomicFile::create(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->temporary_path(), path + ".tmp." + std::to_string(::getpid()));
  const int numbers[2] = {1, 2};
  ASSERT_TRUE(file->append("head:").ok());
  ASSERT_TRUE(file->append(numbers, sizeof(numbers)).ok());
  ASSERT_TRUE(file->finish().ok());
  EXPECT_EQ(read_text(path), "old");  // complete on disk, not yet in place
  EXPECT_EQ(read_text(file->temporary_path()).size(), 5 + sizeof(numbers));
  ASSERT_TRUE(file->commit().ok());
  EXPECT_EQ(read_text(path),
            "head:" + std::string(reinterpret_cast<const char*>(numbers), sizeof(numbers)));
  EXPECT_THAT(files_in(dir.path()), UnorderedElementsAre("a.bin"));
  EXPECT_THAT([&] { (void)file->append("late"); },
              ::testing::ThrowsMessage<Error>(
                  HasSubstr("append to '" + file->temporary_path() + "' after finish()")));
}

TEST(AtomicFile, AbandonedBeforeCommitKeepsTheOldFile) {
  testing::ScopedTempDir dir;
  const std::string path = dir.file("model.safetensors");
  ASSERT_TRUE(write_file_atomically(path, "old contents").ok());
  {
    absl::StatusOr<AtomicFile> file = AtomicFile::create(path);
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE(file->append("half of the new").ok());
    ASSERT_TRUE(fs::exists(file->temporary_path()));
    AtomicFile moved = std::move(*file);  // the moved-to object owns the temporary file
  }
  EXPECT_EQ(read_text(path), "old contents");
  EXPECT_THAT(files_in(dir.path()), UnorderedElementsAre("model.safetensors"));
}

TEST(AtomicFile, UnwritableDirectoryIsNamed) {
  testing::ScopedTempDir dir;
  const std::string missing = dir.file("no/such/folder/bits.pbtxt");
  absl::Status status = write_file_atomically(missing, "x");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("cannot create '" + missing + ".tmp."));
  EXPECT_THAT(status.message(), HasSubstr("(to replace '" + missing + "'): No such file"));

  ASSERT_TRUE(write_file_atomically(dir.file("plain"), "a file, not a folder").ok());
  status = write_file_atomically(dir.file("plain/bits.pbtxt"), "x");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("Not a directory"));

  if (::geteuid() != 0) {  // root writes into read-only folders
    const fs::path locked = dir.path() / "locked";
    fs::create_directory(locked);
    fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec);
    status = write_file_atomically((locked / "bits.pbtxt").string(), "x");
    fs::permissions(locked, fs::perms::owner_all);
    EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(status.message(), HasSubstr((locked / "bits.pbtxt").string()));
    EXPECT_THAT(status.message(), HasSubstr("Permission denied"));
  }
  EXPECT_THAT(files_in(dir.path()), UnorderedElementsAre("plain"));
}

// A write that fails half-way (the file-size limit, EFBIG) and a rename that fails (the target is
// a folder) both keep what was there and remove the temporary file.
TEST(AtomicFile, FailedWriteOrRenameKeepsTheExistingFileIntact) {
  testing::ScopedTempDir dir;
  const std::string path = dir.file("report.json");
  ASSERT_TRUE(write_file_atomically(path, "{\"old\": true}\n").ok());

  struct rlimit saved;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  struct sigaction ignore = {}, previous;
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &previous), 0);  // EFBIG instead of a signal
  struct rlimit small = saved;
  small.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  absl::Status status = write_file_atomically(path, std::string(100000, 'x'));
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::sigaction(SIGXFSZ, &previous, nullptr);
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status.message(), HasSubstr("(to replace '" + path + "') failed: File too large"));
  EXPECT_EQ(read_text(path), "{\"old\": true}\n");
  EXPECT_THAT(files_in(dir.path()), UnorderedElementsAre("report.json"));

  const fs::path folder = dir.path() / "taken";
  fs::create_directories(folder / "inside");
  status = write_file_atomically(folder.string(), "x");
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("cannot rename '" + folder.string() + ".tmp."));
  EXPECT_TRUE(fs::is_directory(folder / "inside"));
  EXPECT_THAT(files_in(dir.path()), UnorderedElementsAre("report.json", "taken"));
}

}  // namespace
}  // namespace ompq
