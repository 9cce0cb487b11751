#include "data/dataloader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <numeric>
#include <set>
#include <string>
#include <thread>

#include "core/allocator.h"

namespace ompq::data {
namespace {

using ::testing::HasSubstr;

// Example i has input {i, a 24-bit digest of its sample seed} and label i % 7, so a batch shows
// which examples it holds and which transform seeds they were loaded with. Optionally fails at
// one index, and sleeps per example so that workers really overlap.
class IndexDataset : public Dataset {
 public:
  explicit IndexDataset(int64_t size, int64_t fail_at = -1, int sleep_us = 0)
      : size_(size), fail_at_(fail_at), sleep_us_(sleep_us) {}
  int64_t size() const override { return size_; }
  Shape input_shape() const override { return {2}; }
  int64_t num_classes() const override { return 7; }
  std::string name() const override { return "index dataset"; }
  int64_t loads() const { return loads_; }

 protected:
  Example load(int64_t index, Generator& rng) const override {
    ++loads_;
    if (sleep_us_ > 0) std::this_thread::sleep_for(std::chrono::microseconds(sleep_us_));
    if (index == fail_at_) throw std::runtime_error("disk on fire");
    Tensor input = Tensor::empty({2});
    input.data<float>()[0] = static_cast<float>(index);
    input.data<float>()[1] = static_cast<float>(rng.seed() >> 40);
    return Example{input, index % 7};
  }

 private:
  int64_t size_, fail_at_;
  int sleep_us_;
  mutable std::atomic<int64_t> loads_{0};
};

std::vector<Batch> collect(const DataLoader& loader, int64_t start_step = 0) {
  std::vector<Batch> batches;
  for (Batch& batch : loader.batches(start_step)) batches.push_back(std::move(batch));
  return batches;
}

std::vector<int64_t> all_indices(const std::vector<Batch>& batches) {
  std::vector<int64_t> out;
  for (const Batch& b : batches) out.insert(out.end(), b.indices.begin(), b.indices.end());
  return out;
}

// Everything a batch holds, as numbers, for exact comparisons.
std::vector<double> contents(const std::vector<Batch>& batches) {
  std::vector<double> out;
  for (const Batch& b : batches) {
    out.push_back(static_cast<double>(b.step));
    for (float v : b.inputs.to_vector<float>()) out.push_back(v);
    for (int64_t v : b.labels.to_vector<int64_t>()) out.push_back(static_cast<double>(v));
  }
  return out;
}

DataLoader make_loader(std::shared_ptr<const Dataset> ds, DataLoaderOptions o) {
  return DataLoader(std::move(ds), o);
}

TEST(DataLoaderTest, BatchesInOrderWithPartialLastBatch) {
  DataLoaderOptions o;
  o.batch_size = 4;
  DataLoader loader = make_loader(std::make_shared<IndexDataset>(10), o);
  EXPECT_EQ(loader.num_samples(), 10);
  EXPECT_EQ(loader.num_batches(), 3);
  std::vector<Batch> batches = collect(loader);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].inputs.shape(), (Shape{4, 2}));
  EXPECT_EQ(batches[0].inputs.dtype(), DType::kF32);
  EXPECT_EQ(batches[0].labels.dtype(), DType::kI64);
  EXPECT_EQ(batches[2].inputs.shape(), (Shape{2, 2}));
  EXPECT_EQ(batches[2].labels.to_vector<int64_t>(), (std::vector<int64_t>{8 % 7, 9 % 7}));
  std::vector<float> last = batches[2].inputs.to_vector<float>();
  EXPECT_EQ(last[0], 8.0f);
  EXPECT_EQ(last[2], 9.0f);
  for (int64_t k = 0; k < 3; ++k) EXPECT_EQ(batches[k].step, k);
  std::vector<int64_t> expected(10);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(all_indices(batches), expected);
}

TEST(DataLoaderTest, DropLastDropsThePartialBatch) {
  DataLoaderOptions o;
  o.batch_size = 4;
  o.drop_last = true;
  DataLoader loader = make_loader(std::make_shared<IndexDataset>(10), o);
  EXPECT_EQ(loader.num_batches(), 2);
  std::vector<Batch> batches = collect(loader);
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[1].indices, (std::vector<int64_t>{4, 5, 6, 7}));
  o.batch_size = 5;  // divides: nothing dropped
  EXPECT_EQ(make_loader(std::make_shared<IndexDataset>(10), o).num_batches(), 2);
}

TEST(DataLoaderTest, ShuffleIsAPermutationFixedBySeedAndEpoch) {
  auto ds = std::make_shared<IndexDataset>(100);
  DataLoaderOptions o;
  o.batch_size = 8;
  o.shuffle = true;
  o.seed = 42;
  DataLoader a = make_loader(ds, o), b = make_loader(ds, o);
  std::vector<int64_t> epoch0 = all_indices(collect(a));
  EXPECT_EQ(epoch0, all_indices(collect(b)));
  EXPECT_EQ(epoch0, a.epoch_indices());
  std::vector<int64_t> sorted = epoch0;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 100; ++i) ASSERT_EQ(sorted[i], i);
  std::vector<int64_t> identity(sorted);
  EXPECT_NE(epoch0, identity);

  a.set_epoch(1);
  std::vector<int64_t> epoch1 = all_indices(collect(a));
  EXPECT_NE(epoch1, epoch0);
  b.set_epoch(1);
  EXPECT_EQ(all_indices(collect(b)), epoch1);
  a.set_epoch(0);
  EXPECT_EQ(all_indices(collect(a)), epoch0);

  o.seed = 43;
  EXPECT_NE(all_indices(collect(make_loader(ds, o))), epoch0);
}

TEST(DataLoaderTest, SampleSeedsDependOnSeedEpochAndIndexOnly) {
  auto ds = std::make_shared<IndexDataset>(12);
  DataLoaderOptions o;
  o.batch_size = 12;
  o.seed = 9;
  DataLoader loader = make_loader(ds, o);
  std::vector<float> e0 = collect(loader)[0].inputs.to_vector<float>();
  loader.set_epoch(1);
  std::vector<float> e1 = collect(loader)[0].inputs.to_vector<float>();
  std::set<float> seeds;
  int changed = 0;
  for (int i = 0; i < 12; ++i) {
    seeds.insert(e0[2 * i + 1]);
    changed += e0[2 * i + 1] != e1[2 * i + 1];
  }
  EXPECT_EQ(seeds.size(), 12u);  // distinct per example
  EXPECT_GE(changed, 11);        // fresh per epoch
  // Shuffling moves examples, not their seeds.
  o.shuffle = true;
  DataLoader shuffled = make_loader(ds, o);
  std::vector<Batch> batches = collect(shuffled);
  std::vector<float> s0 = batches[0].inputs.to_vector<float>();
  for (int r = 0; r < 12; ++r) {
    int64_t index = batches[0].indices[r];
    EXPECT_EQ(s0[2 * r + 1], e0[2 * index + 1]) << "index " << index;
  }
}

TEST(DataLoaderTest, ShardsAreDisjointAndCoverTheEpoch) {
  auto ds = std::make_shared<IndexDataset>(12);
  DataLoaderOptions o;
  o.batch_size = 2;
  o.shuffle = true;
  o.seed = 3;
  o.world_size = 3;
  const std::vector<int64_t> full = make_loader(ds, {2, true, 3}).epoch_indices();
  std::multiset<int64_t> seen;
  for (int rank = 0; rank < 3; ++rank) {
    o.rank = rank;
    DataLoader loader = make_loader(ds, o);
    EXPECT_EQ(loader.num_samples(), 4);
    std::vector<int64_t> mine = all_indices(collect(loader));
    ASSERT_EQ(mine.size(), 4u);
    for (int64_t k = 0; k < 4; ++k) EXPECT_EQ(mine[k], full[rank + 3 * k]);  // strided
    seen.insert(mine.begin(), mine.end());
  }
  EXPECT_EQ(seen.size(), 12u);
  for (int64_t i = 0; i < 12; ++i) EXPECT_EQ(seen.count(i), 1u) << i;
}

TEST(DataLoaderTest, UnevenShardsArePaddedWithTheFirstEntries) {
  auto ds = std::make_shared<IndexDataset>(10);
  DataLoaderOptions o;
  o.batch_size = 3;
  o.shuffle = true;
  o.world_size = 4;  // 10 -> padded to 12
  const std::vector<int64_t> full = make_loader(ds, {3, true}).epoch_indices();
  std::vector<int64_t> padded = full;
  padded.push_back(full[0]);
  padded.push_back(full[1]);
  std::multiset<int64_t> seen;
  for (int rank = 0; rank < 4; ++rank) {
    o.rank = rank;
    DataLoader loader = make_loader(ds, o);
    EXPECT_EQ(loader.num_samples(), 3);
    EXPECT_EQ(loader.num_batches(), 1);
    std::vector<int64_t> mine = all_indices(collect(loader));
    ASSERT_EQ(mine.size(), 3u);
    for (int64_t k = 0; k < 3; ++k) EXPECT_EQ(mine[k], padded[rank + 4 * k]);
    seen.insert(mine.begin(), mine.end());
  }
  for (int64_t i = 0; i < 10; ++i) {
    EXPECT_EQ(seen.count(i), i == full[0] || i == full[1] ? 2u : 1u) << i;
  }
  // More ranks than examples: every rank still gets one.
  o.world_size = 16;
  o.rank = 15;
  EXPECT_EQ(make_loader(ds, o).epoch_indices(), std::vector<int64_t>{full[15 % 10]});
}

TEST(DataLoaderTest, ResumesFromAStep) {
  auto ds = std::make_shared<IndexDataset>(50);
  DataLoaderOptions o;
  o.batch_size = 6;
  o.shuffle = true;
  o.seed = 11;
  DataLoader loader = make_loader(ds, o);
  loader.set_epoch(2);
  std::vector<Batch> full = collect(loader);
  ASSERT_EQ(full.size(), 9u);
  for (int workers : {0, 2}) {
    o.num_workers = workers;
    DataLoader resumed = make_loader(ds, o);
    resumed.set_epoch(2);
    std::vector<Batch> tail = collect(resumed, 5);
    ASSERT_EQ(tail.size(), 4u);
    EXPECT_EQ(contents(tail), contents(std::vector<Batch>(full.begin() + 5, full.end())));
    EXPECT_TRUE(collect(resumed, 9).empty());
  }
}

TEST(DataLoaderTest, WorkerCountDoesNotChangeTheBatches) {
  auto ds = std::make_shared<IndexDataset>(203, /*fail_at=*/-1, /*sleep_us=*/20);
  DataLoaderOptions o;
  o.batch_size = 8;
  o.shuffle = true;
  o.seed = 1;
  o.world_size = 2;
  o.rank = 1;
  const std::vector<double> reference = contents(collect(make_loader(ds, o)));
  ASSERT_FALSE(reference.empty());
  for (int workers : {1, 3, 8}) {
    for (int prefetch : {1, 4}) {
      o.num_workers = workers;
      o.prefetch_factor = prefetch;
      EXPECT_EQ(contents(collect(make_loader(ds, o))), reference)
          << workers << " workers, prefetch " << prefetch;
    }
  }
}

TEST(DataLoaderTest, PropagatesLoadErrorsWithTheIndex) {
  for (int workers : {0, 3}) {
    auto ds = std::make_shared<IndexDataset>(40, /*fail_at=*/13);
    DataLoaderOptions o;
    o.batch_size = 4;
    o.num_workers = workers;
    DataLoader loader = make_loader(ds, o);
    BatchStream stream = loader.batches();
    for (int k = 0; k < 3; ++k) {
      std::optional<Batch> batch = stream.next();
      ASSERT_TRUE(batch.has_value());
      EXPECT_EQ(batch->step, k);
    }
    for (int attempt = 0; attempt < 2; ++attempt) {  // batch 3 holds example 13; fails each time
      EXPECT_THAT(
          [&] { stream.next(); },
          ::testing::ThrowsMessage<Error>(::testing::AllOf(
              HasSubstr("loading example 13 of index dataset failed"), HasSubstr("disk on fire"))))
          << workers << " workers";
    }
  }
}

TEST(DataLoaderTest, ReportsADatasetBreakingItsContract) {
  class WrongShape : public IndexDataset {
   public:
    using IndexDataset::IndexDataset;
    Shape input_shape() const override { return {3}; }
  };
  class TooFewClasses : public IndexDataset {
   public:
    using IndexDataset::IndexDataset;
    int64_t num_classes() const override { return 5; }
  };
  DataLoaderOptions o;
  o.batch_size = 2;
  DataLoader loader = make_loader(std::make_shared<WrongShape>(4), o);
  EXPECT_THAT([&] { collect(loader); },
              ::testing::ThrowsMessage<Error>(::testing::AllOf(
                  HasSubstr("loading example 0"), HasSubstr("f32 input of shape [2]"),
                  HasSubstr("expected contiguous f32 of shape [3]"))));
  DataLoader labels = make_loader(std::make_shared<TooFewClasses>(8), o);
  EXPECT_THAT([&] { collect(labels); },
              ::testing::ThrowsMessage<Error>(::testing::AllOf(
                  HasSubstr("loading example 5"), HasSubstr("has label 5 (expected 0..4)"))));
}

int64_t thread_count() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoll(line.substr(8));
  }
  return -1;
}

TEST(DataLoaderTest, AbandonedStreamStopsItsWorkers) {
  auto ds = std::make_shared<IndexDataset>(10000, /*fail_at=*/-1, /*sleep_us=*/200);
  DataLoaderOptions o;
  o.batch_size = 16;
  o.num_workers = 4;
  o.prefetch_factor = 2;
  DataLoader loader = make_loader(ds, o);
  // ThreadSanitizer starts a helper thread of its own with the process's first thread: one thread
  // started and joined first, so that the counts below are the loader's workers only.
  std::thread([] {}).join();
  const int64_t threads_before = thread_count();
  {
    BatchStream stream = loader.batches();
    EXPECT_EQ(thread_count(), threads_before + 4);
    ASSERT_TRUE(stream.next().has_value());
    ASSERT_TRUE(stream.next().has_value());
  }  // abandoned after 2 of 625 batches
  EXPECT_EQ(thread_count(), threads_before);
  // Prefetch is bounded: at most 2 consumed + 4 * 2 in flight batches were ever started.
  EXPECT_LE(ds->loads(), (2 + 8) * 16);
  // Abandoning before the first batch, and with errors pending, must not hang either.
  { BatchStream stream = loader.batches(); }
  {
    DataLoader failing = make_loader(std::make_shared<IndexDataset>(100, /*fail_at=*/0), o);
    BatchStream stream = failing.batches();
    EXPECT_THROW(stream.next(), Error);
  }
  EXPECT_EQ(thread_count(), threads_before);
}

TEST(DataLoaderTest, EmptyDatasetHasNoBatches) {
  DataLoaderOptions o;
  o.shuffle = true;
  o.num_workers = 2;
  o.world_size = 2;
  DataLoader loader = make_loader(std::make_shared<IndexDataset>(0), o);
  EXPECT_EQ(loader.num_batches(), 0);
  EXPECT_TRUE(collect(loader).empty());
}

TEST(DataLoaderTest, RejectsBadArguments) {
  auto ds = std::make_shared<IndexDataset>(10);
  auto make = [&](DataLoaderOptions o) { return [ds, o] { DataLoader loader(ds, o); }; };
  DataLoaderOptions o;
  o.batch_size = 0;
  EXPECT_THAT(make(o), ::testing::ThrowsMessage<Error>(HasSubstr("batch_size 0 (expected >= 1)")));
  o = {};
  o.num_workers = -1;
  EXPECT_THAT(make(o), ::testing::ThrowsMessage<Error>(HasSubstr("num_workers -1")));
  o = {};
  o.prefetch_factor = 0;
  EXPECT_THAT(make(o), ::testing::ThrowsMessage<Error>(HasSubstr("prefetch_factor 0")));
  o = {};
  o.world_size = 2;
  o.rank = 2;
  EXPECT_THAT(make(o), ::testing::ThrowsMessage<Error>(
                           HasSubstr("rank 2 of world_size 2 (expected 0 <= rank < world_size)")));
  EXPECT_THAT([] { DataLoader loader(nullptr, {}); },
              ::testing::ThrowsMessage<Error>(HasSubstr("dataset is null")));
  DataLoader loader(ds, {4});
  EXPECT_THAT([&] { loader.batches(4); },
              ::testing::ThrowsMessage<Error>(HasSubstr("start step 4 is outside [0, 3]")));
  EXPECT_THAT([&] { loader.set_epoch(-1); },
              ::testing::ThrowsMessage<Error>(HasSubstr("epoch -1 is negative")));
}

// A stand-in for page-locked memory (no GPU needed): ordinary CPU blocks, each one remembered
// while it is handed out.
class RecordingPinnedAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes, Device device) override {
    EXPECT_TRUE(device.is_cpu());
    void* p = cpu_allocator()->allocate(nbytes, device);
    std::lock_guard<std::mutex> lock(mu_);
    live_.insert(p);
    ++allocations_;
    return p;
  }
  void deallocate(void* ptr, size_t nbytes, Device device) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      EXPECT_EQ(live_.erase(ptr), 1u) << "freed a block it did not hand out";
    }
    cpu_allocator()->deallocate(ptr, nbytes, device);
  }
  void empty_cache() override {}
  AllocatorStats stats() const override { return {}; }

  bool owns(const Tensor& t) const {
    std::lock_guard<std::mutex> lock(mu_);
    return live_.count(t.storage()->data()) == 1;
  }
  int allocations() const { return allocations_; }
  size_t live() const {
    std::lock_guard<std::mutex> lock(mu_);
    return live_.size();
  }

 private:
  mutable std::mutex mu_;
  std::set<void*> live_;
  std::atomic<int> allocations_{0};
};

// Installs a pinned allocator (or none) for a scope and restores the previous one after.
class PinnedAllocatorScope {
 public:
  explicit PinnedAllocatorScope(Allocator* allocator) : previous_(pinned_allocator()) {
    set_pinned_allocator(allocator);
  }
  ~PinnedAllocatorScope() { set_pinned_allocator(previous_); }

 private:
  Allocator* previous_;
};

TEST(DataLoaderTest, PinMemoryBuildsEachBatchInPinnedMemory) {
  auto ds = std::make_shared<IndexDataset>(37);
  DataLoaderOptions o;
  o.batch_size = 4;
  o.shuffle = true;
  const std::vector<double> reference = contents(collect(make_loader(ds, o)));
  RecordingPinnedAllocator pinned;
  PinnedAllocatorScope scope(&pinned);
  o.pin_memory = true;
  for (int workers : {0, 2}) {
    o.num_workers = workers;
    const int before = pinned.allocations();
    {
      const std::vector<Batch> batches = collect(make_loader(ds, o));
      ASSERT_EQ(batches.size(), 10u);
      EXPECT_EQ(contents(batches), reference) << workers << " workers";
      for (const Batch& b : batches) {
        EXPECT_TRUE(pinned.owns(b.inputs) && pinned.owns(b.labels)) << "batch " << b.step;
        EXPECT_TRUE(b.inputs.device().is_cpu());
      }
      EXPECT_EQ(pinned.allocations() - before, 20) << "inputs and labels of 10 batches";
    }
    EXPECT_EQ(pinned.live(), 0u) << "every block goes back with its batch";
  }
}

TEST(DataLoaderTest, PinMemoryWithoutAPinnedAllocatorUsesOrdinaryMemory) {
  auto ds = std::make_shared<IndexDataset>(9);
  DataLoaderOptions o;
  o.batch_size = 4;
  const std::vector<double> reference = contents(collect(make_loader(ds, o)));
  PinnedAllocatorScope scope(nullptr);  // what a machine without a usable GPU has
  o.pin_memory = true;
  EXPECT_EQ(contents(collect(make_loader(ds, o))), reference);
}

}  // namespace
}  // namespace ompq::data
