// DataLoader: turns a Dataset into batches, optionally shuffled, sharded across ranks and built
// ahead of time by worker threads.
//
// Determinism: the batches of an epoch are a pure function of (dataset, options, epoch). The
// shuffle is a Fisher-Yates permutation drawn from Philox keyed by (seed, epoch); each example's
// random transforms are keyed by (seed, epoch, dataset index). Workers only change *when* a batch
// is built, never what it holds or the order in which the consumer receives it.
//
// Sharding (rank, world_size), as PyTorch's DistributedSampler with drop_last=False: the
// epoch's (permuted) index list is padded to a multiple of world_size by repeating its first
// entries, and rank r takes positions r, r + world_size, ... So every rank sees the same number
// of examples, ceil(N / world_size); the shards are disjoint and cover the dataset when world_size
// divides N, and otherwise the list's first (world_size - N mod world_size) entries are seen twice.
//
// Threads: workers are std::threads that call Dataset::get() and copy examples into the batch with
// plain loops, no parallel_for, so that they never open OpenMP regions of their own beside the
// training step's (see data/dataset.h).
#pragma once

#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "data/dataset.h"

namespace ompq::data {

struct DataLoaderOptions {
  int64_t batch_size = 1;
  bool shuffle = false;
  // Keys the shuffle and each example's random transforms.
  uint64_t seed = 0;
  // Drop this rank's last batch when it is smaller than batch_size.
  bool drop_last = false;
  // 0: each batch is built on the consumer's thread when asked for.
  int num_workers = 0;
  // At most prefetch_factor * num_workers batches are being built or waiting at any time.
  int prefetch_factor = 2;
  int rank = 0;
  int world_size = 1;
  // Build the batches in page-locked host memory (core's pinned_allocator(), installed when a GPU
  // is usable; ordinary memory otherwise), so that copying them to the GPU (Tensor::to) is an
  // asynchronous DMA: the host goes on while it runs. Set it when the batches go to a GPU.
  bool pin_memory = false;
};

struct Batch {
  Tensor inputs;                 // f32 [B, input_shape...]
  Tensor labels;                 // i64 [B]
  int64_t step = 0;              // position of this batch within the epoch on this rank
  std::vector<int64_t> indices;  // dataset index of each row
};

class BatchStream;
struct BatchStreamState;  // defined in dataloader.cc

class DataLoader {
 public:
  // Throws Error for a null dataset or invalid options.
  DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options);

  // Selects the epoch that the next batches() call iterates (the shuffle depends on it).
  void set_epoch(int64_t epoch);
  int64_t epoch() const { return epoch_; }

  // Examples per epoch on this rank, padding included: ceil(N / world_size).
  int64_t num_samples() const;
  // Batches per epoch on this rank.
  int64_t num_batches() const;
  // This rank's dataset indices for the current epoch, in iteration order.
  std::vector<int64_t> epoch_indices() const;

  // Iterates the current epoch from batch `start_step` (0 <= start_step <= num_batches(); a
  // resumed run passes the step it stopped at). Destroying the stream early stops its workers.
  BatchStream batches(int64_t start_step = 0) const;

  const Dataset& dataset() const { return *dataset_; }
  const DataLoaderOptions& options() const { return options_; }

 private:
  std::shared_ptr<const Dataset> dataset_;
  DataLoaderOptions options_;
  int64_t epoch_ = 0;
};

// One pass over an epoch (from a start step). Usable as a range:
//   for (Batch& batch : loader.batches()) { ... }
class BatchStream {
 public:
  BatchStream(BatchStream&&) noexcept;
  BatchStream& operator=(BatchStream&&) = delete;
  BatchStream(const BatchStream&) = delete;
  ~BatchStream();  // stops the workers (each finishes at most the example it is loading)

  // The next batch in order, or nullopt after the last. When loading an example failed, throws
  // Error naming the dataset and the example's index, and throws it again on every later call.
  std::optional<Batch> next();

  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = Batch*;
    using reference = Batch&;

    Iterator(BatchStream* stream, std::optional<Batch> current)
        : stream_(stream), current_(std::move(current)) {}
    Batch& operator*() { return *current_; }
    Batch* operator->() { return &*current_; }
    Iterator& operator++() {
      current_ = stream_->next();
      return *this;
    }
    // Iterators compare equal when both are past the end (the only comparison a range-for makes).
    bool operator==(const Iterator& other) const {
      return current_.has_value() == other.current_.has_value();
    }
    bool operator!=(const Iterator& other) const { return !(*this == other); }

   private:
    BatchStream* stream_;
    std::optional<Batch> current_;
  };
  Iterator begin() { return Iterator(this, next()); }
  Iterator end() { return Iterator(this, std::nullopt); }

 private:
  friend class DataLoader;
  BatchStream(std::unique_ptr<BatchStreamState> state, int num_workers);
  void stop_workers();

  std::unique_ptr<BatchStreamState> state_;
  std::vector<std::thread> workers_;
};

}  // namespace ompq::data
