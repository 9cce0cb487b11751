// Distributed benchmarks, run under mpirun (every rank runs the same loop; rank 0 prints):
//   BM_Allreduce/<bytes>: in-place f32 allreduce over the MPI communicator. algbw = bytes / time,
//     busbw = algbw * 2 (n - 1) / n, nccl-tests' definition (the bytes each rank's link carries in
//     a ring allreduce), so numbers compare with nccl-tests' all_reduce_perf.
//   BM_TrainStep/<model>/ranks:<n>: data-parallel SGD steps (forward, backward with bucketed
//     allreduce, update) on synthetic images; images/s over all ranks. Each rank uses
//     cores / ranks-per-node threads, so runs with different rank counts use the same cores.
//   mpirun -np 2 build/tests/mpi_bench [--model=resnet20] [--batch=32] [--steps=10] [--max_bytes=N]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "core/comm/communicator.h"
#include "core/functional/softmax.h"
#include "core/parallel.h"
#include "core/random.h"
#include "layers/models/registry.h"
#include "layers/optim.h"
#include "runtime/init.h"
#include "solver/train/data_parallel.h"

namespace ompq {
namespace {

using Clock = std::chrono::steady_clock;

struct Flags {
  std::string model = "resnet20";
  int64_t batch = 32;
  int steps = 10;
  int64_t max_bytes = int64_t{64} << 20;
};

Flags parse_flags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* name) -> const char* {
      size_t n = std::strlen(name);
      return arg.compare(0, n, name) == 0 ? arg.c_str() + n : nullptr;
    };
    if (const char* v = value("--model="))
      flags.model = v;
    else if (const char* v = value("--batch="))
      flags.batch = std::atoll(v);
    else if (const char* v = value("--steps="))
      flags.steps = std::atoi(v);
    else if (const char* v = value("--max_bytes="))
      flags.max_bytes = std::atoll(v);
    else {
      std::fprintf(stderr, "mpi_bench: unknown argument %s\n", argv[i]);
      std::exit(2);
    }
  }
  return flags;
}

// The slowest rank's time: a collective is done when its last rank is.
double max_over_ranks(Communicator& comm, double seconds) {
  Tensor all = comm.allgather(Tensor::scalar(seconds, DType::kF64));
  double worst = 0.0;
  for (double s : all.to_vector<double>()) worst = std::max(worst, s);
  return worst;
}

void bench_allreduce(Communicator& comm, const Flags& flags) {
  const int n = comm.size();
  for (int64_t bytes = 4096; bytes <= flags.max_bytes; bytes *= 4) {
    Tensor t = Tensor::ones({bytes / 4});
    // Same iteration count on every rank (collectives must match): about 1 GiB moved per size.
    const int iterations =
        static_cast<int>(std::clamp<int64_t>((int64_t{1} << 30) / bytes, 5, 2000));
    for (int i = 0; i < 3; ++i) comm.allreduce(t);
    comm.barrier();
    const Clock::time_point start = Clock::now();
    for (int i = 0; i < iterations; ++i) comm.allreduce(t);
    const double seconds =
        max_over_ranks(comm, std::chrono::duration<double>(Clock::now() - start).count());
    const double per_op = seconds / iterations;
    const double algbw = bytes / per_op / 1e9;
    if (comm.rank() == 0) {
      std::printf("BM_Allreduce/%-10lld ranks:%d %10.1f us  algbw %7.3f GB/s  busbw %7.3f GB/s\n",
                  static_cast<long long>(bytes), n, per_op * 1e6, algbw, algbw * 2.0 * (n - 1) / n);
    }
  }
}

int bench_train_step(Communicator& comm, const Flags& flags) {
  nn::ModelSpec spec;
  spec.name = flags.model;
  spec.num_classes = 10;
  spec.small_input = true;
  Generator gen(1);
  auto model = nn::make_model(spec, gen);
  if (!model.ok()) {
    std::fprintf(stderr, "mpi_bench: %s\n", std::string(model.status().message()).c_str());
    return 1;
  }
  Shape input_shape = (*model)->input_shape();
  input_shape.insert(input_shape.begin(), flags.batch);
  Tensor inputs = randn(input_shape, gen);
  Tensor labels = Tensor::zeros({flags.batch}, DType::kI64);
  SgdOptions sgd;
  sgd.lr = 0.01;
  sgd.momentum = 0.9;
  nn::SGD optimizer((*model)->parameters(), sgd);
  solver::DataParallel dp(**model, comm);
  (*model)->train();
  auto step = [&] {
    optimizer.zero_grad();
    dp.begin_backward();
    cross_entropy((**model)(inputs), labels).backward();
    dp.end_backward();
    optimizer.step();
  };
  for (int i = 0; i < 2; ++i) step();
  comm.barrier();
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < flags.steps; ++i) step();
  const double seconds =
      max_over_ranks(comm, std::chrono::duration<double>(Clock::now() - start).count());
  if (comm.rank() == 0) {
    const double images = static_cast<double>(flags.batch) * flags.steps * comm.size();
    std::printf(
        "BM_TrainStep/%s/ranks:%d  batch %lld/rank  %d threads/rank  %8.1f img/s  "
        "%.1f ms/step  buckets %zu, %d launched during backward\n",
        flags.model.c_str(), comm.size(), static_cast<long long>(flags.batch), num_threads(),
        images / seconds, 1e3 * seconds / flags.steps, dp.bucket_bytes().size(),
        dp.launched_during_backward());
  }
  return 0;
}

int run(int argc, char** argv) {
  init();
  const Flags flags = parse_flags(argc, argv);
  auto comm = make_communicator(DistMode::kMpi);
  if (!comm.ok()) {
    std::fprintf(stderr, "mpi_bench: %s\n", std::string(comm.status().message()).c_str());
    return 1;
  }
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  set_num_threads(std::max(1, cores / (*comm)->local_size()));
  bench_allreduce(**comm, flags);
  return bench_train_step(**comm, flags);
}

}  // namespace
}  // namespace ompq

int main(int argc, char** argv) { return ompq::run(argc, argv); }
