#include "solver/train/data_parallel.h"

#include <algorithm>

#include "core/autograd.h"
#include "core/ops/elementwise.h"

namespace ompq::solver {

DataParallel::DataParallel(nn::Module& model, Communicator& comm, DataParallelOptions options)
    : comm_(comm) {
  OMPQ_CHECK(options.first_bucket_bytes > 0 && options.bucket_bytes > 0,
             "DataParallel: bucket sizes must be positive, got ", options.first_bucket_bytes,
             " and ", options.bucket_bytes);
  // TensorMap is ordered by name, so every rank broadcasts the same tensors in the same order.
  for (const auto& [name, t] : model.state_dict()) {
    OMPQ_CHECK(t.device() == comm.device(), "DataParallel: ", name, " is on ", t.device().str(),
               " but the ", comm.backend(), " communicator carries ", comm.device().str(),
               " tensors");
    if (t.is_contiguous()) {
      comm.broadcast(t, 0);
    } else {
      Tensor dense = t.contiguous();
      comm.broadcast(dense, 0);
      Tensor(t).copy_(dense);
    }
    t.bump_version();
  }

  for (const Tensor& p : model.parameters()) {
    if (p.requires_grad()) params_.push_back(p);
  }
  std::reverse(params_.begin(), params_.end());
  slots_.resize(params_.size());
  int64_t bucket_elements = 0;
  for (int i = 0; i < static_cast<int>(params_.size()); ++i) {
    const Tensor& p = params_[i];
    const int64_t limit = buckets_.size() == 1 ? options.first_bucket_bytes : options.bucket_bytes;
    // A bucket holds one dtype; it closes once it reaches its size.
    const bool open = !buckets_.empty() && !buckets_.back().params.empty() &&
                      params_[buckets_.back().params[0]].dtype() == p.dtype() &&
                      bucket_elements * static_cast<int64_t>(p.element_size()) < limit;
    if (!open) {
      buckets_.emplace_back();
      bucket_elements = 0;
    }
    slots_[i] = {static_cast<int>(buckets_.size()) - 1, bucket_elements};
    buckets_.back().params.push_back(i);
    bucket_elements += p.numel();
    param_index_[p.unsafe_impl()] = i;
  }
  for (Bucket& bucket : buckets_) {
    int64_t elements = 0;
    for (int i : bucket.params) elements += params_[i].numel();
    bucket.flat = Tensor::zeros({elements}, params_[bucket.params[0]].dtype(), comm.device());
  }
  arrived_.assign(params_.size(), false);
  hook_id_ = add_leaf_grad_hook([this](const Tensor& leaf) { on_leaf_grad(leaf); });
}

DataParallel::~DataParallel() { remove_leaf_grad_hook(hook_id_); }

std::vector<int64_t> DataParallel::bucket_bytes() const {
  std::vector<int64_t> bytes;
  for (const Bucket& bucket : buckets_) bytes.push_back(static_cast<int64_t>(bucket.flat.nbytes()));
  return bytes;
}

Tensor DataParallel::slot_view(int param) const {
  const Slot& slot = slots_[param];
  const Tensor& p = params_[param];
  return buckets_[slot.bucket].flat.slice(0, slot.offset, slot.offset + p.numel()).view(p.shape());
}

void DataParallel::begin_backward() {
  for (Bucket& bucket : buckets_) {
    bucket.pending = static_cast<int>(bucket.params.size());
    bucket.work.reset();
  }
  std::fill(arrived_.begin(), arrived_.end(), false);
  next_launch_ = 0;
  launched_during_backward_ = 0;
  armed_ = true;
}

void DataParallel::on_leaf_grad(const Tensor& leaf) {
  if (!armed_) return;
  auto it = param_index_.find(leaf.unsafe_impl());
  if (it == param_index_.end()) return;
  const int i = it->second;
  OMPQ_CHECK(!arrived_[i], "DataParallel: a parameter of shape ", shape_str(leaf.shape()),
             " received a second gradient in one step; call end_backward() after each backward");
  arrived_[i] = true;
  slot_view(i).copy_(leaf.grad());
  if (--buckets_[slots_[i].bucket].pending == 0) launch_ready_buckets();
  // MPI moves a non-blocking collective forward only inside MPI calls.
  for (int b = 0; b < next_launch_; ++b) buckets_[b].work->test();
}

void DataParallel::launch_ready_buckets() {
  while (next_launch_ < static_cast<int>(buckets_.size()) && buckets_[next_launch_].pending == 0) {
    Bucket& bucket = buckets_[next_launch_++];
    bucket.work = comm_.allreduce_async(bucket.flat, ReduceOp::kSum);
    if (armed_) ++launched_during_backward_;
  }
}

void DataParallel::end_backward() {
  OMPQ_CHECK(armed_, "DataParallel: end_backward() without begin_backward()");
  armed_ = false;
  for (int b = next_launch_; b < static_cast<int>(buckets_.size()); ++b) {
    for (int i : buckets_[b].params) {
      if (!arrived_[i]) slot_view(i).zero_();
    }
    buckets_[b].pending = 0;
  }
  launch_ready_buckets();
  const double inverse_size = 1.0 / comm_.size();
  for (const Bucket& bucket : buckets_) {
    bucket.work->wait();
    for (int i : bucket.params) params_[i].set_grad(ops::mul(slot_view(i), inverse_size));
  }
}

}  // namespace ompq::solver
