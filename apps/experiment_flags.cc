#include "apps/experiment_flags.h"

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/error.h"
#include "solver/config/config_enums.h"
#include "solver/config/proto_io.h"

ABSL_FLAG(std::string, config, "", "experiment config in protobuf text format; flags override it");
ABSL_FLAG(std::string, model, "resnet20",
          "model name: resnet20, resnet18, resnet34, resnet50, mobilenet_v2, fashion_cnn "
          "(fashion_cnn: --quant=none only)");
ABSL_FLAG(bool, small_input, false, "the 28-32 px variant of an ImageNet model");
ABSL_FLAG(double, width_mult, 1.0, "channel width multiplier (mobilenet_v2)");
ABSL_FLAG(std::string, output_dir, "out/train", "folder of every output");
ABSL_FLAG(uint64_t, seed, 0, "seed of initialization, shuffling, dropout and the search images");
ABSL_FLAG(int32_t, threads, 0, "CPU threads (0: all cores)");
ABSL_FLAG(std::string, device, "cpu", "cpu or cuda:N");
ABSL_FLAG(std::string, dataset, "fashion_mnist", "fashion_mnist, mnist or imagenet");
ABSL_FLAG(std::string, data_dir, "",
          "the IDX folder (empty: Debian's Fashion-MNIST) or, for imagenet, the folder holding "
          "train/ and val/");
ABSL_FLAG(std::string, label_file, "",
          "imagenet: the label file of a flat val/ folder (lines '<file> <wnid or index>')");
ABSL_FLAG(int32_t, image_size, 0, "side of the input images (0: the model's own)");
ABSL_FLAG(bool, augment, true,
          "imagenet: RandomResizedCrop + flip for training and search images and a 224/256 centre "
          "crop for evaluation (false: every image scaled whole to the input side)");
ABSL_FLAG(bool, strict_images, false,
          "imagenet: stop at the first unreadable image instead of skipping it");
ABSL_FLAG(int64_t, train_limit, 0,
          "use only N training images (0: all): the first N of IDX data, N spread over an image "
          "folder's classes");
ABSL_FLAG(int64_t, test_limit, 0, "use only N test images (0: all), chosen as --train_limit's");
ABSL_FLAG(int32_t, workers, 1, "data loader worker threads");
ABSL_FLAG(int32_t, prefetch, 2, "batches built ahead per data loader worker");
ABSL_FLAG(std::string, weights, "", "FP32 weights (safetensors) to quantize; none: pretrain them");
ABSL_FLAG(int32_t, epochs, 3, "pretraining epochs");
ABSL_FLAG(int32_t, batch_size, 64, "training batch size (pretraining and QAT)");
ABSL_FLAG(double, lr, 0.02, "peak pretraining learning rate (SGD)");
ABSL_FLAG(double, momentum, 0.9, "pretraining SGD momentum");
ABSL_FLAG(bool, nesterov, true, "pretraining Nesterov momentum");
ABSL_FLAG(double, weight_decay, 5e-4, "pretraining L2 weight decay");
ABSL_FLAG(double, label_smoothing, 0.0, "pretraining cross-entropy label smoothing");
ABSL_FLAG(int32_t, warmup_iterations, 200,
          "linear learning-rate warm-up (from 0) before the pretraining cosine decay");
ABSL_FLAG(std::string, precision, "f32",
          "pretraining precision: f32, bf16 (autocast: conv/linear in bf16 with f32 accumulation "
          "and f32 master weights) or f16 (the same with dynamic loss scaling; for GPUs: a CPU "
          "without AVX512-FP16 computes it widened to f32, slower than f32); QAT, PTQ and the "
          "search stay f32");
ABSL_FLAG(int32_t, log_interval, 100, "steps between progress lines when not on a terminal");
ABSL_FLAG(int32_t, eval_batch_size, 1000, "evaluation batch size");
ABSL_FLAG(int32_t, checkpoint_steps, 100,
          "also checkpoint every N training steps within an epoch (0: at epochs' ends only)");
ABSL_FLAG(std::string, quant, "qat", "qat, ptq or none (stop at the FP32 model)");
ABSL_FLAG(std::string, bits, "", "a bit config (bits.pbtxt, as ompq_search writes it): no search");
ABSL_FLAG(double, budget_mb, 0.0, "model-size budget of the search in MiB (0: --budget_fraction)");
ABSL_FLAG(double, budget_fraction, 0.0,
          "model-size budget as a fraction of the size with every layer at 8 bits "
          "(0: 0.75 for qat, 0.375 for ptq)");
ABSL_FLAG(std::string, solver, "lp", "search solver: lp, ilp or projection (data-free)");
ABSL_FLAG(std::string, rounding, "dfs",
          "lp and projection rounding: dfs (the closest allocation within the budget), nearest "
          "(half to even; may exceed the budget) or empty (the reference's: dfs for ResNet-18, "
          "nearest for every other model)");
ABSL_FLAG(double, beta, 1.0, "importance theta = exp(-beta * gamma)");
ABSL_FLAG(int32_t, search_images, 32, "training images of the search's forward pass");
ABSL_FLAG(int32_t, act_bits, 8, "activation bits of the quantized model");
ABSL_FLAG(int32_t, qat_epochs, 1, "QAT epochs");
ABSL_FLAG(double, qat_lr, 1e-3, "QAT initial learning rate (cosine decay per iteration)");
ABSL_FLAG(double, qat_momentum, 0.9, "QAT SGD momentum");
ABSL_FLAG(double, qat_weight_decay, 1e-4, "QAT weight decay");
ABSL_FLAG(int32_t, ptq_iters, 500, "PTQ AdaRound iterations per block");
ABSL_FLAG(int32_t, calibration_images, 1024, "PTQ calibration images (from the training set)");
ABSL_FLAG(int32_t, ptq_activation_iters, 0,
          "PTQ step-size iterations per block (0: 2/5 of --ptq_iters)");
ABSL_FLAG(double, ptq_weight_lr, 1e-2, "PTQ Adam lr of the rounding variables (reference: 1e-3)");
ABSL_FLAG(double, ptq_activation_lr, 4e-4, "PTQ Adam lr of the activation step sizes");
ABSL_FLAG(double, ptq_rounding_weight, 0.01,
          "PTQ weight of the rounding regularizer (reference: 0.01 ResNet, 0.1 MobileNetV2)");
ABSL_FLAG(double, ptq_activation_p, 2.4, "PTQ p of the step sizes' Lp reconstruction loss");
ABSL_FLAG(bool, onnx_fold_batch_norm, false,
          "export: fold each conv's batch norm into its weights in model.onnx (false: keep "
          "BatchNormalization nodes)");
ABSL_FLAG(bool, eval_fp32, true,
          "evaluate the FP32 model beside the quantized one (false: a faster start from known "
          "weights; the report's FP32 row then has no accuracy)");

namespace ompq {
namespace {

using proto::ExperimentConfig;

// Names of the flags given on the command line (this Abseil has no public "was it set" query).
std::set<std::string>& given_flags() {
  static std::set<std::string> names;
  return names;
}

// Every config flag with the field it sets; a flag naming an enum value fails on a bad name.
struct ConfigFlag {
  const char* name;
  std::function<absl::Status(ExperimentConfig&)> apply;
};

// A flag that sets a field (`set` reads the flag); it cannot fail.
ConfigFlag field_flag(const char* name, void (*set)(ExperimentConfig&)) {
  return {name, [set](ExperimentConfig& c) {
            set(c);
            return absl::OkStatus();
          }};
}

// A string flag that sets an enum field (solver/config/config_enums.h names its values), one of
// `accepted` (empty: any value of the enum).
template <typename Enum>
ConfigFlag enum_flag(const char* name, const absl::Flag<std::string>& flag,
                     void (*set)(ExperimentConfig&, Enum), std::vector<Enum> accepted = {}) {
  return {name, [name, &flag, set, accepted](ExperimentConfig& c) -> absl::Status {
            OMPQ_ASSIGN_OR_RETURN(Enum value,
                                  solver::parse_enum_flag<Enum>(absl::StrCat("--", name),
                                                                absl::GetFlag(flag), accepted));
            set(c, value);
            return absl::OkStatus();
          }};
}

const std::vector<ConfigFlag>& config_flags() {
  using C = ExperimentConfig;
#define OMPQ_FLAG_FIELD(flag, setter) \
  field_flag(#flag, [](C& c) { c.setter(absl::GetFlag(FLAGS_##flag)); })
  static const std::vector<ConfigFlag> flags = {
      OMPQ_FLAG_FIELD(model, set_model),
      OMPQ_FLAG_FIELD(small_input, set_small_input),
      OMPQ_FLAG_FIELD(width_mult, set_width_mult),
      OMPQ_FLAG_FIELD(output_dir, set_output_dir),
      OMPQ_FLAG_FIELD(seed, set_seed),
      OMPQ_FLAG_FIELD(threads, set_threads),
      OMPQ_FLAG_FIELD(device, set_device),
      OMPQ_FLAG_FIELD(weights, set_weights),
      enum_flag<proto::Quant>("quant", FLAGS_quant,
                              [](C& c, proto::Quant quant) { c.set_quant(quant); }),
      OMPQ_FLAG_FIELD(act_bits, set_act_bits),
      enum_flag<proto::Dataset>(
          "dataset", FLAGS_dataset,
          [](C& c, proto::Dataset dataset) { c.mutable_data()->set_dataset(dataset); }),
      OMPQ_FLAG_FIELD(data_dir, mutable_data()->set_dir),
      OMPQ_FLAG_FIELD(label_file, mutable_data()->set_label_file),
      OMPQ_FLAG_FIELD(image_size, mutable_data()->set_image_size),
      OMPQ_FLAG_FIELD(strict_images, mutable_data()->set_strict_images),
      field_flag("augment",
                 [](C& c) {
                   c.mutable_data()->set_augmentation(absl::GetFlag(FLAGS_augment)
                                                          ? proto::AUGMENTATION_REFERENCE
                                                          : proto::AUGMENTATION_NONE);
                 }),
      OMPQ_FLAG_FIELD(prefetch, mutable_data()->set_prefetch),
      OMPQ_FLAG_FIELD(eval_fp32, set_eval_fp32),
      OMPQ_FLAG_FIELD(onnx_fold_batch_norm, set_onnx_fold_batch_norm),
      OMPQ_FLAG_FIELD(train_limit, mutable_data()->set_train_limit),
      OMPQ_FLAG_FIELD(test_limit, mutable_data()->set_test_limit),
      OMPQ_FLAG_FIELD(workers, mutable_data()->set_workers),
      OMPQ_FLAG_FIELD(epochs, mutable_train()->set_epochs),
      OMPQ_FLAG_FIELD(batch_size, mutable_train()->set_batch_size),
      OMPQ_FLAG_FIELD(lr, mutable_train()->set_lr),
      OMPQ_FLAG_FIELD(momentum, mutable_train()->set_momentum),
      OMPQ_FLAG_FIELD(nesterov, mutable_train()->set_nesterov),
      OMPQ_FLAG_FIELD(weight_decay, mutable_train()->set_weight_decay),
      OMPQ_FLAG_FIELD(label_smoothing, mutable_train()->set_label_smoothing),
      OMPQ_FLAG_FIELD(warmup_iterations, mutable_train()->set_warmup_iterations),
      enum_flag<proto::Precision>(
          "precision", FLAGS_precision,
          [](C& c, proto::Precision precision) { c.mutable_train()->set_precision(precision); }),
      OMPQ_FLAG_FIELD(log_interval, mutable_train()->set_log_interval),
      OMPQ_FLAG_FIELD(eval_batch_size, mutable_train()->set_eval_batch_size),
      OMPQ_FLAG_FIELD(checkpoint_steps, mutable_train()->set_checkpoint_steps),
      OMPQ_FLAG_FIELD(bits, mutable_search()->set_bits),
      OMPQ_FLAG_FIELD(budget_mb, mutable_search()->set_budget_mb),
      OMPQ_FLAG_FIELD(budget_fraction, mutable_search()->set_budget_fraction),
      enum_flag<proto::Solver>(
          "solver", FLAGS_solver,
          [](C& c, proto::Solver solver) { c.mutable_search()->set_solver(solver); },
          {proto::SOLVER_LP, proto::SOLVER_ILP, proto::SOLVER_PROJECTION}),
      enum_flag<proto::Rounding>(
          "rounding", FLAGS_rounding,
          [](C& c, proto::Rounding rounding) { c.mutable_search()->set_rounding(rounding); }),
      OMPQ_FLAG_FIELD(beta, mutable_search()->set_beta),
      OMPQ_FLAG_FIELD(search_images, mutable_search()->set_images),
      OMPQ_FLAG_FIELD(qat_epochs, mutable_qat()->set_epochs),
      OMPQ_FLAG_FIELD(qat_lr, mutable_qat()->set_lr),
      OMPQ_FLAG_FIELD(qat_momentum, mutable_qat()->set_momentum),
      OMPQ_FLAG_FIELD(qat_weight_decay, mutable_qat()->set_weight_decay),
      OMPQ_FLAG_FIELD(ptq_iters, mutable_ptq()->set_iters),
      OMPQ_FLAG_FIELD(calibration_images, mutable_ptq()->set_calibration_images),
      OMPQ_FLAG_FIELD(ptq_activation_iters, mutable_ptq()->set_activation_iters),
      OMPQ_FLAG_FIELD(ptq_weight_lr, mutable_ptq()->set_weight_lr),
      OMPQ_FLAG_FIELD(ptq_activation_lr, mutable_ptq()->set_activation_lr),
      OMPQ_FLAG_FIELD(ptq_rounding_weight, mutable_ptq()->set_rounding_weight),
      OMPQ_FLAG_FIELD(ptq_activation_p, mutable_ptq()->set_activation_p),
  };
#undef OMPQ_FLAG_FIELD
  return flags;
}

}  // namespace

void collect_given_flags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (!absl::ConsumePrefix(&arg, "--") && !absl::ConsumePrefix(&arg, "-")) continue;
    arg = arg.substr(0, arg.find('='));
    given_flags().insert(std::string(arg));
    if (absl::ConsumePrefix(&arg, "no")) given_flags().insert(std::string(arg));  // --nonesterov
  }
}

bool flag_given(const std::string& name) { return given_flags().count(name) > 0; }

// Flag defaults, then the fields --config sets, then every flag given on the command line.
absl::StatusOr<ExperimentConfig> resolve_experiment_config() {
  ExperimentConfig config;
  for (const ConfigFlag& flag : config_flags()) OMPQ_RETURN_IF_ERROR(flag.apply(config));
  const std::string path = absl::GetFlag(FLAGS_config);
  if (path.empty()) return config;
  OMPQ_RETURN_IF_ERROR(solver::read_text_proto(path, &config, /*merge=*/true));
  for (const ConfigFlag& flag : config_flags()) {
    if (given_flags().count(flag.name) > 0) OMPQ_RETURN_IF_ERROR(flag.apply(config));
  }
  return config;
}

}  // namespace ompq
