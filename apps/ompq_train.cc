// ompq_train: the OMPQ experiment end to end (solver/pipeline/experiment.h): pretrain (unless
// --weights)
// -> search (unless --bits) -> QAT or PTQ -> eval -> export -> report, into one output folder.
// Rerunning the same command skips finished stages and resumes an interrupted training stage from
// its checkpoint. With no flags: ResNet-20 on Fashion-MNIST, 3 epochs of pretraining, an lp search
// (QAT mode, 4..8 bits, DFS rounding) at 75% of the all-8-bit size, one epoch of QAT, evaluation
// and export. --dataset=imagenet --data_dir=DIR reads an ImageNet-layout folder instead, and the
// presets in configs/ are the paper's ImageNet experiments:
//   ompq_train --config=configs/resnet18_qat_6.7mb_a6.pbtxt --data_dir=DIR --weights=W.safetensors
//
// Every flag but --fresh and --dist maps onto one field of proto::ExperimentConfig
// (apps/experiment_flags.h); --config=FILE sets fields first and the flags given on the command
// line override them. The resolved config is config.pbtxt.
// Started by mpirun or srun, every rank runs the experiment data parallel (--dist).
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "apps/app_main.h"
#include "apps/experiment_flags.h"
#include "core/comm/communicator.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/proto/ompq.pb.h"
#include "runtime/init.h"
#include "solver/pipeline/experiment.h"

ABSL_FLAG(bool, fresh, false, "discard this pipeline's outputs already in output_dir");
ABSL_FLAG(std::string, dist, "auto",
          "auto: data parallel over the ranks when mpirun or srun started this process; none: "
          "this process alone; mpi: require a launcher. Not part of the config: a run resumes "
          "on any number of ranks");

namespace ompq {
namespace {

using proto::ExperimentConfig;

absl::Status run() {
  OMPQ_ASSIGN_OR_RETURN(ExperimentConfig config, resolve_experiment_config());
  OMPQ_ASSIGN_OR_RETURN(DistMode dist, parse_dist_mode(absl::GetFlag(FLAGS_dist)));
  OMPQ_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm, make_communicator(dist));
  solver::ExperimentRuntime runtime;
  OMPQ_ASSIGN_OR_RETURN(runtime.device, usable_device(config.device()));
  // Several ranks: each drives the GPU of its local rank (MPI carries CPU tensors, NCCL the GPU
  // ones) or, on CPU, its share of the node's cores.
  std::unique_ptr<Communicator> gpu_comm;
  if (comm->size() > 1) {
    if (runtime.device.is_cuda()) {
      OMPQ_ASSIGN_OR_RETURN(int gpu, gpu_for_local_rank(comm->local_rank(), comm->local_size(),
                                                        runtime_info().cuda_device_count));
      runtime.device = Device::cuda(gpu);
      OMPQ_ASSIGN_OR_RETURN(gpu_comm, make_gpu_communicator(*comm, gpu));
    } else if (config.threads() == 0) {
      set_num_threads(num_threads() / comm->local_size());
    }
    runtime.comm = gpu_comm != nullptr ? gpu_comm.get() : comm.get();
  }
  OMPQ_RETURN_IF_ERROR(use_device(runtime.device));
  if (config.threads() > 0) set_num_threads(config.threads());
  runtime.fresh = absl::GetFlag(FLAGS_fresh);
  return solver::run_experiment(config, runtime);
}

}  // namespace
}  // namespace ompq

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Runs the OMPQ experiment end to end: pretrain -> search -> qat|ptq -> eval -> export.\n"
      "  ompq_train [--model=resnet20] [--quant=qat|ptq|none] [--budget_fraction=0.75]\n"
      "             [--dataset=fashion_mnist|mnist|imagenet --data_dir=DIR]\n"
      "  ompq_train --config=configs/<preset>.pbtxt --data_dir=IMAGENET --weights=W.safetensors\n"
      "             [--weights=FP32.safetensors] [--bits=bits.pbtxt] [--output_dir=out/train]\n"
      "A rerun with the same flags skips finished stages and resumes an interrupted one.\n"
      "Data parallel: mpirun -np N ompq_train ... (or srun); --batch_size is per rank.");
  ompq::collect_given_flags(argc, argv);
  absl::ParseCommandLine(argc, argv);
  return ompq::run_app("ompq_train", ompq::run);
}
