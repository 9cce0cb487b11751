// The caching device allocator. Its bookkeeping (rounding, best fit, splitting, merging, release
// on out-of-memory, the error message) runs on the CPU over a fake device memory; the last tests
// check the real allocator through CUDA tensors and need a GPU.
#include "cuda/allocator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "core/tensor.h"
#include "cuda_test_util.h"

namespace ompq::cuda {
namespace {

using ::testing::HasSubstr;

constexpr size_t kMiB = size_t{1} << 20;

// Device memory that is never touched: addresses are handed out from a counter, and a capacity
// per device makes malloc fail the way cudaMalloc does.
class FakeDeviceMemory final : public DeviceMemorySource {
 public:
  struct Counters {
    int mallocs = 0;
    int frees = 0;
    size_t in_use[2] = {0, 0};
  };

  FakeDeviceMemory(size_t capacity, Counters* counters)
      : capacity_(capacity), counters_(counters) {}

  void* malloc(size_t nbytes, int device) override {
    if (counters_->in_use[device] + nbytes > capacity_) return nullptr;
    ++counters_->mallocs;
    counters_->in_use[device] += nbytes;
    char* p = next_;
    next_ += (nbytes + kMiB - 1) / kMiB * kMiB + kMiB;  // gaps: segments are never adjacent
    sizes_[p] = nbytes;
    return p;
  }
  void free(void* ptr, int device) override {
    ++counters_->frees;
    counters_->in_use[device] -= sizes_.at(static_cast<char*>(ptr));
    sizes_.erase(static_cast<char*>(ptr));
  }
  void memory_info(int device, size_t* free_bytes, size_t* total_bytes) override {
    *free_bytes = capacity_ - counters_->in_use[device];
    *total_bytes = capacity_;
  }

 private:
  size_t capacity_;
  Counters* counters_;
  char* next_ = reinterpret_cast<char*>(uintptr_t{1} << 40);
  std::map<char*, size_t> sizes_;
};

class CachingAllocatorTest : public ::testing::Test {
 protected:
  void make(size_t capacity) {
    allocator_ = std::make_unique<CachingAllocator>(
        std::make_unique<FakeDeviceMemory>(capacity, &counters_));
  }
  void SetUp() override { make(size_t{1} << 30); }
  char* alloc(size_t n, int device = 0) {
    return static_cast<char*>(allocator_->allocate(n, Device::cuda(device)));
  }
  void release(void* p, size_t n, int device = 0) {
    allocator_->deallocate(p, n, Device::cuda(device));
  }

  FakeDeviceMemory::Counters counters_;
  std::unique_ptr<CachingAllocator> allocator_;
};

TEST(CachingAllocatorSizes, RoundsRequestsAndSegments) {
  EXPECT_EQ(CachingAllocator::round_size(0), 512u);
  EXPECT_EQ(CachingAllocator::round_size(1), 512u);
  EXPECT_EQ(CachingAllocator::round_size(512), 512u);
  EXPECT_EQ(CachingAllocator::round_size(513), 1024u);
  EXPECT_EQ(CachingAllocator::segment_size(512), 2 * kMiB);
  EXPECT_EQ(CachingAllocator::segment_size(kMiB), 2 * kMiB);
  EXPECT_EQ(CachingAllocator::segment_size(kMiB + 512), 20 * kMiB);
  EXPECT_EQ(CachingAllocator::segment_size(10 * kMiB - 512), 20 * kMiB);
  EXPECT_EQ(CachingAllocator::segment_size(10 * kMiB), 10 * kMiB);
  EXPECT_EQ(CachingAllocator::segment_size(10 * kMiB + 512), 12 * kMiB);
}

TEST_F(CachingAllocatorTest, ReusesAFreedBlock) {
  char* p = alloc(1000);
  release(p, 1000);
  EXPECT_EQ(alloc(900), p);
  EXPECT_EQ(counters_.mallocs, 1);
  EXPECT_EQ(allocator_->stats().os_allocations, 1);
}

TEST_F(CachingAllocatorTest, SmallBlocksShareOneSegment) {
  char* a = alloc(1000);
  char* b = alloc(3000);
  char* c = alloc(kMiB);
  EXPECT_EQ(b, a + 1024);
  EXPECT_EQ(c, b + 3072);
  EXPECT_EQ(counters_.mallocs, 1);
  AllocatorStats s = allocator_->stats();
  EXPECT_EQ(s.allocated_bytes, 1024 + 3072 + kMiB);
  EXPECT_EQ(s.cached_bytes, 2 * kMiB - (1024 + 3072 + kMiB));
}

TEST_F(CachingAllocatorTest, TakesTheBestFittingFreeBlock) {
  char* big = alloc(4096);
  char* guard1 = alloc(512);
  char* small = alloc(1024);
  char* guard2 = alloc(512);
  release(big, 4096);
  release(small, 1024);
  EXPECT_EQ(alloc(1000), small);
  EXPECT_EQ(alloc(2000), big);  // split: the rest of `big` stays cached
  EXPECT_EQ(alloc(2048), big + 2048);
  release(guard1, 512);
  release(guard2, 512);
}

TEST_F(CachingAllocatorTest, FreeingMergesNeighboursAndEmptyCacheReleasesWholeSegments) {
  char* a = alloc(1000);
  char* b = alloc(1000);
  char* c = alloc(1000);
  release(a, 1000);
  release(c, 1000);  // merges with the segment's free tail
  EXPECT_EQ(allocator_->largest_cached_block(0), 2 * kMiB - 2048);
  allocator_->empty_cache();  // b still lives in the segment: nothing to release
  EXPECT_EQ(counters_.frees, 0);
  release(b, 1000);  // merges with both neighbours: the segment is whole again
  EXPECT_EQ(allocator_->largest_cached_block(0), 2 * kMiB);
  EXPECT_EQ(allocator_->stats().cached_bytes, 2 * kMiB);
  allocator_->empty_cache();
  EXPECT_EQ(counters_.frees, 1);
  EXPECT_EQ(allocator_->stats().cached_bytes, 0u);
  EXPECT_EQ(allocator_->largest_cached_block(0), 0u);
  EXPECT_EQ(counters_.in_use[0], 0u);
}

TEST_F(CachingAllocatorTest, LargeBlocksSplitOnlyWhenTheRestIsWorthKeeping) {
  char* p = alloc(30 * kMiB);
  release(p, 30 * kMiB);
  char* q = alloc(20 * kMiB);  // 10 MiB left over: split
  EXPECT_EQ(q, p);
  char* r = alloc(9 * kMiB);  // 1 MiB left over: not split, r takes all 10 MiB
  EXPECT_EQ(r, p + 20 * kMiB);
  EXPECT_EQ(counters_.mallocs, 1);
  EXPECT_EQ(allocator_->stats().allocated_bytes, 30 * kMiB);
  EXPECT_EQ(allocator_->stats().cached_bytes, 0u);
  release(r, 9 * kMiB);
  release(q, 20 * kMiB);
  EXPECT_EQ(allocator_->largest_cached_block(0), 30 * kMiB);
}

TEST_F(CachingAllocatorTest, SmallAndLargePoolsDoNotMix) {
  char* large = alloc(12 * kMiB);
  release(large, 12 * kMiB);
  char* small = alloc(1000);
  EXPECT_NE(small, large);
  EXPECT_EQ(counters_.mallocs, 2);
}

TEST_F(CachingAllocatorTest, DevicesHaveTheirOwnCaches) {
  char* p = alloc(1000, 0);
  release(p, 1000, 0);
  char* q = alloc(1000, 1);
  EXPECT_NE(p, q);
  EXPECT_EQ(counters_.mallocs, 2);
  EXPECT_EQ(allocator_->device_stats(1).allocated_bytes, 1024u);
  EXPECT_EQ(allocator_->device_stats(0).allocated_bytes, 0u);
  EXPECT_EQ(allocator_->device_stats(0).cached_bytes, 2 * kMiB);
  EXPECT_EQ(allocator_->stats().allocated_bytes, 1024u);
  EXPECT_EQ(allocator_->device_stats(5).allocated_bytes, 0u);  // never used: empty
}

TEST_F(CachingAllocatorTest, TracksThePeak) {
  char* a = alloc(12 * kMiB);
  char* b = alloc(12 * kMiB);
  release(a, 12 * kMiB);
  release(b, 12 * kMiB);
  char* c = alloc(1000);
  AllocatorStats s = allocator_->stats();
  EXPECT_EQ(s.peak_allocated_bytes, 24 * kMiB);
  EXPECT_EQ(s.allocated_bytes, 1024u);
  release(c, 1000);
}

TEST_F(CachingAllocatorTest, OutOfMemoryReleasesTheCacheAndRetries) {
  make(64 * kMiB);
  char* p = alloc(40 * kMiB);
  release(p, 40 * kMiB);
  char* q = alloc(50 * kMiB);  // 40 cached + 50 > 64: the cached segment must go first
  EXPECT_NE(q, nullptr);
  EXPECT_EQ(counters_.frees, 1);
  EXPECT_EQ(counters_.mallocs, 2);
  EXPECT_EQ(allocator_->stats().cached_bytes, 0u);
}

TEST_F(CachingAllocatorTest, OutOfMemoryErrorSaysWhatWasAskedAndWhatIsLeft) {
  make(64 * kMiB);
  char* held = alloc(40 * kMiB);
  char* small = alloc(1000);  // keeps its 2 MiB segment alive: 2 MiB - 1 KiB stays cached
  try {
    alloc(100 * kMiB);
    FAIL() << "allocating more than the capacity did not throw";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("CUDA out of memory on cuda:0"));
    EXPECT_THAT(e.what(), HasSubstr("tried to allocate 100.00 MiB (104857600 bytes"));
    EXPECT_THAT(e.what(), HasSubstr("22.00 MiB free of 64.00 MiB"));
    EXPECT_THAT(e.what(), HasSubstr("tensors hold 40.00 MiB"));
    EXPECT_THAT(e.what(), HasSubstr("largest cached block 2.00 MiB"));
  }
  // The allocator still works after the failure.
  char* again = alloc(1000);
  EXPECT_EQ(again, small + 1024);
  release(held, 40 * kMiB);
}

TEST_F(CachingAllocatorTest, RefusesNonCudaDevices) {
  EXPECT_THROW(allocator_->allocate(16, Device::cpu()), Error);
}

TEST(CachingAllocatorDeathTest, FreeingAForeignPointerAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  FakeDeviceMemory::Counters counters;
  CachingAllocator allocator(std::make_unique<FakeDeviceMemory>(kMiB, &counters));
  int x = 0;
  EXPECT_DEATH(allocator.deallocate(&x, 4, Device::cuda(0)), "which it does not own");
}

// ---- the real allocator, through tensors (GPU) ------------------------------------------------

TEST(DeviceAllocator, IsInstalledForCudaAndReusesBlocks) {
  OMPQ_REQUIRE_GPU();
  EXPECT_EQ(allocator_for(DeviceType::kCUDA), device_allocator());
  void* first = nullptr;
  {
    Tensor t = Tensor::empty({1001}, DType::kF32, Device::cuda());
    first = t.data_ptr();
  }
  const int64_t mallocs = device_allocator()->stats().os_allocations;
  Tensor t = Tensor::empty({1001}, DType::kF32, Device::cuda());
  EXPECT_EQ(t.data_ptr(), first);
  EXPECT_EQ(device_allocator()->stats().os_allocations, mallocs);
  EXPECT_GE(device_allocator()->stats().allocated_bytes, 4004u);
}

TEST(DeviceAllocator, EmptyCacheReturnsFreeSegments) {
  OMPQ_REQUIRE_GPU();
  { Tensor t = Tensor::empty({int64_t{64} << 20}, DType::kU8, Device::cuda()); }
  EXPECT_GE(device_allocator()->stats().cached_bytes, size_t{64} << 20);
  device_allocator()->empty_cache();
  EXPECT_LT(device_allocator()->largest_cached_block(0), size_t{64} << 20);
}

TEST(DeviceAllocator, OutOfMemoryIsAClearErrorAndRecoverable) {
  OMPQ_REQUIRE_GPU();
  try {
    Tensor::empty({int64_t{1} << 50}, DType::kU8, Device::cuda());
    FAIL() << "allocating 1 PiB did not throw";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("CUDA out of memory on cuda:0"));
    EXPECT_THAT(e.what(), HasSubstr("1024.00 TiB"));
    EXPECT_THAT(e.what(), HasSubstr(" free of "));
    EXPECT_THAT(e.what(), HasSubstr("largest cached block"));
  }
  Tensor ok = Tensor::ones({3}, DType::kF32, Device::cuda());
  EXPECT_EQ(ok.to_vector<float>(), (std::vector<float>{1, 1, 1}));
}

}  // namespace
}  // namespace ompq::cuda
