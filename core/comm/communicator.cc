#include "core/comm/communicator.h"

#include <cstdlib>
#include <mutex>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/comm/mpi_communicator.h"

namespace ompq {
namespace {

bool reducible(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kF64 || dtype == DType::kI32 ||
         dtype == DType::kI64;
}

class CompletedWork final : public CommWork {
 public:
  bool test() override { return true; }
  void wait() override {}
};

class SingleProcessCommunicator final : public Communicator {
 public:
  explicit SingleProcessCommunicator(Device device) : device_(device) {}

  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  const char* backend() const override { return "single"; }
  Device device() const override { return device_; }

  std::unique_ptr<CommWork> allreduce_async(const Tensor& t, ReduceOp op) override {
    check_collective_tensor(*this, t, "allreduce", op);
    return std::make_unique<CompletedWork>();
  }
  void broadcast(const Tensor& t, int root) override {
    check_collective_tensor(*this, t, "broadcast");
    OMPQ_CHECK(root == 0, "broadcast: root ", root, " is not a rank of a 1-rank job");
  }
  Tensor allgather(const Tensor& t) override {
    check_collective_tensor(*this, t, "allgather");
    return t.detach().clone().unsqueeze(0);
  }
  void barrier() override {}

 private:
  Device device_;
};

std::mutex g_factory_mutex;
GpuCommunicatorFactory& gpu_factory() {
  static GpuCommunicatorFactory* factory = new GpuCommunicatorFactory();
  return *factory;
}

// The integer value of environment variable `name`, or -1 when it is unset or not a number.
int env_int(const EnvLookup& env, const char* name) {
  const char* value = env(name);
  int parsed = -1;
  if (value == nullptr || !absl::SimpleAtoi(value, &parsed)) return -1;
  return parsed;
}

}  // namespace

void check_collective_tensor(const Communicator& comm, const Tensor& t, const char* op,
                             ReduceOp reduce) {
  const char* backend = comm.backend();
  OMPQ_CHECK(t.defined(), backend, " ", op, ": undefined tensor");
  OMPQ_CHECK(t.is_contiguous(), backend, " ", op, ": tensor of shape ", shape_str(t.shape()),
             " is not contiguous (collectives work in place on dense memory)");
  OMPQ_CHECK(t.device() == comm.device(), backend, " ", op, ": tensor on ", t.device().str(),
             " but this communicator carries ", comm.device().str(), " tensors");
  if (std::string(op) != "allreduce") return;
  OMPQ_CHECK(reducible(t.dtype()), backend, " allreduce: unsupported dtype ", dtype_name(t.dtype()),
             " (expected f32, f64, i32 or i64)");
  OMPQ_CHECK(reduce != ReduceOp::kAvg || is_floating(t.dtype()), backend,
             " allreduce: average of a ", dtype_name(t.dtype()),
             " tensor (integer division would truncate); reduce with kSum");
}

std::string rank_str(const Communicator& comm) {
  return absl::StrCat("rank ", comm.rank(), " of ", comm.size());
}

LaunchInfo detect_launch(const EnvLookup& lookup) {
  EnvLookup env =
      lookup ? lookup : [](const char* name) -> const char* { return std::getenv(name); };
  LaunchInfo info;
  auto take = [&](const char* launcher, const char* rank_var, const char* size_var) {
    int rank = env_int(env, rank_var);
    int size = size_var != nullptr ? env_int(env, size_var) : 0;
    if (rank < 0 || (size_var != nullptr && size <= 0)) return false;
    info.launcher = launcher;
    info.rank = rank;
    info.size = size;
    return true;
  };
  // SLURM_PROCID alone does not mean srun: a batch script has it too. SLURM_STEP_NUM_TASKS is set
  // for the tasks of a job step, which only srun starts.
  take("mpirun", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE") ||
      take("srun", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS") || take("pmi", "PMI_RANK", "PMI_SIZE") ||
      take("pmix", "PMIX_RANK", nullptr);
  return info;
}

absl::StatusOr<DistMode> parse_dist_mode(absl::string_view text) {
  if (text == "auto") return DistMode::kAuto;
  if (text == "none") return DistMode::kNone;
  if (text == "mpi") return DistMode::kMpi;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown distributed mode \"", text, "\" (expected auto, none or mpi)"));
}

std::unique_ptr<Communicator> make_single_process_communicator(Device device) {
  return std::make_unique<SingleProcessCommunicator>(device);
}

absl::StatusOr<std::unique_ptr<Communicator>> make_communicator(DistMode mode,
                                                                const CommOptions& options,
                                                                const EnvLookup& env) {
  const LaunchInfo launch = detect_launch(env);
  const std::string where =
      launch.launched() ? absl::StrCat("started by ", launch.launcher, " as rank ", launch.rank,
                                       launch.size > 0 ? absl::StrCat(" of ", launch.size) : "")
                        : "started without a launcher";
  if (mode == DistMode::kNone) {
    if (launch.launched() && launch.size != 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("distributed mode none, but this process was ", where,
                       ": every rank would train alone on the whole data; use --dist=auto"));
    }
    return make_single_process_communicator();
  }
  if (mode == DistMode::kAuto && !launch.launched()) return make_single_process_communicator();
#if OMPQ_WITH_MPI
  try {
    return make_mpi_communicator(options);
  } catch (const Error& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot start MPI (process ", where, "): ", e.what()));
  }
#else
  return absl::FailedPreconditionError(absl::StrCat(
      "MPI is needed (process ", where,
      ") but ompq was built without it; install OpenMPI "
      "(libopenmpi-dev) and reconfigure with -DOMPQ_MPI=ON, or run one process with --dist=none"));
#endif
}

absl::StatusOr<int> gpu_for_local_rank(int local_rank, int local_size, int visible_gpus) {
  if (local_rank < 0 || local_rank >= local_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("local rank ", local_rank, " is not in [0, ", local_size, ")"));
  }
  if (local_size > visible_gpus) {
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    return absl::FailedPreconditionError(absl::StrCat(
        local_size, " ranks run on this node but it has ", visible_gpus,
        " visible GPU(s) (CUDA_VISIBLE_DEVICES=", visible != nullptr ? visible : "<unset>",
        "); start at most one rank per GPU (mpirun -H host:", visible_gpus,
        ", srun --ntasks-per-node=", visible_gpus, ")"));
  }
  return local_rank;
}

void set_gpu_communicator_factory(GpuCommunicatorFactory factory) {
  std::lock_guard<std::mutex> lock(g_factory_mutex);
  gpu_factory() = std::move(factory);
}

absl::StatusOr<std::unique_ptr<Communicator>> make_gpu_communicator(Communicator& bootstrap,
                                                                    int gpu) {
  GpuCommunicatorFactory factory;
  {
    std::lock_guard<std::mutex> lock(g_factory_mutex);
    factory = gpu_factory();
  }
  if (!factory) {
    return absl::FailedPreconditionError(
        "GPU collectives need the CUDA backend built with NCCL and a usable GPU (ompq::init() "
        "registers them); this build or machine has neither");
  }
  try {
    return factory(bootstrap, gpu);
  } catch (const Error& e) {
    return absl::UnavailableError(absl::StrCat(rank_str(bootstrap), ": ", e.what()));
  }
}

}  // namespace ompq
