// read_idx (data/idx.h) on any bytes, plain and gzip-compressed: the input is read as it is (a
// gzip seed exercises zlib's stream checks) and once more after gzip-compressing it here, which
// must give the same tensor or the same kind of failure as the plain read.
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "data/idx.h"
#include "tests/fuzz/fuzz_files.h"

namespace {

std::string write_gzip_file(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = (ompq::fuzz::FuzzFolder::path() / name).string();
  gzFile file = gzopen(path.c_str(), "wb");
  if (file == nullptr) std::abort();
  if (size > 0 && gzwrite(file, data, static_cast<unsigned>(size)) != static_cast<int>(size)) {
    std::abort();
  }
  if (gzclose(file) != Z_OK) std::abort();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string plain_path = ompq::fuzz::write_fuzz_file("input.idx", data, size);
  absl::StatusOr<ompq::Tensor> plain = ompq::data::read_idx(plain_path);
  const bool is_gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  if (is_gzip) return 0;  // compressing it again would only add a layer read_idx does not undo
  const std::string gzip_path = write_gzip_file("input.idx.gz", data, size);
  absl::StatusOr<ompq::Tensor> gzip = ompq::data::read_idx(gzip_path);
  if (plain.ok() != gzip.ok()) std::abort();
  if (!plain.ok()) {
    if (plain.status().code() != gzip.status().code()) std::abort();
    return 0;
  }
  if (plain->shape() != gzip->shape() || plain->dtype() != gzip->dtype() ||
      (plain->nbytes() > 0 &&
       std::memcmp(plain->data_ptr(), gzip->data_ptr(), plain->nbytes()) != 0)) {
    std::abort();
  }
  return 0;
}
