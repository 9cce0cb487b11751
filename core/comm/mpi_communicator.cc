#include "core/comm/mpi_communicator.h"

#if OMPQ_WITH_MPI
// The C API only: mpi.h would otherwise pull in the deprecated C++ bindings (MPI::), which live
// in a library (libmpi_cxx) that CMake's MPI::MPI_C target does not link.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace ompq {
namespace {

using Clock = std::chrono::steady_clock;

// Set once a peer is declared lost: MPI_Finalize would then wait for it forever, so the process
// leaves without it (the launcher reports the unfinalized exit, beside our own message).
std::atomic<bool> g_peer_lost{false};

void finalize_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && !g_peer_lost.load()) MPI_Finalize();
}

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return absl::StrCat("MPI error ", code);
  return std::string(text, length);
}

void check_mpi(int code, const char* call) {
  OMPQ_CHECK(code == MPI_SUCCESS, call, " failed: ", mpi_error_text(code));
}

void initialize_mpi() {
  int initialized = 0, finalized = 0;
  check_mpi(MPI_Initialized(&initialized), "MPI_Initialized");
  check_mpi(MPI_Finalized(&finalized), "MPI_Finalized");
  OMPQ_CHECK(!finalized, "MPI was already finalized in this process");
  if (initialized) return;
  int provided = 0;
  check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  std::atexit(finalize_at_exit);
  OMPQ_CHECK(provided >= MPI_THREAD_FUNNELED, "MPI_Init_thread provides thread level ", provided,
             ", below MPI_THREAD_FUNNELED");
}

MPI_Datatype mpi_type(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return MPI_FLOAT;
    case DType::kF64:
      return MPI_DOUBLE;
    case DType::kI32:
      return MPI_INT32_T;
    case DType::kI64:
      return MPI_INT64_T;
    default:
      throw Error(absl::StrCat("mpi: no MPI type for dtype ", dtype_name(dtype)));
  }
}

// MPI counts are ints.
int mpi_count(int64_t count, const char* op) {
  OMPQ_CHECK(count <= INT_MAX, "mpi ", op, ": ", count, " elements exceed MPI's int count");
  return static_cast<int>(count);
}

template <typename T>
void scale(T* __restrict__ p, int64_t count, T factor) {
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) p[i] *= factor;
}

// t /= n for a CPU f32/f64 tensor (the average of a summed allreduce).
void divide_in_place(const Tensor& t, int n) {
  OMPQ_DISPATCH_FLOATING(t.dtype(), "allreduce average",
                         [&] { scale(t.data<scalar_t>(), t.numel(), scalar_t(1) / scalar_t(n)); });
}

class MpiCommunicator;

class MpiWork final : public CommWork {
 public:
  MpiWork(MpiCommunicator* comm, MPI_Request request, Tensor tensor, ReduceOp op)
      : comm_(comm), request_(request), tensor_(std::move(tensor)), op_(op) {}
  bool test() override;
  void wait() override;

 private:
  void complete();

  MpiCommunicator* comm_;
  MPI_Request request_;
  Tensor tensor_;
  ReduceOp op_;
  bool done_ = false;
};

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(const CommOptions& options) : options_(options) {
    initialize_mpi();
    // Collectives and liveness pings each get their own communicator, so that a ping can never
    // match a collective's message.
    check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &ping_comm_), "MPI_Comm_dup");
    for (MPI_Comm c : {comm_, ping_comm_}) {
      check_mpi(MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    }
    check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
    MPI_Comm node;
    check_mpi(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
              "MPI_Comm_split_type");
    check_mpi(MPI_Comm_rank(node, &local_rank_), "MPI_Comm_rank");
    check_mpi(MPI_Comm_size(node, &local_size_), "MPI_Comm_size");
    MPI_Comm_free(&node);
  }

  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized || g_peer_lost.load()) return;
    MPI_Comm_free(&comm_);
    MPI_Comm_free(&ping_comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }
  const char* backend() const override { return "mpi"; }
  Device device() const override { return Device::cpu(); }

  std::unique_ptr<CommWork> allreduce_async(const Tensor& t, ReduceOp op) override {
    check_collective_tensor(*this, t, "allreduce", op);
    check_usable("allreduce");
    MPI_Request request;
    check_op(MPI_Iallreduce(MPI_IN_PLACE, t.data_ptr(), mpi_count(t.numel(), "allreduce"),
                            mpi_type(t.dtype()), MPI_SUM, comm_, &request),
             "MPI_Iallreduce");
    return std::make_unique<MpiWork>(this, request, t, op);
  }

  void broadcast(const Tensor& t, int root) override {
    check_collective_tensor(*this, t, "broadcast");
    OMPQ_CHECK(root >= 0 && root < size_, "mpi broadcast: root ", root, " is not a rank of ",
               size_);
    check_usable("broadcast");
    MPI_Request request;
    check_op(MPI_Ibcast(t.data_ptr(), mpi_count(t.nbytes(), "broadcast"), MPI_BYTE, root, comm_,
                        &request),
             "MPI_Ibcast");
    wait(request, absl::StrCat("broadcast of ", t.nbytes(), " bytes"));
  }

  Tensor allgather(const Tensor& t) override {
    check_collective_tensor(*this, t, "allgather");
    check_usable("allgather");
    Shape shape = t.shape();
    shape.insert(shape.begin(), size_);
    Tensor out = Tensor::empty(shape, t.dtype());
    const int bytes = mpi_count(t.nbytes(), "allgather");
    MPI_Request request;
    check_op(MPI_Iallgather(t.data_ptr(), bytes, MPI_BYTE, out.data_ptr(), bytes, MPI_BYTE, comm_,
                            &request),
             "MPI_Iallgather");
    wait(request, absl::StrCat("allgather of ", t.nbytes(), " bytes"));
    return out;
  }

  void barrier() override {
    check_usable("barrier");
    MPI_Request request;
    check_op(MPI_Ibarrier(comm_, &request), "MPI_Ibarrier");
    wait(request, "barrier");
  }

  // Polls `request` until it completes, answering peers' liveness pings meanwhile. Past the
  // timeout, pings every peer and throws an Error naming those that did not answer.
  void wait(MPI_Request& request, const std::string& what) {
    const Clock::time_point start = Clock::now();
    const auto timeout = std::chrono::duration<double>(options_.timeout_seconds);
    // Spin first (a collective between ranks that arrive together takes microseconds), then
    // sleep in growing steps so that a rank waiting for a slow peer leaves the cores to others.
    auto pause = std::chrono::microseconds(0);
    for (int polls = 0;; ++polls) {
      if (test(request, what)) return;
      serve_pings();
      if (polls > 1000) {
        pause = std::min(std::max(2 * pause, std::chrono::microseconds(20)),
                         std::chrono::microseconds(1000));
        std::this_thread::sleep_for(pause);
      }
      if (Clock::now() - start > timeout) fail_stuck(what);
    }
  }

  // MPI_Test that turns a failed request into an Error.
  bool test(MPI_Request& request, const std::string& what) {
    int done = 0;
    check_op(MPI_Test(&request, &done, MPI_STATUS_IGNORE), what.c_str());
    return done != 0;
  }

 private:
  static constexpr int kPingTag = 1;
  static constexpr int kPongTag = 2;
  static constexpr double kPingAnswerSeconds = 2.0;

  void check_usable(const char* op) const {
    OMPQ_CHECK(lost_.empty(), "mpi ", op, " on ", rank_str(*this),
               ": the communicator is broken since rank(s) ", absl::StrJoin(lost_, ", "),
               " were lost");
  }

  // A failed MPI call inside a collective usually means a peer went away.
  void check_op(int code, const char* what) {
    if (code == MPI_SUCCESS) return;
    g_peer_lost = true;
    throw Error(absl::StrCat("mpi ", what, " failed on ", rank_str(*this), ": ",
                             mpi_error_text(code), " (did a peer process die?)"));
  }

  // Answers every liveness ping that has arrived.
  void serve_pings() {
    for (;;) {
      int flag = 0;
      MPI_Status status;
      if (MPI_Iprobe(MPI_ANY_SOURCE, kPingTag, ping_comm_, &flag, &status) != MPI_SUCCESS ||
          !flag) {
        return;
      }
      int payload = 0;
      MPI_Recv(&payload, 1, MPI_INT, status.MPI_SOURCE, kPingTag, ping_comm_, MPI_STATUS_IGNORE);
      MPI_Request reply;
      if (MPI_Isend(&kPongPayload, 1, MPI_INT, status.MPI_SOURCE, kPongTag, ping_comm_, &reply) ==
          MPI_SUCCESS) {
        MPI_Request_free(&reply);
      }
    }
  }

  // Pings every peer; those that do not answer within kPingAnswerSeconds are lost.
  [[noreturn]] void fail_stuck(const std::string& what) {
    std::vector<MPI_Request> answers(size_, MPI_REQUEST_NULL);
    std::vector<int> replies(size_, 0);
    for (int peer = 0; peer < size_; ++peer) {
      if (peer == rank_) continue;
      MPI_Request ping;
      if (MPI_Isend(&kPongPayload, 1, MPI_INT, peer, kPingTag, ping_comm_, &ping) == MPI_SUCCESS) {
        MPI_Request_free(&ping);
      }
      MPI_Irecv(&replies[peer], 1, MPI_INT, peer, kPongTag, ping_comm_, &answers[peer]);
    }
    const Clock::time_point asked = Clock::now();
    std::vector<bool> answered(size_, false);
    answered[rank_] = true;
    while (Clock::now() - asked < std::chrono::duration<double>(kPingAnswerSeconds)) {
      serve_pings();
      bool all = true;
      for (int peer = 0; peer < size_; ++peer) {
        if (answered[peer]) continue;
        int done = 0;
        if (MPI_Test(&answers[peer], &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && done) {
          answered[peer] = true;
        }
        all = all && answered[peer];
      }
      if (all) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    for (int peer = 0; peer < size_; ++peer) {
      if (!answered[peer]) lost_.push_back(peer);
    }
    const std::string head = absl::StrFormat("mpi %s on %s did not complete within %g s", what,
                                             rank_str(*this), options_.timeout_seconds);
    if (lost_.empty()) {
      throw Error(absl::StrCat(head,
                               "; every peer still answers, so the ranks did not all enter "
                               "this collective (a rank is slower than the timeout, or "
                               "the ranks call collectives in different orders)"));
    }
    g_peer_lost = true;
    throw Error(absl::StrFormat(
        "%s: lost rank %s (no answer to a liveness ping within %g s: the process died or hangs)",
        head, absl::StrJoin(lost_, ", rank "), kPingAnswerSeconds));
  }

  static const int kPongPayload;
  CommOptions options_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Comm ping_comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  std::vector<int> lost_;
};

const int MpiCommunicator::kPongPayload = 1;

bool MpiWork::test() {
  if (!done_ && comm_->test(request_, "allreduce")) complete();
  return done_;
}

void MpiWork::wait() {
  if (done_) return;
  comm_->wait(request_, absl::StrCat("allreduce of ", tensor_.nbytes(), " bytes"));
  complete();
}

void MpiWork::complete() {
  done_ = true;
  if (op_ == ReduceOp::kAvg) divide_in_place(tensor_, comm_->size());
}

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(const CommOptions& options) {
  return std::make_unique<MpiCommunicator>(options);
}

}  // namespace ompq
#endif  // OMPQ_WITH_MPI
