// The caching device allocator. cudaMalloc/cudaFree are slow and cudaFree synchronizes the whole
// device, so freed blocks are kept and handed out again (PyTorch's scheme, simplified):
//
// - Sizes are rounded up to 512 bytes. Requests up to 1 MiB come from 2 MiB segments shared by
//   many small tensors; larger ones from segments of their own (20 MiB for requests under 10 MiB,
//   so that mid-size tensors share one cudaMalloc, else the size rounded up to 2 MiB).
// - Free blocks live in per-device, per-pool sets ordered by size: allocation takes the best fit
//   and splits off the rest when it is worth keeping (>= 512 B small, > 1 MiB large); freeing
//   merges a block with its free neighbours in the same segment.
// - Reuse is stream-ordered: every ompq kernel runs on the device's default stream
//   (cuda/runtime.h), so a block freed by the host may be handed out at once; the kernels that
//   still read it are queued before any kernel that will write it.
// - On out-of-memory the cached segments of that device are released and the allocation retried
//   once; if that fails too, the Error says what was asked, what the driver reports free/total,
//   and what the cache holds.
//
// Memory comes from a DeviceMemorySource (cudaMalloc in production) so that the bookkeeping can be
// tested on machines without a GPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

#include "core/allocator.h"

namespace ompq::cuda {

class DeviceMemorySource {
 public:
  virtual ~DeviceMemorySource() = default;
  // A block of `nbytes` on `device`, or nullptr when the device is out of memory; throws Error on
  // any other failure (for example a device index that does not exist).
  virtual void* malloc(size_t nbytes, int device) = 0;
  virtual void free(void* ptr, int device) = 0;
  // Free and total bytes of the device as its driver reports them.
  virtual void memory_info(int device, size_t* free_bytes, size_t* total_bytes) = 0;
};

class CachingAllocator final : public Allocator {
 public:
  static constexpr size_t kRound = 512;
  static constexpr size_t kSmallLimit = size_t{1} << 20;    // small pool: up to 1 MiB
  static constexpr size_t kSmallSegment = size_t{2} << 20;  // 2 MiB segments for the small pool
  static constexpr size_t kMidLimit = size_t{10} << 20;     // large requests below 10 MiB ...
  static constexpr size_t kMidSegment = size_t{20} << 20;   // ... share 20 MiB segments
  static constexpr size_t kLargeRound = size_t{2} << 20;

  explicit CachingAllocator(std::unique_ptr<DeviceMemorySource> source);
  ~CachingAllocator() override;

  void* allocate(size_t nbytes, Device device) override;
  void deallocate(void* ptr, size_t nbytes, Device device) override;
  // Returns every cached segment that holds no live block to the device.
  void empty_cache() override;
  // Summed over devices.
  AllocatorStats stats() const override;
  AllocatorStats device_stats(int device) const;
  // The largest free block cached for `device` (0 when none).
  size_t largest_cached_block(int device) const;

  // The block size a request of `nbytes` gets.
  static size_t round_size(size_t nbytes);
  // The cudaMalloc size when no cached block fits a (rounded) request of `size`.
  static size_t segment_size(size_t size);

 private:
  struct Block {
    int device;
    bool small;  // which pool
    size_t size;
    char* ptr;
    bool allocated = false;
    Block* prev = nullptr;  // neighbours inside the same segment
    Block* next = nullptr;
  };
  struct BySizeThenAddress {
    bool operator()(const Block* a, const Block* b) const {
      return a->size != b->size ? a->size < b->size : a->ptr < b->ptr;
    }
  };
  using FreeSet = std::set<Block*, BySizeThenAddress>;
  struct DeviceState {
    FreeSet small_free;
    FreeSet large_free;
    AllocatorStats stats;
    FreeSet& pool(bool small) { return small ? small_free : large_free; }
  };

  DeviceState& state_locked(int device);
  Block* take_best_fit_locked(DeviceState& state, bool small, size_t size);
  Block* new_segment_locked(DeviceState& state, int device, bool small, size_t size);
  void split_locked(DeviceState& state, Block* block, size_t size);
  void release_cached_locked(int device);
  size_t largest_cached_block_locked(int device) const;
  [[noreturn]] void throw_out_of_memory_locked(int device, size_t requested, size_t rounded);

  std::unique_ptr<DeviceMemorySource> source_;
  mutable std::mutex mu_;
  std::vector<DeviceState> devices_;
  std::unordered_map<void*, Block*> live_;
};

// The process-wide allocator over cudaMalloc, installed for DeviceType::kCUDA by
// register_backend().
CachingAllocator* device_allocator();

}  // namespace ompq::cuda
