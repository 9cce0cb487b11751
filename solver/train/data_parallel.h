// Data-parallel training (as torch.nn.parallel.DistributedDataParallel): every rank holds the
// whole model, trains on its own shard of each global batch, and before each optimizer step
// replaces every gradient by its average over the ranks, so that all ranks take the same step.
//
// The gradients are reduced in buckets: the parameters, in reverse registration order (backward
// produces the last layers' gradients first), are packed into flat buffers of about
// bucket_bytes, the first one smaller so that its reduction starts early. A bucket's allreduce is
// launched from a leaf-gradient hook (core/autograd.h) as soon as backward has finished every
// gradient in it, and buckets are launched in the same fixed order on every rank (collectives
// must match), so the reduction of the last layers overlaps the backward of the first ones.
// The buckets are summed and divided by the world size once, when copied back into the grads.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "core/comm/communicator.h"
#include "layers/module.h"

namespace ompq::solver {

struct DataParallelOptions {
  int64_t first_bucket_bytes = int64_t{1} << 20;
  int64_t bucket_bytes = int64_t{25} << 20;
};

class DataParallel {
 public:
  // Broadcasts `model`'s parameters and buffers from rank 0, so that every rank starts from the
  // same weights, and lays out the buckets. `model` and `comm` must outlive this object, and the
  // model's tensors must be on comm.device().
  DataParallel(nn::Module& model, Communicator& comm, DataParallelOptions options = {});
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  // Call after the optimizer's zero_grad() and before loss.backward(): from here on, each
  // parameter's finished gradient goes into its bucket.
  void begin_backward();
  // Call after loss.backward(): launches the buckets that backward did not complete (a
  // parameter that got no gradient on this rank counts as zero there), waits for every bucket,
  // and sets each parameter's grad to the average over the ranks. Every parameter then has a
  // gradient (zero where no rank produced one, as DDP's find_unused_parameters).
  void end_backward();

  Communicator& comm() const { return comm_; }
  // Bytes of each bucket, in launch order.
  std::vector<int64_t> bucket_bytes() const;
  // Buckets whose allreduce began before end_backward() in the last step (the overlap).
  int launched_during_backward() const { return launched_during_backward_; }

 private:
  struct Slot {
    int bucket;
    int64_t offset;  // in elements, within the bucket's buffer
  };
  struct Bucket {
    std::vector<int> params;  // indices into params_
    Tensor flat;              // the bucket's gradients, back to back
    int pending = 0;          // gradients still to arrive in this step
    std::unique_ptr<CommWork> work;
  };

  void on_leaf_grad(const Tensor& leaf);
  void launch_ready_buckets();
  Tensor slot_view(int param) const;

  Communicator& comm_;
  std::vector<Tensor> params_;
  std::vector<Slot> slots_;  // per parameter
  std::unordered_map<const TensorImpl*, int> param_index_;
  std::vector<Bucket> buckets_;
  std::vector<bool> arrived_;  // per parameter, this step
  int next_launch_ = 0;
  bool armed_ = false;
  int launched_during_backward_ = 0;
  int64_t hook_id_ = -1;
};

}  // namespace ompq::solver
