#include "core/storage.h"

#include "core/allocator.h"

namespace ompq {

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  if (nbytes > 0) data_ = allocator_for(device.type)->allocate(nbytes, device);
}

Storage::Storage(void* data, size_t nbytes, Device device, std::function<void(void*)> release)
    : data_(data), nbytes_(nbytes), device_(device), release_(std::move(release)) {}

Storage::~Storage() {
  if (release_) {
    release_(data_);
  } else if (data_ != nullptr) {
    allocator_for(device_.type)->deallocate(data_, nbytes_, device_);
  }
}

}  // namespace ompq
