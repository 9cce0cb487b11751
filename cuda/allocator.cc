#include "cuda/allocator.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "cuda/runtime.h"

namespace ompq::cuda {

CachingAllocator::CachingAllocator(std::unique_ptr<DeviceMemorySource> source)
    : source_(std::move(source)) {}

CachingAllocator::~CachingAllocator() {
  std::lock_guard<std::mutex> lock(mu_);
  for (int d = 0; d < static_cast<int>(devices_.size()); ++d) release_cached_locked(d);
  // What remains belongs to live blocks (or segments they share): their memory is the owner's
  // problem, the bookkeeping is ours.
  for (auto& state : devices_) {
    for (FreeSet* pool : {&state.small_free, &state.large_free}) {
      for (Block* b : *pool) delete b;
    }
  }
  for (auto& [ptr, block] : live_) delete block;
}

size_t CachingAllocator::round_size(size_t nbytes) {
  if (nbytes < kRound) return kRound;
  return (nbytes + kRound - 1) / kRound * kRound;
}

size_t CachingAllocator::segment_size(size_t size) {
  if (size <= kSmallLimit) return kSmallSegment;
  if (size < kMidLimit) return kMidSegment;
  return (size + kLargeRound - 1) / kLargeRound * kLargeRound;
}

CachingAllocator::DeviceState& CachingAllocator::state_locked(int device) {
  if (device >= static_cast<int>(devices_.size())) devices_.resize(device + 1);
  return devices_[device];
}

CachingAllocator::Block* CachingAllocator::take_best_fit_locked(DeviceState& state, bool small,
                                                                size_t size) {
  FreeSet& pool = state.pool(small);
  Block key{0, small, size, nullptr};
  auto it = pool.lower_bound(&key);
  if (it == pool.end()) return nullptr;
  Block* block = *it;
  pool.erase(it);
  state.stats.cached_bytes -= block->size;
  return block;
}

CachingAllocator::Block* CachingAllocator::new_segment_locked(DeviceState& state, int device,
                                                              bool small, size_t size) {
  const size_t bytes = segment_size(size);
  void* ptr = source_->malloc(bytes, device);
  if (ptr == nullptr) {
    release_cached_locked(device);
    ptr = source_->malloc(bytes, device);
  }
  if (ptr == nullptr) return nullptr;
  ++state.stats.os_allocations;
  return new Block{device, small, bytes, static_cast<char*>(ptr)};
}

// Keeps the first `size` bytes of `block` and returns the rest to the pool when it is big enough
// to serve a later request (tiny large-pool leftovers would only fragment the free set).
void CachingAllocator::split_locked(DeviceState& state, Block* block, size_t size) {
  const size_t rest = block->size - size;
  const bool worth_it = block->small ? rest >= kRound : rest > kSmallLimit;
  if (!worth_it) return;
  Block* tail = new Block{block->device, block->small, rest, block->ptr + size};
  tail->prev = block;
  tail->next = block->next;
  if (block->next != nullptr) block->next->prev = tail;
  block->next = tail;
  block->size = size;
  state.pool(block->small).insert(tail);
  state.stats.cached_bytes += rest;
}

void* CachingAllocator::allocate(size_t nbytes, Device device) {
  OMPQ_CHECK(device.is_cuda(), "CUDA allocator asked for memory on ", device.str());
  const size_t size = round_size(nbytes);
  const bool small = size <= kSmallLimit;
  std::lock_guard<std::mutex> lock(mu_);
  DeviceState& state = state_locked(device.index);
  Block* block = take_best_fit_locked(state, small, size);
  if (block == nullptr) block = new_segment_locked(state, device.index, small, size);
  if (block == nullptr) throw_out_of_memory_locked(device.index, nbytes, size);
  split_locked(state, block, size);
  block->allocated = true;
  live_.emplace(block->ptr, block);
  state.stats.allocated_bytes += block->size;
  state.stats.peak_allocated_bytes =
      std::max(state.stats.peak_allocated_bytes, state.stats.allocated_bytes);
  return block->ptr;
}

void CachingAllocator::deallocate(void* ptr, size_t nbytes, Device device) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(ptr);
  if (it == live_.end()) {
    // Called from Storage's destructor, which cannot throw: a foreign or double-freed pointer is
    // memory corruption waiting to happen, so stop here with a message.
    std::fprintf(stderr,
                 "ompq: CUDA allocator asked to free %p (%zu bytes on %s), which it does "
                 "not own\n",
                 ptr, nbytes, device.str().c_str());
    std::abort();
  }
  Block* block = it->second;
  live_.erase(it);
  DeviceState& state = devices_[block->device];
  FreeSet& pool = state.pool(block->small);
  state.stats.allocated_bytes -= block->size;
  state.stats.cached_bytes += block->size;
  block->allocated = false;
  // Merge with free neighbours of the same segment so that the segment can serve bigger requests
  // (and be released whole by empty_cache()).
  for (Block* neighbour : {block->prev, block->next}) {
    if (neighbour == nullptr || neighbour->allocated) continue;
    pool.erase(neighbour);
    Block* first = neighbour == block->prev ? neighbour : block;
    Block* second = first == block ? neighbour : block;
    first->size += second->size;
    first->next = second->next;
    if (second->next != nullptr) second->next->prev = first;
    delete second;
    block = first;
  }
  pool.insert(block);
}

void CachingAllocator::release_cached_locked(int device) {
  if (device >= static_cast<int>(devices_.size())) return;
  DeviceState& state = devices_[device];
  for (FreeSet* pool : {&state.small_free, &state.large_free}) {
    for (auto it = pool->begin(); it != pool->end();) {
      Block* b = *it;
      if (b->prev != nullptr || b->next != nullptr) {  // part of a segment still in use
        ++it;
        continue;
      }
      source_->free(b->ptr, device);
      state.stats.cached_bytes -= b->size;
      it = pool->erase(it);
      delete b;
    }
  }
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  for (int d = 0; d < static_cast<int>(devices_.size()); ++d) release_cached_locked(d);
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  AllocatorStats total;
  for (const auto& state : devices_) {
    total.allocated_bytes += state.stats.allocated_bytes;
    total.cached_bytes += state.stats.cached_bytes;
    total.peak_allocated_bytes += state.stats.peak_allocated_bytes;
    total.os_allocations += state.stats.os_allocations;
  }
  return total;
}

AllocatorStats CachingAllocator::device_stats(int device) const {
  std::lock_guard<std::mutex> lock(mu_);
  return device < static_cast<int>(devices_.size()) ? devices_[device].stats : AllocatorStats{};
}

size_t CachingAllocator::largest_cached_block(int device) const {
  std::lock_guard<std::mutex> lock(mu_);
  return largest_cached_block_locked(device);
}

size_t CachingAllocator::largest_cached_block_locked(int device) const {
  if (device >= static_cast<int>(devices_.size())) return 0;
  size_t largest = 0;
  for (const FreeSet* pool : {&devices_[device].small_free, &devices_[device].large_free}) {
    if (!pool->empty()) largest = std::max(largest, (*pool->rbegin())->size);
  }
  return largest;
}

void CachingAllocator::throw_out_of_memory_locked(int device, size_t requested, size_t rounded) {
  size_t free_bytes = 0, total_bytes = 0;
  source_->memory_info(device, &free_bytes, &total_bytes);
  const AllocatorStats& s = devices_[device].stats;
  throw Error(absl::StrCat(
      "CUDA out of memory on cuda:", device, ": tried to allocate ", format_bytes(requested), " (",
      requested, " bytes; a segment of ", format_bytes(segment_size(rounded)), "); the device has ",
      format_bytes(free_bytes), " free of ", format_bytes(total_bytes), "; ompq's tensors hold ",
      format_bytes(s.allocated_bytes), ", its cache holds ", format_bytes(s.cached_bytes),
      " after releasing what it could (largest cached block ",
      format_bytes(largest_cached_block_locked(device)), ")"));
}

namespace {

// cudaMalloc/cudaFree on the requested device.
class CudaMemorySource final : public DeviceMemorySource {
 public:
  void* malloc(size_t nbytes, int device) override {
    DeviceGuard guard(device);
    void* ptr = nullptr;
    cudaError_t err = cudaMalloc(&ptr, nbytes);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // recoverable: the caller frees its cache and retries
      return nullptr;
    }
    if (err != cudaSuccess) throw_cuda_error(err, "cudaMalloc", __FILE__, __LINE__);
    return ptr;
  }

  void free(void* ptr, int device) override {
    DeviceGuard guard(device);
    OMPQ_CUDA_CHECK(cudaFree(ptr));
  }

  void memory_info(int device, size_t* free_bytes, size_t* total_bytes) override {
    DeviceGuard guard(device);
    OMPQ_CUDA_CHECK(cudaMemGetInfo(free_bytes, total_bytes));
  }
};

}  // namespace

CachingAllocator* device_allocator() {
  // Never destroyed: tensors with static lifetime may free their storage after main() returns.
  static CachingAllocator* allocator = new CachingAllocator(std::make_unique<CudaMemorySource>());
  return allocator;
}

}  // namespace ompq::cuda
