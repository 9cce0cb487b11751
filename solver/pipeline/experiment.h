// The OMPQ experiment of ompq_train (docs/METHOD.md section 0) as resumable stages, each writing
// its outputs into one folder and its record into stages.pbtxt (stages.h):
//   pretrain  (no `weights`) trains the FP32 model: fp32.safetensors,
//             pretrain_checkpoint.safetensors
//   search    the bit config: bits.pbtxt (given by search.bits, or searched on the FP32 model)
//             and, for lp/ilp, search.safetensors (the ORM matrix and log theta of every unit)
//   qat|ptq   the quantized model: quantized.safetensors (its state_dict, quantizers included);
//             QAT also qat_checkpoint.safetensors, PTQ ptq_checkpoint.safetensors
//   eval      FP32 and quantized test accuracy (into stages.pbtxt and metrics.csv)
//   export    packed.safetensors (layers/quant/packed_model.h), model.onnx and quantized.onnx
//   report    report.json and report.html (solver/report/report.h)
// with config.pbtxt (the resolved config) and metrics.csv (one row per epoch per training stage
// and one per evaluation, with a `stage` column and, for training epochs, the share of time spent
// waiting for data). QUANT_NONE stops after pretrain and eval.
//
// Data (data/catalog.h): Fashion-MNIST or MNIST IDX files (ten classes), or an ImageNet-layout
// folder whose train/ class folders give the number of classes (val/ must have the same ones, or
// be flat with a label file). ImageNet training reads RandomResizedCrop + flip crops, the search
// its own crops of the training images, evaluation Resize + CenterCrop of val/. The model is
// built for the data set's classes; weights for another class count are refused naming both.
//
// Rerunning with the same config skips finished stages; a training stage resumes from its
// checkpoint, written atomically at every epoch's end and every `checkpoint_steps` steps; PTQ from
// its checkpoint, written after every reconstructed unit (solver/quantize/ptq_checkpoint.h). A
// folder that holds a run of another config is refused unless `fresh`. Every check that can fail
// before the first stage (config values, model, data, a given bit config) runs before anything is
// written, so a bad command leaves an existing folder as it was. A NaN/Inf training loss stops the
// run with an error that names the last good checkpoint, which stays in place.
#pragma once

#include "absl/status/status.h"
#include "core/comm/communicator.h"
#include "core/device.h"
#include "core/proto/ompq.pb.h"

namespace ompq::solver {

struct ExperimentRuntime {
  Device device = Device::cpu();
  // The processes of a multi-process run (null: this one alone). Each rank trains on its shard of
  // every global batch with gradients averaged over the ranks (solver/train/data_parallel.h) and
  // evaluates its shard of the test set, summed over the ranks. The search and PTQ run on every
  // rank on the same images (the same result everywhere, no traffic). Rank 0 alone logs and
  // writes; every rank waits for its writes at the end of each stage.
  Communicator* comm = nullptr;
  // Start over: delete this pipeline's outputs in the folder first.
  bool fresh = false;
};

// Checks every value of `config` that needs no file: an InvalidArgument error naming the field.
absl::Status validate_experiment_config(const proto::ExperimentConfig& config);

absl::Status run_experiment(const proto::ExperimentConfig& config,
                            const ExperimentRuntime& runtime);

}  // namespace ompq::solver
