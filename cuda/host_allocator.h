// The caching allocator of page-locked ("pinned") host memory. A host-to-device copy from pinned
// memory is a DMA that cudaMemcpyAsync only queues, so the host goes on (and the data loader's
// next batch is built) while it runs; from ordinary pageable memory the driver must first stage
// the bytes, synchronously. cudaHostAlloc is slow (it maps pages for the device), so freed blocks
// are kept and handed out again, PyTorch's CachingHostAllocator scheme:
//
// - Requests are rounded up to a power of two (at least 4 KiB); a block serves requests of its
//   size class only, so the data loader's equal batches reuse each other's blocks.
// - A block freed by the host may still be read by a queued copy. The copy code calls
//   record_use(ptr, stream) after queuing a copy from pinned memory; the block is handed out again
//   only when every stream it was recorded on has run past that point (an event per use).
// - On out-of-memory the free blocks whose uses are finished are released and the allocation is
//   retried once; then the Error says what was asked and what the cache holds.
//
// Memory and events come from a PinnedMemorySource (cudaHostAlloc and cudaEvent in production) so
// that the bookkeeping can be tested on machines without a GPU.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "core/allocator.h"

namespace ompq::cuda {

class PinnedMemorySource {
 public:
  using Marker = void*;  // an opaque point in a stream's queue
  virtual ~PinnedMemorySource() = default;
  // `nbytes` of page-locked host memory, or nullptr when none can be had.
  virtual void* malloc(size_t nbytes) = 0;
  virtual void free(void* ptr) = 0;
  // A marker placed on `stream` (of `device`) after the work queued so far.
  virtual Marker mark(cudaStream_t stream, int device) = 0;
  // Whether the stream has run past `marker`; throws Error when the stream failed.
  virtual bool reached(Marker marker) = 0;
  virtual void destroy(Marker marker) = 0;
};

class PinnedHostAllocator final : public Allocator {
 public:
  static constexpr size_t kMinBlock = size_t{4} << 10;

  explicit PinnedHostAllocator(std::unique_ptr<PinnedMemorySource> source);
  ~PinnedHostAllocator() override;

  // `device` is the CPU: the memory is host memory.
  void* allocate(size_t nbytes, Device device) override;
  void deallocate(void* ptr, size_t nbytes, Device device) override;
  // Releases the free blocks whose recorded uses are finished.
  void empty_cache() override;
  AllocatorStats stats() const override;

  // Records that work queued on `stream` (of `device`) reads or writes the live block holding `ptr`
  // (any address inside it), so that the block is not handed out again before that work is done.
  // Returns false (and does nothing) when `ptr` is not in a live block of this allocator.
  bool record_use(const void* ptr, cudaStream_t stream, int device);

  // The block size a request of `nbytes` gets.
  static size_t round_size(size_t nbytes);

 private:
  struct Block {
    char* ptr;
    size_t size;
    std::vector<PinnedMemorySource::Marker> uses;  // pending until reached
  };

  // Destroys the reached markers of `block`; true when none is left pending.
  bool uses_finished_locked(Block* block);
  void release_finished_locked();

  std::unique_ptr<PinnedMemorySource> source_;
  mutable std::mutex mu_;
  std::map<char*, Block*> live_;        // by address, for record_use's interior lookups
  std::multimap<size_t, Block*> free_;  // by size
  AllocatorStats stats_;
};

// The process-wide allocator over cudaHostAlloc; installed as core's pinned host allocator
// (core/allocator.h) by register_backend().
PinnedHostAllocator* pinned_host_allocator();

}  // namespace ompq::cuda
