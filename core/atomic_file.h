// Files replaced atomically: the new contents go to a temporary file beside the target
// (PATH.tmp.<pid>, the same directory and so the same filesystem), which is flushed to disk
// (fsync) before it is renamed over PATH. PATH is therefore always either its old contents or the
// whole new ones, whatever error or crash comes in between; a failed write removes its temporary
// file. Every error names the file and the system's reason.
#pragma once

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ompq {

// One replacement of a file, in steps, for writers whose contents come in pieces or that replace
// several files together (write each, finish() all, then commit() all: no file changes unless all
// were written). Destroyed before commit(), it removes its temporary file and PATH stays as it was.
class AtomicFile {
 public:
  // Creates the temporary file.
  static absl::StatusOr<AtomicFile> create(const std::string& path);
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  absl::Status append(absl::string_view bytes);
  absl::Status append(const void* data, size_t size) {
    return append(absl::string_view(static_cast<const char*>(data), size));
  }
  // The temporary file complete on disk (fsync, close); PATH is unchanged.
  absl::Status finish();
  // Renames the temporary file over PATH (finish()ing it first when needed).
  absl::Status commit();

  const std::string& path() const { return path_; }
  const std::string& temporary_path() const { return tmp_path_; }

 private:
  AtomicFile(std::string path, std::string tmp_path, int fd)
      : path_(std::move(path)), tmp_path_(std::move(tmp_path)), fd_(fd) {}
  // The error `what` with the reason for errno value `error`, after removing the temporary file.
  absl::Status fail(int error, absl::string_view what);
  std::string write_failed() const;

  std::string path_, tmp_path_;
  int fd_ = -1;           // open until finish()
  bool pending_ = false;  // a temporary file exists that commit() has not renamed
};

// Replaces the file at `path` with `contents` (AtomicFile's steps at once).
absl::Status write_file_atomically(const std::string& path, absl::string_view contents);

}  // namespace ompq
