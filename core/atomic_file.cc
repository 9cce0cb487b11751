#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/error.h"

namespace ompq {
namespace {

absl::StatusCode code_of(int error) {
  switch (error) {
    case ENOENT:
    case ENOTDIR:
      return absl::StatusCode::kNotFound;
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::StatusCode::kPermissionDenied;
    default:
      return absl::StatusCode::kInternal;
  }
}

// Makes a finished rename durable: the directory entry is flushed too. Some filesystems refuse
// to fsync a directory; that changes nothing for a process that crashes, so it is not an error.
void sync_directory(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

absl::StatusOr<AtomicFile> AtomicFile::create(const std::string& path) {
  std::string tmp_path = absl::StrCat(path, ".tmp.", ::getpid());
  const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    const int error = errno;
    return absl::Status(code_of(error), absl::StrCat("cannot create '", tmp_path, "' (to replace '",
                                                     path, "'): ", std::strerror(error)));
  }
  AtomicFile file(path, std::move(tmp_path), fd);
  file.pending_ = true;
  return file;
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)),
      tmp_path_(std::move(other.tmp_path_)),
      fd_(std::exchange(other.fd_, -1)),
      pending_(std::exchange(other.pending_, false)) {}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (pending_) ::unlink(tmp_path_.c_str());
}

absl::Status AtomicFile::fail(int error, absl::string_view what) {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  if (pending_) ::unlink(tmp_path_.c_str());
  pending_ = false;
  return absl::Status(code_of(error), absl::StrCat(what, ": ", std::strerror(error)));
}

std::string AtomicFile::write_failed() const {
  return absl::StrCat("writing '", tmp_path_, "' (to replace '", path_, "') failed");
}

absl::Status AtomicFile::append(absl::string_view bytes) {
  OMPQ_CHECK(fd_ >= 0, "AtomicFile: append to '", tmp_path_, "' after finish() or a failure");
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t put = ::write(fd_, p, left);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) {
      const int error = put < 0 ? errno : ENOSPC;  // a write of 0 bytes: the device is full
      return fail(error, write_failed());
    }
    p += put;
    left -= static_cast<size_t>(put);
  }
  return absl::OkStatus();
}

absl::Status AtomicFile::finish() {
  OMPQ_CHECK(pending_, "AtomicFile: finish() of '", path_, "' after commit() or a failure");
  if (fd_ < 0) return absl::OkStatus();
  // close() may report a write error delayed until then.
  if (::fsync(fd_) != 0 || ::close(std::exchange(fd_, -1)) != 0) {
    const int error = errno;
    return fail(error, write_failed());
  }
  return absl::OkStatus();
}

absl::Status AtomicFile::commit() {
  OMPQ_RETURN_IF_ERROR(finish());
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    const int error = errno;
    return fail(error, absl::StrCat("cannot rename '", tmp_path_, "' to '", path_, "'"));
  }
  pending_ = false;
  sync_directory(path_);
  return absl::OkStatus();
}

absl::Status write_file_atomically(const std::string& path, absl::string_view contents) {
  OMPQ_ASSIGN_OR_RETURN(AtomicFile file, AtomicFile::create(path));
  OMPQ_RETURN_IF_ERROR(file.append(contents));
  return file.commit();
}

}  // namespace ompq
