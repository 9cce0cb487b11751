// Memory for tensor storage. One Allocator per device type; the CUDA backend installs its own at
// ompq::init(). The CPU allocator hands out 64-byte-aligned blocks and caches freed blocks by size
// class, so that a training step reuses the previous step's buffers instead of calling the OS.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/device.h"

namespace ompq {

struct AllocatorStats {
  size_t allocated_bytes = 0;  // handed out and not yet returned
  size_t cached_bytes = 0;     // held in free lists
  size_t peak_allocated_bytes = 0;
  int64_t os_allocations = 0;  // blocks obtained from the system (cache misses)
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  // Returns a block of at least `nbytes` on `device`; throws Error when memory cannot be had.
  virtual void* allocate(size_t nbytes, Device device) = 0;
  // `nbytes` and `device` are those passed to allocate().
  virtual void deallocate(void* ptr, size_t nbytes, Device device) = 0;
  // Returns cached blocks to the system.
  virtual void empty_cache() = 0;
  virtual AllocatorStats stats() const = 0;
};

constexpr size_t kCpuAlignment = 64;

Allocator* cpu_allocator();
Allocator* allocator_for(DeviceType type);
// Installs the allocator of a backend (called by backend registration).
void set_allocator(DeviceType type, Allocator* allocator);

// Page-locked host memory, for CPU tensors that will be copied to a GPU (the data loader's
// batches): the CUDA backend installs its allocator when a GPU is usable; nullptr otherwise. Its
// blocks are CPU memory (allocate/deallocate take Device::cpu()).
Allocator* pinned_allocator();
void set_pinned_allocator(Allocator* allocator);

}  // namespace ompq
