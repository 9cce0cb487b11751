// Packed-model inference benchmarks for ompq_bench (Google Benchmark), registered at run time:
//   BM_InferPacked/<model>/<batch>/<resolution>/qat   the default QAT experiment's bits: the LP
//       search (4..8 bits, stem and classifier at 8) at 75% of the 8-bit size, on random images
//   BM_InferPacked/<model>/<batch>/<resolution>/ptq   the PTQ recipe's bits: the projection solver
//       (2..4 bits, data-free, as the released PTQ configs) at 37.5% of the 8-bit size
// for resnet20, resnet18, resnet50 and mobilenet_v2 on random weights, channels_last, 8-bit
// activations. Untimed setup per case: the search, quantization, calibration on random images,
// pack_model and load_integer_model into a fresh model; then the integer model's forward on a
// batch of random NCHW images (the peer of BM_Infer/<model>/<batch>/<resolution>), reporting
// images/s, the searched size (size_mib) and how many layers run 8-bit weights (eight_bit_layers,
// which the CPU int8 path splits in two on CPUs without VNNI). With a `packed_dir`, each case also
// saves the packed model it times there as <model>_<resolution>_<qat|ptq>.safetensors (the same
// for every batch), which ompq_export turns into the QDQ model the peers run
// (scripts/bench_peers_int8.py).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/random.h"
#include "layers/models/model.h"

namespace ompq {

// The classes every model benchmark builds `model` with: 10 for resnet20 (CIFAR-sized), 1000 else.
int64_t benchmark_num_classes(const std::string& model);
// `model` with random weights and benchmark_num_classes(), channels_last as asked, in eval mode
// (BM_Infer's and BM_InferPacked's; BM_TrainStep switches it to training itself).
std::shared_ptr<nn::Model> make_benchmark_model(const std::string& model, bool channels_last,
                                                Generator& gen);

void register_packed_benchmarks(int64_t batch, int64_t iterations, const std::string& packed_dir);

}  // namespace ompq
