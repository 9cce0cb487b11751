#include "core/device.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/dispatch.h"

namespace ompq {

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : absl::StrCat("cuda:", index);
}

const char* device_type_name(DeviceType type) { return type == DeviceType::kCPU ? "cpu" : "cuda"; }

absl::StatusOr<Device> parse_device(absl::string_view text) {
  if (text == "cpu") return Device::cpu();
  if (text == "cuda") return Device::cuda(0);
  int index = 0;
  if (absl::ConsumePrefix(&text, "cuda:") && absl::SimpleAtoi(text, &index) && index >= 0) {
    return Device::cuda(index);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("bad device \"", text, "\" (expected cpu, cuda or cuda:N)"));
}

}  // namespace ompq
