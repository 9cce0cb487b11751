// check_onnx_file (layers/export/onnx_export.h), the exporters' inverse check, on any bytes: the
// protobuf parse of a ModelProto, then ONNX's checker and its strict shape inference with data
// propagation (Debian's libonnx, not instrumented: a crash in it is still caught). The exporters
// run the same check on every model before they write it; check_onnx_file runs it on a written
// file, whatever wrote it.
// Checked beyond "no crash":
//   - a refusal is one line that names the file (what an app prints as its one error: line);
//   - a model the check accepts, written again the way the exporters write (serialized by
//     protobuf), is accepted again: reading back what was written must not change the verdict.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "layers/export/onnx_export.h"
#include "onnx/onnx_pb.h"
#include "tests/fuzz/fuzz_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = ompq::fuzz::write_fuzz_file("model.onnx", data, size);
  const absl::Status status = ompq::nn::check_onnx_file(path);
  if (!status.ok()) {
    const std::string message(status.message());
    if (message.find(path) == std::string::npos || message.find('\n') != std::string::npos) {
      std::fprintf(stderr, "not one line naming %s:\n%s\n", path.c_str(), message.c_str());
      std::abort();
    }
    return 0;
  }
  onnx::ModelProto model;
  if (!model.ParseFromArray(data, static_cast<int>(size))) std::abort();  // the check parsed it
  std::string written;
  if (!model.SerializeToString(&written)) std::abort();
  const std::string again = ompq::fuzz::write_fuzz_file(
      "written.onnx", reinterpret_cast<const uint8_t*>(written.data()), written.size());
  if (!ompq::nn::check_onnx_file(again).ok()) std::abort();
  return 0;
}
