// A block of device memory shared by the tensors that view it.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "core/device.h"

namespace ompq {

class Storage {
 public:
  // Allocates `nbytes` on `device` from that device's allocator.
  Storage(size_t nbytes, Device device);
  // Wraps memory owned elsewhere (for example an mmap'ed file); `release` runs on destruction.
  Storage(void* data, size_t nbytes, Device device, std::function<void(void*)> release);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  std::function<void(void*)> release_;  // empty: memory came from the device's allocator
};

}  // namespace ompq
