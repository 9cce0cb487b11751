#include "core/allocator.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/error.h"

namespace ompq {
namespace {

// Size classes: powers of two up to 1 MiB, then multiples of 1 MiB, so a cached block is never
// more than 2x (small) or 1 MiB (large) bigger than what was asked.
size_t size_class(size_t nbytes) {
  constexpr size_t kMiB = size_t{1} << 20;
  if (nbytes <= kCpuAlignment) return kCpuAlignment;
  if (nbytes <= kMiB) {
    size_t c = kCpuAlignment;
    while (c < nbytes) c <<= 1;
    return c;
  }
  return (nbytes + kMiB - 1) / kMiB * kMiB;
}

class CpuPoolAllocator final : public Allocator {
 public:
  ~CpuPoolAllocator() override { empty_cache(); }

  void* allocate(size_t nbytes, Device) override {
    size_t bytes = size_class(nbytes);
    std::lock_guard<std::mutex> lock(mu_);
    void* ptr = nullptr;
    auto it = free_.find(bytes);
    if (it != free_.end() && !it->second.empty()) {
      ptr = it->second.back();
      it->second.pop_back();
      stats_.cached_bytes -= bytes;
    } else {
      ptr = std::aligned_alloc(kCpuAlignment, bytes);
      if (ptr == nullptr) {
        release_cached_locked();
        ptr = std::aligned_alloc(kCpuAlignment, bytes);
      }
      OMPQ_CHECK(ptr != nullptr, "out of CPU memory: could not allocate ", bytes, " bytes (",
                 stats_.allocated_bytes, " bytes in use)");
      ++stats_.os_allocations;
    }
    stats_.allocated_bytes += bytes;
    stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
    return ptr;
  }

  void deallocate(void* ptr, size_t nbytes, Device) override {
    if (ptr == nullptr) return;
    size_t bytes = size_class(nbytes);
    std::lock_guard<std::mutex> lock(mu_);
    free_[bytes].push_back(ptr);
    stats_.allocated_bytes -= bytes;
    stats_.cached_bytes += bytes;
  }

  void empty_cache() override {
    std::lock_guard<std::mutex> lock(mu_);
    release_cached_locked();
  }

  AllocatorStats stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

 private:
  void release_cached_locked() {
    for (auto& [bytes, blocks] : free_) {
      for (void* p : blocks) std::free(p);
      stats_.cached_bytes -= bytes * blocks.size();
      blocks.clear();
    }
  }

  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  AllocatorStats stats_;
};

Allocator* g_allocators[kNumDeviceTypes] = {nullptr, nullptr};
Allocator* g_pinned_allocator = nullptr;

}  // namespace

Allocator* cpu_allocator() {
  // Never destroyed: tensors with static lifetime may free their storage after main() returns.
  static Allocator* allocator = new CpuPoolAllocator();
  return allocator;
}

Allocator* allocator_for(DeviceType type) {
  if (type == DeviceType::kCPU) return cpu_allocator();
  Allocator* a = g_allocators[static_cast<int>(type)];
  OMPQ_CHECK(a != nullptr, "no allocator for device type ", static_cast<int>(type),
             ": the CUDA backend is not built or ompq::init() found no GPU");
  return a;
}

void set_allocator(DeviceType type, Allocator* allocator) {
  g_allocators[static_cast<int>(type)] = allocator;
}

Allocator* pinned_allocator() { return g_pinned_allocator; }

void set_pinned_allocator(Allocator* allocator) { g_pinned_allocator = allocator; }

}  // namespace ompq
