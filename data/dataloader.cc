#include "data/dataloader.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <numeric>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/allocator.h"
#include "data/seeding.h"

namespace ompq::data {

// Shared by the consumer and the workers. Batches are claimed in step order and handed to the
// consumer in step order; `done` holds the ones built ahead of it.
struct BatchStreamState {
  struct Result {
    std::optional<Batch> batch;
    std::optional<std::string> error;
  };

  std::shared_ptr<const Dataset> dataset;
  std::vector<int64_t> indices;  // this rank's examples for the epoch, drop_last applied
  int64_t batch_size = 1;
  int64_t end_step = 0;  // one past the last batch
  uint64_t transform_key = 0;
  int64_t max_in_flight = 1;  // claimed but not yet consumed
  bool pin_memory = false;

  std::mutex mu;
  std::condition_variable batch_done;  // the consumer waits for its next batch
  std::condition_variable slot_free;   // workers wait for room to claim a batch
  int64_t next_to_claim = 0;
  int64_t next_to_consume = 0;
  std::map<int64_t, Result> done;
  std::atomic<bool> stopping{false};
};

namespace {

std::string exception_message(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

// An uninitialized contiguous CPU tensor, in page-locked memory when `pinned` and a GPU backend
// installed a pinned allocator (its block goes back to that allocator with the tensor's storage).
Tensor empty_host(const Shape& shape, DType dtype, bool pinned) {
  Allocator* allocator = pinned ? pinned_allocator() : nullptr;
  if (allocator == nullptr) return Tensor::empty(shape, dtype);
  const size_t nbytes = std::max<size_t>(1, shape_numel(shape) * dtype_size(dtype));
  void* data = allocator->allocate(nbytes, Device::cpu());
  auto storage = std::make_shared<Storage>(
      data, nbytes, Device::cpu(),
      [allocator, nbytes](void* p) { allocator->deallocate(p, nbytes, Device::cpu()); });
  return Tensor::from_storage(std::move(storage), 0, shape, contiguous_strides(shape), dtype);
}

// Batch `step`, or nullopt when the stream is stopped while it is being built. Throws Error
// naming the example whose loading failed.
std::optional<Batch> build_batch(const BatchStreamState& s, int64_t step) {
  const int64_t begin = step * s.batch_size;
  const int64_t count =
      std::min<int64_t>(s.batch_size, static_cast<int64_t>(s.indices.size()) - begin);
  const Shape example_shape = s.dataset->input_shape();
  const int64_t example_numel = shape_numel(example_shape);
  Shape batch_shape = {count};
  batch_shape.insert(batch_shape.end(), example_shape.begin(), example_shape.end());

  Batch batch;
  batch.step = step;
  batch.indices.assign(s.indices.begin() + begin, s.indices.begin() + begin + count);
  batch.inputs = empty_host(batch_shape, DType::kF32, s.pin_memory);
  batch.labels = empty_host({count}, DType::kI64, s.pin_memory);
  float* inputs = batch.inputs.data<float>();
  int64_t* labels = batch.labels.data<int64_t>();
  for (int64_t row = 0; row < count; ++row) {
    if (s.stopping.load(std::memory_order_relaxed)) return std::nullopt;
    const int64_t index = batch.indices[row];
    Example example;
    try {
      example = s.dataset->get(index, derive_key(s.transform_key, index));
    } catch (...) {
      throw Error(absl::StrCat("DataLoader: loading example ", index, " of ", s.dataset->name(),
                               " failed: ", exception_message(std::current_exception())));
    }
    std::memcpy(inputs + row * example_numel, example.input.data<float>(),
                example_numel * sizeof(float));
    labels[row] = example.label;
  }
  return batch;
}

void worker_loop(BatchStreamState* s) {
  std::unique_lock<std::mutex> lock(s->mu);
  while (true) {
    s->slot_free.wait(lock, [s] {
      return s->stopping || s->next_to_claim >= s->end_step ||
             s->next_to_claim < s->next_to_consume + s->max_in_flight;
    });
    if (s->stopping || s->next_to_claim >= s->end_step) return;
    const int64_t step = s->next_to_claim++;
    lock.unlock();
    BatchStreamState::Result result;
    try {
      result.batch = build_batch(*s, step);
      if (!result.batch) return;  // stopped
    } catch (...) {
      result.error = exception_message(std::current_exception());
    }
    lock.lock();
    s->done.emplace(step, std::move(result));
    s->batch_done.notify_one();
  }
}

}  // namespace

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options)
    : dataset_(std::move(dataset)), options_(options) {
  OMPQ_CHECK(dataset_ != nullptr, "DataLoader: dataset is null");
  OMPQ_CHECK(options_.batch_size >= 1, "DataLoader: batch_size ", options_.batch_size,
             " (expected >= 1)");
  OMPQ_CHECK(options_.num_workers >= 0, "DataLoader: num_workers ", options_.num_workers,
             " (expected >= 0)");
  OMPQ_CHECK(options_.prefetch_factor >= 1, "DataLoader: prefetch_factor ",
             options_.prefetch_factor, " (expected >= 1)");
  OMPQ_CHECK(options_.world_size >= 1 && options_.rank >= 0 && options_.rank < options_.world_size,
             "DataLoader: rank ", options_.rank, " of world_size ", options_.world_size,
             " (expected 0 <= rank < world_size)");
}

void DataLoader::set_epoch(int64_t epoch) {
  OMPQ_CHECK(epoch >= 0, "DataLoader: epoch ", epoch, " is negative");
  epoch_ = epoch;
}

int64_t DataLoader::num_samples() const {
  const int64_t n = dataset_->size();
  return (n + options_.world_size - 1) / options_.world_size;
}

int64_t DataLoader::num_batches() const {
  const int64_t n = num_samples();
  const int64_t b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<int64_t> DataLoader::epoch_indices() const {
  const int64_t n = dataset_->size();
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), int64_t{0});
  if (options_.shuffle) {
    const uint64_t key = derive_key(derive_key(options_.seed, epoch_), 0);
    for (int64_t i = n - 1; i > 0; --i) {
      const int64_t j = static_cast<int64_t>(derive_key(key, i) % static_cast<uint64_t>(i + 1));
      std::swap(order[i], order[j]);
    }
  }
  // Position p >= n of the padded list repeats entry p - n (p mod n, when padding exceeds n).
  std::vector<int64_t> local(num_samples());
  for (int64_t k = 0; k < static_cast<int64_t>(local.size()); ++k) {
    local[k] = order[(options_.rank + k * options_.world_size) % n];
  }
  return local;
}

BatchStream DataLoader::batches(int64_t start_step) const {
  const int64_t steps = num_batches();
  OMPQ_CHECK(start_step >= 0 && start_step <= steps, "DataLoader: start step ", start_step,
             " is outside [0, ", steps, "] (batches per epoch on this rank)");
  auto state = std::make_unique<BatchStreamState>();
  state->dataset = dataset_;
  state->indices = epoch_indices();
  state->indices.resize(std::min<int64_t>(state->indices.size(), steps * options_.batch_size));
  state->batch_size = options_.batch_size;
  state->end_step = steps;
  state->transform_key = derive_key(derive_key(options_.seed, epoch_), 1);
  state->max_in_flight = static_cast<int64_t>(options_.prefetch_factor) * options_.num_workers;
  state->pin_memory = options_.pin_memory;
  state->next_to_claim = start_step;
  state->next_to_consume = start_step;
  const int workers = static_cast<int>(std::min<int64_t>(options_.num_workers, steps - start_step));
  return BatchStream(std::move(state), workers);
}

BatchStream::BatchStream(std::unique_ptr<BatchStreamState> state, int num_workers)
    : state_(std::move(state)) {
  workers_.reserve(num_workers);
  try {
    for (int w = 0; w < num_workers; ++w) workers_.emplace_back(worker_loop, state_.get());
  } catch (...) {  // no thread left running: a joinable std::thread would terminate the process
    stop_workers();
    throw;
  }
}

BatchStream::BatchStream(BatchStream&&) noexcept = default;

BatchStream::~BatchStream() { stop_workers(); }

void BatchStream::stop_workers() {
  if (!state_) return;  // moved from
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stopping = true;
  }
  state_->slot_free.notify_all();
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
}

std::optional<Batch> BatchStream::next() {
  BatchStreamState& s = *state_;
  if (workers_.empty()) {  // built here, on demand
    if (s.next_to_consume >= s.end_step) return std::nullopt;
    std::optional<Batch> batch = build_batch(s, s.next_to_consume);
    ++s.next_to_consume;
    return batch;
  }
  std::unique_lock<std::mutex> lock(s.mu);
  if (s.next_to_consume >= s.end_step) return std::nullopt;
  s.batch_done.wait(lock, [&s] { return s.done.count(s.next_to_consume) > 0; });
  auto it = s.done.find(s.next_to_consume);
  if (it->second.error) {
    // Kept in `done`, so that a later call throws it again; the workers have nothing left to do.
    s.stopping = true;
    s.slot_free.notify_all();
    throw Error(*it->second.error);
  }
  Batch batch = std::move(*it->second.batch);
  s.done.erase(it);
  ++s.next_to_consume;
  s.slot_free.notify_all();
  return batch;
}

}  // namespace ompq::data
