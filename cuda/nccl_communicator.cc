#include "cuda/nccl_communicator.h"

#if OMPQ_WITH_NCCL
#include <nccl.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cuda/runtime.h"

namespace ompq::cuda {
namespace {

using Clock = std::chrono::steady_clock;

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return ncclFloat32;
    case DType::kF64:
      return ncclFloat64;
    case DType::kI32:
      return ncclInt32;
    case DType::kI64:
      return ncclInt64;
    default:
      throw Error(absl::StrCat("nccl: no NCCL type for dtype ", dtype_name(dtype)));
  }
}

class NcclCommunicator;

// Completion of the collectives queued so far on the communicator's stream. Polled through
// Event::query(), which clears the runtime's "not ready" status: left as the thread's last error,
// it would fail the next kernel launch check.
class NcclWork final : public CommWork {
 public:
  NcclWork(NcclCommunicator* comm, std::string what);
  bool test() override { return event_.query(); }
  void wait() override;

 private:
  NcclCommunicator* comm_;
  std::string what_;
  Event event_;
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Communicator& bootstrap, int gpu, double timeout_seconds)
      : bootstrap_(bootstrap), gpu_(gpu), timeout_seconds_(timeout_seconds) {
    check_device_index(gpu, "nccl communicator");
    DeviceGuard guard(gpu);
    ncclUniqueId id;
    if (bootstrap.rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    Tensor id_bytes = Tensor::empty({static_cast<int64_t>(sizeof(id))}, DType::kU8);
    std::memcpy(id_bytes.data_ptr(), &id, sizeof(id));
    bootstrap.broadcast(id_bytes, 0);
    std::memcpy(&id, id_bytes.data_ptr(), sizeof(id));
    check(ncclCommInitRank(&comm_, bootstrap.size(), id, bootstrap.rank()), "ncclCommInitRank");
  }

  // ncclCommDestroy waits for the collectives still queued, which never end when a peer is gone
  // (an error unwound this rank before it waited on its work): those are aborted instead.
  ~NcclCommunicator() override {
    if (comm_ == nullptr) return;
    bool drained = false;
    try {
      Event queued(gpu_);
      queued.record(stream());
      drained = queued.query();
    } catch (const Error&) {  // a failed stream: nothing to wait for
    }
    if (drained) {
      ncclCommDestroy(comm_);
    } else {
      ncclCommAbort(comm_);
    }
  }

  int rank() const override { return bootstrap_.rank(); }
  int size() const override { return bootstrap_.size(); }
  int local_rank() const override { return bootstrap_.local_rank(); }
  int local_size() const override { return bootstrap_.local_size(); }
  const char* backend() const override { return "nccl"; }
  Device device() const override { return Device::cuda(gpu_); }

  std::unique_ptr<CommWork> allreduce_async(const Tensor& t, ReduceOp op) override {
    check_collective_tensor(*this, t, "allreduce", op);
    check_usable("allreduce");
    DeviceGuard guard(gpu_);
    check(ncclAllReduce(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t.dtype()),
                        op == ReduceOp::kAvg ? ncclAvg : ncclSum, comm_, stream()),
          "ncclAllReduce");
    return std::make_unique<NcclWork>(this, absl::StrCat("allreduce of ", t.nbytes(), " bytes"));
  }

  void broadcast(const Tensor& t, int root) override {
    check_collective_tensor(*this, t, "broadcast");
    OMPQ_CHECK(root >= 0 && root < size(), "nccl broadcast: root ", root, " is not a rank of ",
               size());
    check_usable("broadcast");
    DeviceGuard guard(gpu_);
    check(ncclBroadcast(t.data_ptr(), t.data_ptr(), t.nbytes(), ncclUint8, root, comm_, stream()),
          "ncclBroadcast");
    NcclWork(this, absl::StrCat("broadcast of ", t.nbytes(), " bytes")).wait();
  }

  Tensor allgather(const Tensor& t) override {
    check_collective_tensor(*this, t, "allgather");
    check_usable("allgather");
    Shape shape = t.shape();
    shape.insert(shape.begin(), size());
    Tensor out = Tensor::empty(shape, t.dtype(), device());
    DeviceGuard guard(gpu_);
    check(ncclAllGather(t.data_ptr(), out.data_ptr(), t.nbytes(), ncclUint8, comm_, stream()),
          "ncclAllGather");
    NcclWork(this, absl::StrCat("allgather of ", t.nbytes(), " bytes")).wait();
    return out;
  }

  void barrier() override {
    Tensor token = Tensor::zeros({1}, DType::kF32, device());
    allreduce(token, ReduceOp::kSum);
  }

  cudaStream_t stream() const { return default_stream(gpu_).get(); }
  int gpu() const { return gpu_; }

  // Polls `event` until the collectives before it are done. NCCL reports a failed peer
  // connection through ncclCommGetAsyncError; a dead peer may also just never answer, which the
  // timeout catches. Either way the communicator is aborted, so that no kernel stays stuck.
  void wait(const Event& event, const std::string& what) {
    check_usable(what.c_str());  // an abort drains the stream: the event passed says nothing
    const Clock::time_point start = Clock::now();
    for (;;) {
      if (event.query()) return;
      ncclResult_t async_error = ncclSuccess;
      ncclCommGetAsyncError(comm_, &async_error);
      if (async_error != ncclSuccess) {
        fail(absl::StrCat("nccl ", what, " on ", rank_str(*this),
                          " failed: ", ncclGetErrorString(async_error), " (",
                          ncclGetLastError(comm_), "); a peer process may have died"));
      }
      if (std::chrono::duration<double>(Clock::now() - start).count() > timeout_seconds_) {
        fail(
            absl::StrFormat("nccl %s on %s did not complete within %g s: a peer process died "
                            "or hangs (the MPI communicator's watchdog names it)",
                            what, rank_str(*this), timeout_seconds_));
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

 private:
  void check(ncclResult_t result, const char* call) {
    if (result == ncclSuccess || result == ncclInProgress) return;
    fail(absl::StrCat(call, " failed on ", rank_str(bootstrap_), " (cuda:", gpu_,
                      "): ", ncclGetErrorString(result),
                      comm_ != nullptr ? absl::StrCat(" (", ncclGetLastError(comm_), ")") : ""));
  }

  // Aborts the communicator before reporting: ncclCommAbort stops this rank's NCCL kernels, which
  // would otherwise spin on the stream waiting for a peer that is gone, and every later
  // synchronization of the stream (a checkpoint written on the way out) would hang behind them.
  [[noreturn]] void fail(const std::string& message) {
    if (comm_ != nullptr) {
      ncclCommAbort(comm_);
      comm_ = nullptr;
    }
    throw Error(message);
  }

  void check_usable(const char* op) const {
    OMPQ_CHECK(comm_ != nullptr, "nccl ", op, " on ", rank_str(*this),
               ": the communicator was aborted after an earlier failure");
  }

  Communicator& bootstrap_;
  int gpu_;
  double timeout_seconds_;
  ncclComm_t comm_ = nullptr;  // null once aborted
};

NcclWork::NcclWork(NcclCommunicator* comm, std::string what)
    : comm_(comm), what_(std::move(what)), event_(comm->gpu()) {
  event_.record(comm->stream());
}

void NcclWork::wait() { comm_->wait(event_, what_); }

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, int gpu,
                                                     double timeout_seconds) {
  return std::make_unique<NcclCommunicator>(bootstrap, gpu, timeout_seconds);
}

}  // namespace ompq::cuda
#endif  // OMPQ_WITH_NCCL
