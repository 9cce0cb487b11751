#include "cuda/host_allocator.h"

#include <algorithm>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cuda/runtime.h"

namespace ompq::cuda {

PinnedHostAllocator::PinnedHostAllocator(std::unique_ptr<PinnedMemorySource> source)
    : source_(std::move(source)) {}

PinnedHostAllocator::~PinnedHostAllocator() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [size, block] : free_) {
    for (PinnedMemorySource::Marker m : block->uses) source_->destroy(m);
    source_->free(block->ptr);
    delete block;
  }
  // Live blocks belong to tensors that outlive the allocator: their memory stays theirs.
  for (auto& [ptr, block] : live_) {
    for (PinnedMemorySource::Marker m : block->uses) source_->destroy(m);
    delete block;
  }
}

size_t PinnedHostAllocator::round_size(size_t nbytes) {
  size_t size = kMinBlock;
  while (size < nbytes) size <<= 1;
  return size;
}

bool PinnedHostAllocator::uses_finished_locked(Block* block) {
  std::vector<PinnedMemorySource::Marker> pending;
  for (PinnedMemorySource::Marker m : block->uses) {
    if (source_->reached(m)) {
      source_->destroy(m);
    } else {
      pending.push_back(m);
    }
  }
  block->uses = std::move(pending);
  return block->uses.empty();
}

void PinnedHostAllocator::release_finished_locked() {
  for (auto it = free_.begin(); it != free_.end();) {
    Block* block = it->second;
    if (!uses_finished_locked(block)) {
      ++it;
      continue;
    }
    source_->free(block->ptr);
    stats_.cached_bytes -= block->size;
    delete block;
    it = free_.erase(it);
  }
}

void* PinnedHostAllocator::allocate(size_t nbytes, Device device) {
  OMPQ_CHECK(device.is_cpu(), "pinned host allocator: asked for ", nbytes, " bytes on ",
             device.str(), " (pinned memory is host memory: Device::cpu())");
  const size_t size = round_size(nbytes);
  std::lock_guard<std::mutex> lock(mu_);
  Block* block = nullptr;
  auto [first, last] = free_.equal_range(size);
  for (auto it = first; it != last; ++it) {
    if (uses_finished_locked(it->second)) {
      block = it->second;
      free_.erase(it);
      stats_.cached_bytes -= size;
      break;
    }
  }
  if (block == nullptr) {
    void* ptr = source_->malloc(size);
    if (ptr == nullptr) {
      release_finished_locked();
      ptr = source_->malloc(size);
    }
    OMPQ_CHECK(ptr != nullptr, "out of pinned host memory: cannot allocate ", format_bytes(nbytes),
               " (", format_bytes(size), " rounded) of page-locked memory; ",
               format_bytes(stats_.allocated_bytes), " is in use and ",
               format_bytes(stats_.cached_bytes),
               " is cached for copies still running (lower the data loader's num_workers or "
               "prefetch_factor, or turn pin_memory off)");
    ++stats_.os_allocations;
    block = new Block{static_cast<char*>(ptr), size, {}};
  }
  live_.emplace(block->ptr, block);
  stats_.allocated_bytes += size;
  stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
  return block->ptr;
}

void PinnedHostAllocator::deallocate(void* ptr, size_t, Device) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(static_cast<char*>(ptr));
  OMPQ_CHECK(it != live_.end(), "pinned host allocator: freeing ", absl::StrFormat("%p", ptr),
             ", which it did not allocate (or freed already)");
  Block* block = it->second;
  live_.erase(it);
  stats_.allocated_bytes -= block->size;
  stats_.cached_bytes += block->size;
  free_.emplace(block->size, block);
}

void PinnedHostAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  release_finished_locked();
}

AllocatorStats PinnedHostAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

bool PinnedHostAllocator::record_use(const void* ptr, cudaStream_t stream, int device) {
  const char* p = static_cast<const char*>(ptr);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.upper_bound(const_cast<char*>(p));
  if (it == live_.begin()) return false;
  Block* block = std::prev(it)->second;
  if (p >= block->ptr + block->size) return false;
  block->uses.push_back(source_->mark(stream, device));
  return true;
}

namespace {

// cudaHostAlloc'ed memory, portable (pinned for every device's context); markers are Events.
// Allocation and release need a context: the one of a device the process already computes on, made
// current for good on the calling thread (restoring device 0 would create a context there, since
// CUDA 12 cudaSetDevice does), so that a data loader thread, whose current device starts at 0,
// creates none on a GPU another rank owns.
class CudaPinnedMemory final : public PinnedMemorySource {
 public:
  void* malloc(size_t nbytes) override {
    use_context_device();
    void* ptr = nullptr;
    const cudaError_t err = cudaHostAlloc(&ptr, nbytes, cudaHostAllocPortable);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // not sticky: clear it so that the next check does not see it
      return nullptr;
    }
    OMPQ_CUDA_CHECK(err);
    return ptr;
  }
  void free(void* ptr) override {
    use_context_device();
    OMPQ_CUDA_CHECK(cudaFreeHost(ptr));
  }
  Marker mark(cudaStream_t stream, int device) override {
    auto event = std::make_unique<Event>(device);
    event->record(stream);
    return event.release();
  }
  bool reached(Marker marker) override { return static_cast<Event*>(marker)->query(); }
  void destroy(Marker marker) override { delete static_cast<Event*>(marker); }

 private:
  static void use_context_device() {
    const int device = first_device_in_use();
    if (device >= 0 && device != current_device()) set_device(device);
  }
};

}  // namespace

PinnedHostAllocator* pinned_host_allocator() {
  // Never destroyed: the CUDA runtime may be torn down before static destructors run.
  static PinnedHostAllocator* allocator =
      new PinnedHostAllocator(std::make_unique<CudaPinnedMemory>());
  return allocator;
}

}  // namespace ompq::cuda
