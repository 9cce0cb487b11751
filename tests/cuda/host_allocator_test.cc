// The pinned host allocator and asynchronous host-to-device copies. Its bookkeeping (size
// classes, no reuse before the recorded copies are done, release on out-of-memory, the error)
// runs on the CPU over fake memory and fake stream markers; the last tests copy real pinned
// buffers and data loader batches to a GPU and need one.
#include "cuda/host_allocator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "core/allocator.h"
#include "cuda_test_util.h"
#include "data/dataloader.h"
#include "data/synthetic.h"

namespace ompq::cuda {
namespace {

using ::testing::HasSubstr;

// Host memory with a capacity, and markers that are reached only when the test says so.
class FakePinnedMemory final : public PinnedMemorySource {
 public:
  struct State {
    size_t capacity = size_t{1} << 30;
    size_t in_use = 0;
    int mallocs = 0;
    int frees = 0;
    std::set<int*> pending;  // markers not reached yet
    int markers_alive = 0;
  };
  explicit FakePinnedMemory(State* state) : state_(state) {}

  void* malloc(size_t nbytes) override {
    if (state_->in_use + nbytes > state_->capacity) return nullptr;
    state_->in_use += nbytes;
    ++state_->mallocs;
    char* p = new char[nbytes];
    sizes_[p] = nbytes;
    return p;
  }
  void free(void* ptr) override {
    char* p = static_cast<char*>(ptr);
    state_->in_use -= sizes_.at(p);
    sizes_.erase(p);
    ++state_->frees;
    delete[] p;
  }
  Marker mark(cudaStream_t, int) override {
    int* marker = new int(0);
    state_->pending.insert(marker);
    ++state_->markers_alive;
    return marker;
  }
  bool reached(Marker marker) override {
    return state_->pending.count(static_cast<int*>(marker)) == 0;
  }
  void destroy(Marker marker) override {
    state_->pending.erase(static_cast<int*>(marker));
    --state_->markers_alive;
    delete static_cast<int*>(marker);
  }

 private:
  State* state_;
  std::map<char*, size_t> sizes_;
};

class PinnedHostAllocatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    allocator_ = std::make_unique<PinnedHostAllocator>(std::make_unique<FakePinnedMemory>(&fake_));
  }
  char* alloc(size_t n) { return static_cast<char*>(allocator_->allocate(n, Device::cpu())); }
  void release(void* p, size_t n) { allocator_->deallocate(p, n, Device::cpu()); }
  // The stream runs past every marker placed so far.
  void streams_catch_up() { fake_.pending.clear(); }

  FakePinnedMemory::State fake_;
  std::unique_ptr<PinnedHostAllocator> allocator_;
};

TEST(PinnedHostAllocatorSizes, RoundsUpToPowersOfTwoOfAtLeast4KiB) {
  EXPECT_EQ(PinnedHostAllocator::round_size(0), 4096u);
  EXPECT_EQ(PinnedHostAllocator::round_size(4096), 4096u);
  EXPECT_EQ(PinnedHostAllocator::round_size(4097), 8192u);
  EXPECT_EQ(PinnedHostAllocator::round_size(38535168), size_t{64} << 20);  // 64x3x224x224 f32
}

TEST_F(PinnedHostAllocatorTest, ReusesAFreedBlockOfItsSizeClassOnly) {
  char* a = alloc(5000);
  release(a, 5000);
  EXPECT_NE(alloc(20000), a);  // another size class
  EXPECT_EQ(alloc(8000), a);   // same class (8 KiB)
  EXPECT_EQ(fake_.mallocs, 2);
  const AllocatorStats s = allocator_->stats();
  EXPECT_EQ(s.allocated_bytes, 8192u + 32768u);
  EXPECT_EQ(s.cached_bytes, 0u);
  EXPECT_EQ(s.os_allocations, 2);
}

TEST_F(PinnedHostAllocatorTest, ABlockIsNotReusedBeforeItsRecordedCopiesAreDone) {
  char* a = alloc(5000);
  EXPECT_TRUE(allocator_->record_use(a + 100, nullptr, 0));  // a copy from inside the block
  release(a, 5000);
  char* b = alloc(5000);  // the copy may still read `a`
  EXPECT_NE(b, a);
  release(b, 5000);
  streams_catch_up();
  char* c = alloc(5000);
  char* d = alloc(5000);
  EXPECT_TRUE((c == a && d == b) || (c == b && d == a));
  EXPECT_EQ(fake_.mallocs, 2);
  EXPECT_EQ(fake_.markers_alive, 0) << "reached markers are destroyed";
}

TEST_F(PinnedHostAllocatorTest, RecordUseIgnoresMemoryThatIsNotALiveBlock) {
  char* a = alloc(4096);
  std::vector<char> pageable(16);
  EXPECT_FALSE(allocator_->record_use(pageable.data(), nullptr, 0));
  EXPECT_FALSE(allocator_->record_use(a + 4096, nullptr, 0));  // one past the end
  release(a, 4096);
  EXPECT_FALSE(allocator_->record_use(a, nullptr, 0));  // freed
  EXPECT_EQ(fake_.markers_alive, 0);
}

TEST_F(PinnedHostAllocatorTest, OutOfMemoryReleasesFinishedBlocksThenNamesTheSizes) {
  fake_.capacity = 3 * 8192;
  char* a = alloc(8192);
  char* b = alloc(8192);
  allocator_->record_use(b, nullptr, 0);
  release(a, 8192);
  release(b, 8192);
  // 16 KiB does not fit beside the two cached 8 KiB blocks: `a`'s is released, `b`'s is still
  // being copied from and stays.
  char* c = alloc(16384);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(fake_.frees, 1);
  EXPECT_EQ(allocator_->stats().cached_bytes, 8192u);
  EXPECT_THAT([&] { alloc(16384); },
              ::testing::ThrowsMessage<Error>(AllOf(
                  HasSubstr("out of pinned host memory: cannot allocate 16.00 KiB"),
                  HasSubstr("16.00 KiB is in use and 8.00 KiB is cached for copies still running"),
                  HasSubstr("pin_memory"))));
  release(c, 16384);
}

TEST_F(PinnedHostAllocatorTest, EmptyCacheKeepsBlocksWithCopiesInFlight) {
  char* a = alloc(4096);
  char* b = alloc(4096);
  allocator_->record_use(b, nullptr, 0);
  release(a, 4096);
  release(b, 4096);
  allocator_->empty_cache();
  EXPECT_EQ(fake_.frees, 1);
  streams_catch_up();
  allocator_->empty_cache();
  EXPECT_EQ(fake_.frees, 2);
  EXPECT_EQ(fake_.in_use, 0u);
  EXPECT_EQ(allocator_->stats().cached_bytes, 0u);
}

TEST_F(PinnedHostAllocatorTest, RejectsDeviceMemoryAndForeignFrees) {
  EXPECT_THAT([&] { allocator_->allocate(16, Device::cuda(0)); },
              ::testing::ThrowsMessage<Error>(HasSubstr("pinned memory is host memory")));
  int x = 0;
  EXPECT_THAT([&] { release(&x, 4); },
              ::testing::ThrowsMessage<Error>(HasSubstr("which it did not allocate")));
}

// Copies run asynchronously from pinned memory: a block freed right after its copy was queued,
// and the blocks allocated and overwritten at once, must not change what arrives on the GPU.
TEST(PinnedCopyTest, FreeingTheSourceRightAfterAnAsyncCopyIsSafe) {
  OMPQ_REQUIRE_GPU();
  ASSERT_NE(pinned_allocator(), nullptr);
  constexpr int kCopies = 6;
  const Shape shape = {16, 1 << 20};  // 64 MiB each: copies take milliseconds
  std::vector<Tensor> on_gpu;
  for (int i = 0; i < kCopies; ++i) {
    Allocator* pinned = pinned_allocator();
    const size_t nbytes = shape_numel(shape) * sizeof(float);
    void* p = pinned->allocate(nbytes, Device::cpu());
    auto storage = std::make_shared<Storage>(p, nbytes, Device::cpu(), [pinned, nbytes](void* q) {
      pinned->deallocate(q, nbytes, Device::cpu());
    });
    Tensor host = Tensor::from_storage(storage, 0, shape, contiguous_strides(shape), DType::kF32);
    std::fill_n(host.data<float>(), host.numel(), static_cast<float>(i));
    on_gpu.push_back(host.to(Device::cuda()));
    // `host` and its storage die here; the next iteration's block may be this one only after the
    // copy is done.
  }
  for (int i = 0; i < kCopies; ++i) {
    const Tensor back = on_gpu[i].to(Device::cpu());
    const float* v = back.data<float>();
    int64_t wrong = 0;
    for (int64_t j = 0; j < back.numel(); ++j) wrong += v[j] != static_cast<float>(i);
    EXPECT_EQ(wrong, 0) << "copy " << i;
  }
}

TEST(PinnedCopyTest, DataLoaderPinnedBatchesArriveIntactOnTheGpu) {
  OMPQ_REQUIRE_GPU();
  data::SyntheticOptions so;
  so.size = 96;
  so.input_shape = {3, 32, 32};
  auto dataset = std::make_shared<data::SyntheticDataset>(so);
  data::DataLoaderOptions o;
  o.batch_size = 16;
  o.num_workers = 2;
  o.shuffle = true;
  data::DataLoader plain(dataset, o);
  o.pin_memory = true;
  data::DataLoader pinned(dataset, o);
  std::vector<Tensor> expected, arrived;
  for (data::Batch& b : plain.batches()) expected.push_back(b.inputs);
  for (data::Batch& b : pinned.batches()) {
    EXPECT_GE(pinned_allocator()->stats().allocated_bytes, b.inputs.nbytes()) << "not pinned";
    arrived.push_back(b.inputs.to(Device::cuda()));
  }
  ASSERT_EQ(arrived.size(), expected.size());
  for (size_t i = 0; i < arrived.size(); ++i) {
    testing::expect_close(expected[i], arrived[i], 0.0, 0.0, "batch " + std::to_string(i));
  }
}

}  // namespace
}  // namespace ompq::cuda
