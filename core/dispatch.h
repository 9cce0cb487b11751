// The dispatch table. Each op family declares one DispatchStub holding a kernel per device type;
// backends fill it in from their register function (called by ompq::init(), never by static
// initializers, which static linking may drop). Kernels write into outputs allocated by the op's
// device-independent front half (core/ops/*.cc), so a kernel only computes.
#pragma once

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/device.h"
#include "core/error.h"

namespace ompq {

const char* device_type_name(DeviceType type);

template <typename Fn>
class DispatchStub {
 public:
  explicit DispatchStub(const char* name) : name_(name) {}
  DispatchStub(const DispatchStub&) = delete;
  DispatchStub& operator=(const DispatchStub&) = delete;

  void register_kernel(DeviceType type, Fn* fn) { kernels_[static_cast<int>(type)] = fn; }
  bool has_kernel(DeviceType type) const { return kernels_[static_cast<int>(type)] != nullptr; }

  Fn* get(DeviceType type) const {
    Fn* fn = kernels_[static_cast<int>(type)];
    OMPQ_CHECK(fn != nullptr, name_, ": no kernel for device type ", device_type_name(type),
               type == DeviceType::kCPU ? " (was ompq::init() called?)" : "");
    return fn;
  }

  template <typename... Args>
  decltype(auto) operator()(Device device, Args&&... args) const {
    return get(device.type)(std::forward<Args>(args)...);
  }

  const char* name() const { return name_; }

 private:
  const char* name_;
  Fn* kernels_[kNumDeviceTypes] = {};
};

}  // namespace ompq
