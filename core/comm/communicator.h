// Communicator: the collectives that data-parallel training needs (allreduce, broadcast,
// allgather, barrier) between the ranks of one job, with the job's shape (rank, size, and the rank
// and count of the processes on this node). Backends: the single-process communicator (rank 0 of
// 1, touches no MPI), MPI for CPU tensors (core/comm/mpi_communicator.cc, built when MPI is found)
// and NCCL for GPU tensors (cuda/nccl_communicator.cc, built when NCCL is found), which gets its
// unique id over the MPI communicator.
//
// Every rank must call the same collectives in the same order with tensors of the same shape and
// dtype. Tensors are reduced in place and must be contiguous and on the communicator's device.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/device.h"
#include "core/tensor.h"

namespace ompq {

enum class ReduceOp { kSum, kAvg };  // kAvg: the sum divided by size(), floating dtypes only

// A collective in flight (allreduce_async). Its tensor must stay alive and untouched until wait()
// returns.
class CommWork {
 public:
  virtual ~CommWork() = default;
  // Lets the operation progress without blocking; true once it is complete (MPI progresses
  // non-blocking collectives only inside MPI calls, so callers poll while they compute).
  virtual bool test() = 0;
  // Blocks until complete. Throws Error when the backend fails or a peer stops answering.
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Rank among, and number of, this job's processes on this node (a rank picks its GPU from it).
  virtual int local_rank() const = 0;
  virtual int local_size() const = 0;
  // "single", "mpi" or "nccl".
  virtual const char* backend() const = 0;
  // Where the tensors it carries live: the CPU, or the GPU an NCCL communicator was made for.
  virtual Device device() const = 0;

  // Starts t = op over every rank's t, in place. dtypes f32, f64, i32, i64.
  virtual std::unique_ptr<CommWork> allreduce_async(const Tensor& t, ReduceOp op) = 0;
  void allreduce(const Tensor& t, ReduceOp op = ReduceOp::kSum) { allreduce_async(t, op)->wait(); }
  // Copies root's t into every rank's t.
  virtual void broadcast(const Tensor& t, int root) = 0;
  // [size(), t.shape...]: every rank's t in rank order.
  virtual Tensor allgather(const Tensor& t) = 0;
  virtual void barrier() = 0;

 protected:
  Communicator() = default;
};

// Throws an Error naming `op` and the backend unless `t` can take part in a collective of `comm`:
// defined, contiguous, on comm.device(), of a dtype the backends carry (kAvg: f32 or f64 only).
void check_collective_tensor(const Communicator& comm, const Tensor& t, const char* op,
                             ReduceOp reduce = ReduceOp::kSum);
// "rank 1 of 4"
std::string rank_str(const Communicator& comm);

// ---- launch -------------------------------------------------------------------------------------

// How the process was started, read from the launcher's environment: OpenMPI's mpirun
// (OMPI_COMM_WORLD_*), Slurm's srun (SLURM_STEP_NUM_TASKS, SLURM_PROCID), a PMIx launcher
// (PMIX_RANK) or MPICH's Hydra (PMI_SIZE, PMI_RANK).
struct LaunchInfo {
  std::string launcher;  // "mpirun", "srun", "pmix", "pmi"; empty when none started this process
  int rank = 0;
  int size = 1;  // 0 when the launcher gives a rank but not the size (PMIx: MPI tells it later)
  bool launched() const { return !launcher.empty(); }
};
using EnvLookup = std::function<const char*(const char* name)>;
// `env` defaults to std::getenv; tests pass their own.
LaunchInfo detect_launch(const EnvLookup& env = nullptr);

enum class DistMode {
  kAuto,  // MPI when a launcher started the process, else the single-process communicator
  kNone,  // single process; refused when a launcher started several ranks
  kMpi,   // MPI, launcher or not (a lone `ompq_train` then runs as its own 1-rank MPI job)
};
// "auto", "none", "mpi".
absl::StatusOr<DistMode> parse_dist_mode(absl::string_view text);

struct CommOptions {
  // A collective that has not completed after this long is declared stuck: the communicator asks
  // every peer whether it is still alive and throws an Error naming those that did not answer.
  // Bounds how long a rank may wait for the slowest one (rank 0 writing a checkpoint, say).
  double timeout_seconds = 600.0;
};

// The communicator `mode` asks for. Fails with a message saying why: MPI requested or a launcher
// detected in a build without MPI, a failing MPI_Init_thread, or kNone under a multi-rank launch.
absl::StatusOr<std::unique_ptr<Communicator>> make_communicator(DistMode mode,
                                                                const CommOptions& options = {},
                                                                const EnvLookup& env = nullptr);

// Rank 0 of 1: every collective leaves its tensor as it is.
std::unique_ptr<Communicator> make_single_process_communicator(Device device = Device::cpu());

// ---- GPUs
// ----------------------------------------------------------------------------------------

// The GPU a rank drives: its local rank, when the node has enough visible GPUs for every local
// rank (NCCL refuses two ranks on one GPU). The error names the counts and CUDA_VISIBLE_DEVICES.
absl::StatusOr<int> gpu_for_local_rank(int local_rank, int local_size, int visible_gpus);

// The communicator for GPU tensors on `gpu`, bootstrapped over `bootstrap` (which must outlive
// it). Needs the CUDA backend built with NCCL; the NCCL backend registers the factory when
// ompq::init() registers the CUDA backend.
using GpuCommunicatorFactory =
    std::function<std::unique_ptr<Communicator>(Communicator& bootstrap, int gpu)>;
void set_gpu_communicator_factory(GpuCommunicatorFactory factory);
absl::StatusOr<std::unique_ptr<Communicator>> make_gpu_communicator(Communicator& bootstrap,
                                                                    int gpu);

}  // namespace ompq
