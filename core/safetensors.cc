#include "core/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/atomic_file.h"

// Tensor data is copied between file and memory byte for byte.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors I/O assumes a little-endian host");

namespace ompq {
namespace {

using json = nlohmann::json;

constexpr char kMetadataKey[] = "__metadata__";
// The reference implementation's limit: a larger header is a corrupt length, not a real header,
// and must not make us allocate it.
constexpr uint64_t kMaxHeaderLength = 100'000'000;

absl::Status file_error(const std::string& path, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("safetensors file '", path, "': ", problem));
}

absl::Status tensor_error(const std::string& path, const std::string& name,
                          absl::string_view problem) {
  return file_error(path, absl::StrCat("tensor '", name, "': ", problem));
}

// Closes a file descriptor when it goes out of scope.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads exactly `n` bytes at `offset`; false on a read error or a short read.
bool read_exact(int fd, void* buffer, size_t n, int64_t offset) {
  char* p = static_cast<char*>(buffer);
  while (n > 0) {
    ssize_t got = ::pread(fd, p, n, offset);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    n -= static_cast<size_t>(got);
    offset += got;
  }
  return true;
}

// A JSON integer as int64; fails for fractions, strings, ... and values beyond int64.
bool json_to_int64(const json& value, int64_t* out) {
  if (value.is_number_unsigned()) {
    uint64_t v = value.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    *out = static_cast<int64_t>(v);
    return true;
  }
  if (value.is_number_integer()) {
    *out = value.get<int64_t>();
    return true;
  }
  return false;
}

struct TensorEntry {
  std::string name;
  DType dtype;
  Shape shape;
  int64_t begin;
  int64_t end;
};

// Validates one header entry against a data section of `data_size` bytes.
absl::StatusOr<TensorEntry> parse_entry(const std::string& path, const std::string& name,
                                        const json& value, int64_t data_size) {
  if (!value.is_object()) return tensor_error(path, name, "entry is not a JSON object");
  TensorEntry entry;
  entry.name = name;

  auto dtype_it = value.find("dtype");
  if (dtype_it == value.end() || !dtype_it->is_string()) {
    return tensor_error(path, name, "missing \"dtype\" string");
  }
  absl::StatusOr<DType> dtype = dtype_from_safetensors_name(dtype_it->get<std::string>());
  if (!dtype.ok()) return tensor_error(path, name, dtype.status().message());
  entry.dtype = *dtype;

  auto shape_it = value.find("shape");
  if (shape_it == value.end() || !shape_it->is_array()) {
    return tensor_error(path, name, "missing \"shape\" list");
  }
  for (const json& dim : *shape_it) {
    int64_t d;
    if (!json_to_int64(dim, &d)) {
      return tensor_error(path, name,
                          absl::StrCat("shape ", shape_it->dump(), " is not a list of integers"));
    }
    if (d < 0) {
      return tensor_error(path, name,
                          absl::StrCat("negative dimension ", d, " in shape ", shape_it->dump()));
    }
    entry.shape.push_back(d);
  }

  auto offsets_it = value.find("data_offsets");
  if (offsets_it == value.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
      !json_to_int64((*offsets_it)[0], &entry.begin) ||
      !json_to_int64((*offsets_it)[1], &entry.end)) {
    return tensor_error(path, name, "\"data_offsets\" must be a list of two integers [begin, end]");
  }
  std::string offsets = absl::StrCat("data_offsets [", entry.begin, ", ", entry.end, "]");
  if (entry.begin < 0 || entry.end < entry.begin || entry.end > data_size) {
    return tensor_error(
        path, name, absl::StrCat(offsets, " lie outside the data section [0, ", data_size, "]"));
  }

  // The byte count the shape needs, refusing products that overflow.
  int64_t needed = static_cast<int64_t>(dtype_size(entry.dtype));
  for (int64_t d : entry.shape) {
    if (__builtin_mul_overflow(needed, d, &needed)) {
      return tensor_error(path, name,
                          absl::StrCat("shape ", shape_str(entry.shape), " is too large"));
    }
  }
  if (entry.end - entry.begin != needed) {
    return tensor_error(path, name,
                        absl::StrCat(offsets, " hold ", entry.end - entry.begin,
                                     " bytes but shape ", shape_str(entry.shape), " of ",
                                     dtype_safetensors_name(entry.dtype), " needs ", needed));
  }
  return entry;
}

absl::StatusOr<MetadataMap> parse_metadata(const std::string& path, const json& value) {
  MetadataMap metadata;
  if (!value.is_object()) return file_error(path, "\"__metadata__\" is not a JSON object");
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (!it->is_string()) {
      return file_error(
          path, absl::StrCat("\"__metadata__\" value of \"", it.key(), "\" is not a string"));
    }
    metadata[it.key()] = it->get<std::string>();
  }
  return metadata;
}

// Rejects entries whose non-empty byte ranges overlap.
absl::Status check_no_overlap(const std::string& path, std::vector<const TensorEntry*> entries) {
  std::sort(entries.begin(), entries.end(),
            [](const TensorEntry* a, const TensorEntry* b) { return a->begin < b->begin; });
  const TensorEntry* previous = nullptr;
  for (const TensorEntry* e : entries) {
    if (e->begin == e->end) continue;
    if (previous != nullptr && e->begin < previous->end) {
      return file_error(path, absl::StrCat("tensors '", previous->name, "' [", previous->begin,
                                           ", ", previous->end, ") and '", e->name, "' [", e->begin,
                                           ", ", e->end, ") overlap"));
    }
    previous = e;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SafetensorsContents> load_safetensors(const std::string& path) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    std::string reason = std::strerror(errno);
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat("safetensors file '", path, "' does not exist"));
    }
    return file_error(path, absl::StrCat("cannot open: ", reason));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return file_error(path, "not a regular file");
  }
  const int64_t file_size = st.st_size;
  if (file_size < 8) {
    return file_error(
        path, absl::StrCat("file is ", file_size, " bytes, shorter than the 8-byte header length"));
  }
  unsigned char length_bytes[8];
  if (!read_exact(fd.get(), length_bytes, 8, 0))
    return file_error(path, "cannot read the header length");
  uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | length_bytes[i];
  if (header_length > static_cast<uint64_t>(file_size - 8)) {
    return file_error(
        path, absl::StrCat("header length ", header_length,
                           " is larger than the rest of the file (", file_size - 8, " bytes)"));
  }
  if (header_length > kMaxHeaderLength) {
    return file_error(path, absl::StrCat("header length ", header_length, " exceeds the limit of ",
                                         kMaxHeaderLength, " bytes"));
  }
  std::string header_text(header_length, '\0');
  if (!read_exact(fd.get(), header_text.data(), header_length, 8)) {
    return file_error(path, "cannot read the header");
  }

  json header;
  try {
    header = json::parse(header_text);
  } catch (const json::exception& e) {
    return file_error(path, absl::StrCat("header is not valid JSON: ", e.what()));
  }
  if (!header.is_object()) return file_error(path, "header is not a JSON object");

  const int64_t data_start = 8 + static_cast<int64_t>(header_length);
  const int64_t data_size = file_size - data_start;
  SafetensorsContents contents;
  std::vector<TensorEntry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == kMetadataKey) {
      OMPQ_ASSIGN_OR_RETURN(contents.metadata, parse_metadata(path, it.value()));
      continue;
    }
    OMPQ_ASSIGN_OR_RETURN(TensorEntry entry, parse_entry(path, it.key(), it.value(), data_size));
    entries.push_back(std::move(entry));
  }
  std::vector<const TensorEntry*> entry_ptrs;
  for (const TensorEntry& e : entries) entry_ptrs.push_back(&e);
  OMPQ_RETURN_IF_ERROR(check_no_overlap(path, std::move(entry_ptrs)));

  for (const TensorEntry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    size_t nbytes = static_cast<size_t>(e.end - e.begin);
    if (nbytes > 0 && !read_exact(fd.get(), t.data_ptr(), nbytes, data_start + e.begin)) {
      return tensor_error(path, e.name, "cannot read its data");
    }
    contents.tensors.emplace(e.name, std::move(t));
  }
  return contents;
}

absl::Status save_safetensors(const std::string& path, const TensorMap& tensors,
                              const MetadataMap& metadata) {
  json header = json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::vector<Tensor> data;  // contiguous CPU copies, in header order
  int64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty() || name == kMetadataKey) {
      return absl::InvalidArgumentError(
          absl::StrCat("save_safetensors '", path, "': invalid tensor name \"", name, "\""));
    }
    if (!tensor.defined()) {
      return absl::InvalidArgumentError(
          absl::StrCat("save_safetensors '", path, "': tensor '", name, "' is undefined"));
    }
    Tensor cpu = tensor.detach().to(Device::cpu()).contiguous();
    int64_t nbytes = static_cast<int64_t>(cpu.nbytes());
    header[name] = {{"dtype", dtype_safetensors_name(cpu.dtype())},
                    {"shape", cpu.shape()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    data.push_back(std::move(cpu));
  }
  std::string header_text;
  try {
    header_text = header.dump();
  } catch (const json::exception& e) {  // names or metadata that are not valid UTF-8
    return absl::InvalidArgumentError(
        absl::StrCat("save_safetensors '", path, "': cannot encode the header: ", e.what()));
  }
  // Pad with spaces so that the data section starts 8-byte aligned, as the reference writer does.
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  unsigned char length_bytes[8];
  uint64_t header_length = header_text.size();
  for (int i = 0; i < 8; ++i)
    length_bytes[i] = static_cast<unsigned char>(header_length >> (8 * i));

  auto failed = [](const absl::Status& status) {
    return absl::Status(status.code(), absl::StrCat("save_safetensors: ", status.message()));
  };
  absl::StatusOr<AtomicFile> file = AtomicFile::create(path);
  if (!file.ok()) return failed(file.status());
  absl::Status status = file->append(length_bytes, 8);
  if (status.ok()) status = file->append(header_text);
  for (size_t i = 0; status.ok() && i < data.size(); ++i) {
    status = file->append(data[i].data_ptr(), data[i].nbytes());
  }
  if (status.ok()) status = file->commit();
  return status.ok() ? status : failed(status);
}

}  // namespace ompq
