// ompq_eval: runs a model with given weights, in eval mode, in one of two ways.
//
// Dataset mode: top-1, top-5 and mean cross-entropy over a dataset split, printed on stdout.
//   ompq_eval --model=resnet20 --num_classes=10 --weights=W.safetensors --dataset=fashion_mnist
//   ompq_eval --model=resnet50 --weights=W.safetensors --dataset=imagenet --data_dir=/data/imagenet
// Fashion-MNIST/MNIST images are padded (or, with --mnist_resize, scaled) to the model's input
// size and replicated to its channels; ImageNet images get torchvision's eval transform
// (Resize(size * 256 / 224) + CenterCrop(size), ImageNet normalization).
//
// With --output=Y.safetensors, dataset mode also writes the images it evaluated as the model
// takes them (tensor "input"), their labels ("labels", int64) and the logits ("logits"): real
// images and ompq's answers for them, to run another runtime (an exported ONNX model) on.
//
// --packed=P.safetensors instead of --weights evaluates a packed integer model (the export
// stage's packed.safetensors, layers/quant/packed_model.h) in either mode: its quantized layers
// run as integer layers (on the CPU through oneDNN's int8 convolutions), the rest from its float
// state; --model and --num_classes must describe the architecture it was exported from.
//
// Tensor mode: the logits of a batch given as a tensor, e.g. to compare with PyTorch.
//   ompq_eval --model=NAME --num_classes=N --weights=W.safetensors --input=X.safetensors
//             --output=Y.safetensors
// reads tensor "input" (float32 NCHW) from X and writes tensor "logits" (float32 [N, classes]).
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "apps/app_main.h"
#include "core/autograd.h"
#include "core/functional/concat.h"
#include "core/parallel.h"
#include "core/safetensors.h"
#include "data/dataloader.h"
#include "data/imagenet.h"
#include "data/mnist.h"
#include "data/subset.h"
#include "layers/models/registry.h"
#include "layers/quant/integer_layer.h"
#include "layers/quant/packed_model.h"
#include "runtime/init.h"
#include "solver/train/trainer.h"

ABSL_FLAG(std::string, model, "",
          "model name (resnet18, resnet34, resnet50, mobilenet_v2, resnet20, fashion_cnn)");
ABSL_FLAG(int64_t, num_classes, 1000, "classes of the model's classifier");
ABSL_FLAG(bool, small_input, false,
          "the small-input variant (3x3 stride-1 stem, no max-pool) for 28-32 px images");
ABSL_FLAG(double, width_mult, 1.0, "channel width multiplier (mobilenet_v2)");
ABSL_FLAG(std::string, weights, "", "the model's weights (safetensors with torchvision names)");
ABSL_FLAG(std::string, packed, "",
          "a packed integer model (ompq_train's packed.safetensors) to evaluate instead of "
          "--weights (CPU only)");
ABSL_FLAG(std::string, input, "",
          "tensor mode: safetensors file holding tensor \"input\", float32 NCHW");
ABSL_FLAG(std::string, output, "",
          "safetensors file to write tensor \"logits\" to (dataset mode: with the images as "
          "\"input\" and their \"labels\")");
ABSL_FLAG(std::string, dataset, "", "dataset mode: fashion_mnist, mnist or imagenet");
ABSL_FLAG(std::string, data_dir, "",
          "dataset folder (default for fashion_mnist: /usr/share/datasets/fashion-mnist)");
ABSL_FLAG(std::string, split, "",
          "split to evaluate (default: test for (fashion_)mnist, val for imagenet)");
ABSL_FLAG(std::string, label_file, "", "imagenet: label file of a flat validation folder");
ABSL_FLAG(int64_t, image_size, 0, "input side length (0: the model's own, e.g. 224 or 32)");
ABSL_FLAG(bool, mnist_resize, false,
          "(fashion_)mnist: scale images to image_size bilinearly instead of padding them");
ABSL_FLAG(bool, strict_images, false,
          "imagenet: stop at the first unreadable image instead of skipping it");
ABSL_FLAG(int64_t, limit, 0, "evaluate only the first N examples of the split (0: all)");
ABSL_FLAG(int32_t, batch_size, 100, "images per forward pass");
ABSL_FLAG(int32_t, workers, 2, "data loader worker threads");
ABSL_FLAG(int32_t, threads, 0, "CPU threads (0: all cores)");
ABSL_FLAG(std::string, device, "cpu", "cpu or cuda:N");

namespace ompq {
namespace {

absl::Status invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

absl::StatusOr<std::shared_ptr<nn::Model>> make_model() {
  nn::ModelSpec spec;
  spec.name = absl::GetFlag(FLAGS_model);
  spec.num_classes = absl::GetFlag(FLAGS_num_classes);
  spec.small_input = absl::GetFlag(FLAGS_small_input);
  spec.width_mult = absl::GetFlag(FLAGS_width_mult);
  OMPQ_RETURN_IF_ERROR(check_model_flag(spec.name));
  return nn::make_model(spec);  // initial weights, all replaced by load_weights
}

// Loads --weights (strictly: every name, shape and dtype must fit) or --packed (the packed model's
// layers and float state, equally strictly), moves the model to `device` and puts it in eval mode.
absl::Status load_weights(nn::Model& model, Device device) {
  const std::string packed_path = absl::GetFlag(FLAGS_packed);
  if (packed_path.empty()) {
    OMPQ_RETURN_IF_ERROR(
        nn::load_model_weights(model, absl::GetFlag(FLAGS_weights), absl::GetFlag(FLAGS_model)));
  } else {
    if (!device.is_cpu()) {
      return invalid(absl::StrCat("--packed runs on the CPU (got --device=", device.str(), ")"));
    }
    OMPQ_ASSIGN_OR_RETURN(nn::PackedModel packed, nn::load_packed(packed_path));
    const absl::Status loaded = nn::load_integer_model(model, packed);
    if (!loaded.ok()) {
      return invalid(
          absl::StrCat("'", packed_path, "' does not fit model ", absl::GetFlag(FLAGS_model),
                       " with ", absl::GetFlag(FLAGS_num_classes), " classes: ", loaded.message()));
    }
  }
  model.to(device);
  model.eval();
  return absl::OkStatus();
}

// Tensor mode: logits of the "input" tensor, computed in batches of --batch_size.
absl::Status run_tensor_mode(nn::Model& model, Device device) {
  const std::string input_path = absl::GetFlag(FLAGS_input);
  const std::string output_path = absl::GetFlag(FLAGS_output);
  if (input_path.empty() || output_path.empty()) {
    return invalid("tensor mode needs both --input and --output");
  }
  OMPQ_ASSIGN_OR_RETURN(SafetensorsContents contents, load_safetensors(input_path));
  auto it = contents.tensors.find("input");
  if (it == contents.tensors.end()) {
    std::vector<std::string> names;
    for (const auto& entry : contents.tensors) names.push_back(entry.first);
    return invalid(absl::StrCat(input_path, " has no tensor \"input\" (it holds: ",
                                names.empty() ? "nothing" : absl::StrJoin(names, ", "), ")"));
  }
  const Tensor& input = it->second;
  const Shape expected = model.input_shape();
  if (input.dtype() != DType::kF32 || input.dim() != 4 || input.size(1) != expected[0] ||
      input.size(0) == 0) {
    return invalid(absl::StrCat(input_path, ": tensor \"input\" is ", shape_str(input.shape()), " ",
                                dtype_name(input.dtype()), " (expected float32 [N, ", expected[0],
                                ", H, W] with N > 0 for ", absl::GetFlag(FLAGS_model), ")"));
  }
  OMPQ_RETURN_IF_ERROR(load_weights(model, device));
  NoGradGuard no_grad;
  const int64_t batch = absl::GetFlag(FLAGS_batch_size);
  std::vector<Tensor> logits;
  for (int64_t start = 0; start < input.size(0); start += batch) {
    const int64_t end = std::min(input.size(0), start + batch);
    logits.push_back(model.forward(input.slice(0, start, end).to(device)).to(Device::cpu()));
  }
  Tensor all = logits.size() == 1 ? logits[0] : cat(logits, 0);
  OMPQ_RETURN_IF_ERROR(save_safetensors(output_path, {{"logits", all}},
                                        {{"model", absl::GetFlag(FLAGS_model)},
                                         {"weights", absl::GetFlag(FLAGS_weights)},
                                         {"input", input_path}}));
  std::fprintf(stderr, "ompq_eval: wrote logits %s to %s\n", shape_str(all.shape()).c_str(),
               output_path.c_str());
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const data::Dataset>> open_dataset(const nn::Model& model) {
  const std::string name = absl::GetFlag(FLAGS_dataset);
  std::string dir = absl::GetFlag(FLAGS_data_dir);
  std::string split = absl::GetFlag(FLAGS_split);
  const Shape input = model.input_shape();
  const int64_t size =
      absl::GetFlag(FLAGS_image_size) > 0 ? absl::GetFlag(FLAGS_image_size) : input[1];
  if (name == "fashion_mnist" || name == "mnist") {
    data::MnistOptions options;
    if (dir.empty()) {
      if (name == "mnist") return invalid("--dataset=mnist needs --data_dir");
      dir = data::kFashionMnistFolder;
    }
    if (split.empty()) split = "test";
    if (split != "test" && split != "train") {
      return invalid(absl::StrCat("--split=", split, " (expected test or train for ", name, ")"));
    }
    if (size < 28)
      return invalid(absl::StrCat("--image_size ", size, " (expected >= 28 for ", name, ")"));
    options.folder = dir;
    options.split = split == "train" ? data::Split::kTrain : data::Split::kTest;
    if (name == "mnist") {
      options.mean = data::kMnistMean;
      options.std = data::kMnistStd;
    }
    options.image_size = size;
    options.resize = absl::GetFlag(FLAGS_mnist_resize);
    options.channels = input[0];
    OMPQ_ASSIGN_OR_RETURN(auto dataset, data::MnistDataset::open(options));
    return std::shared_ptr<const data::Dataset>(std::move(dataset));
  }
  if (name == "imagenet") {
    if (dir.empty())
      return invalid("--dataset=imagenet needs --data_dir (the folder holding train/ and val/)");
    if (input[0] != 3)
      return invalid(absl::StrCat(absl::GetFlag(FLAGS_model), " takes ", input[0],
                                  "-channel images, imagenet has 3"));
    data::ImageFolderOptions options =
        data::imagenet_options(dir, split.empty() ? "val" : split, absl::GetFlag(FLAGS_label_file));
    options.transform.size = size;
    options.transform.resize = size * 256 / 224;  // torchvision's 256 -> 224 ratio
    options.strict = absl::GetFlag(FLAGS_strict_images);
    OMPQ_ASSIGN_OR_RETURN(auto dataset, data::ImageFolderDataset::open(options));
    return std::shared_ptr<const data::Dataset>(std::move(dataset));
  }
  return invalid(absl::StrCat("--dataset=", name, " (expected fashion_mnist, mnist or imagenet)"));
}

// Dataset mode with --output: every image of the loader (in order), its label and its logits.
absl::Status write_dataset_outputs(nn::Model& model, const data::DataLoader& loader, Device device,
                                   const std::string& path) {
  NoGradGuard no_grad;
  std::vector<Tensor> inputs, labels, logits;
  for (data::Batch& batch : loader.batches()) {
    logits.push_back(model.forward(batch.inputs.to(device)).to(Device::cpu()));
    inputs.push_back(batch.inputs.to(Device::cpu()));
    labels.push_back(batch.labels.to(Device::cpu()));
  }
  const Tensor all_logits = cat(logits, 0);
  OMPQ_RETURN_IF_ERROR(save_safetensors(
      path, {{"input", cat(inputs, 0)}, {"labels", cat(labels, 0)}, {"logits", all_logits}},
      {{"model", absl::GetFlag(FLAGS_model)},
       {"weights", absl::GetFlag(FLAGS_weights)},
       {"dataset", loader.dataset().name()}}));
  std::fprintf(stderr, "ompq_eval: wrote %lld images, labels and logits to %s\n",
               static_cast<long long>(all_logits.size(0)), path.c_str());
  return absl::OkStatus();
}

absl::Status run_dataset_mode(nn::Model& model, Device device) {
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<const data::Dataset> dataset, open_dataset(model));
  const int64_t num_classes = absl::GetFlag(FLAGS_num_classes);
  if (dataset->num_classes() > num_classes) {
    return invalid(absl::StrCat(dataset->name(), " has ", dataset->num_classes(),
                                " classes but the model only ", num_classes, " (--num_classes)"));
  }
  const int64_t limit = absl::GetFlag(FLAGS_limit);
  if (limit < 0) return invalid(absl::StrCat("--limit ", limit, " must not be negative"));
  if (limit > 0 && limit < dataset->size()) {
    dataset = std::make_shared<data::Subset>(dataset, limit, data::SubsetSpacing::kFirst);
  }
  OMPQ_RETURN_IF_ERROR(load_weights(model, device));
  data::DataLoaderOptions options;
  options.batch_size = absl::GetFlag(FLAGS_batch_size);
  options.num_workers = absl::GetFlag(FLAGS_workers);
  options.pin_memory = device.is_cuda();
  data::DataLoader loader(dataset, options);
  const std::string output_path = absl::GetFlag(FLAGS_output);
  if (!output_path.empty()) return write_dataset_outputs(model, loader, device, output_path);
  std::fprintf(stderr, "ompq_eval: %s on %s (%lld images), %d threads, %s\n",
               absl::GetFlag(FLAGS_model).c_str(), dataset->name().c_str(),
               static_cast<long long>(dataset->size()), num_threads(), device.str().c_str());
  const auto start = std::chrono::steady_clock::now();
  solver::EvalResult result = solver::evaluate(model, loader, device);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "%s on %s: top-1 %.2f%% top-5 %.2f%% loss %.4f over %lld images (%.1f s, %.0f img/s)\n",
      absl::GetFlag(FLAGS_model).c_str(), dataset->name().c_str(), result.top1, result.top5,
      result.loss, static_cast<long long>(result.count), seconds, result.count / seconds);
  return absl::OkStatus();
}

absl::Status run() {
  const bool tensor_mode = !absl::GetFlag(FLAGS_input).empty();
  const bool dataset_mode = !absl::GetFlag(FLAGS_dataset).empty();
  if (tensor_mode == dataset_mode) {
    return invalid("give either --input and --output (tensor mode) or --dataset (dataset mode)");
  }
  if (absl::GetFlag(FLAGS_batch_size) <= 0) {
    return invalid(
        absl::StrCat("--batch_size must be positive, got ", absl::GetFlag(FLAGS_batch_size)));
  }
  if (absl::GetFlag(FLAGS_workers) < 0) return invalid("--workers must not be negative");
  if (absl::GetFlag(FLAGS_image_size) < 0) return invalid("--image_size must not be negative");
  OMPQ_ASSIGN_OR_RETURN(Device device, usable_device(absl::GetFlag(FLAGS_device)));
  OMPQ_RETURN_IF_ERROR(use_device(device));
  if (absl::GetFlag(FLAGS_weights).empty() == absl::GetFlag(FLAGS_packed).empty()) {
    return invalid(
        "give --weights (a safetensors file of float weights) or --packed (a packed integer "
        "model), one of them");
  }
  if (absl::GetFlag(FLAGS_threads) > 0) set_num_threads(absl::GetFlag(FLAGS_threads));
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, make_model());
  return tensor_mode ? run_tensor_mode(*model, device) : run_dataset_mode(*model, device);
}

}  // namespace
}  // namespace ompq

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Evaluates a model in eval mode.\n"
      "  dataset mode: ompq_eval --model=NAME --weights=W.safetensors "
      "--dataset=fashion_mnist|mnist|imagenet\n"
      "  tensor mode:  ompq_eval --model=NAME --weights=W.safetensors --input=X.safetensors "
      "--output=Y.safetensors");
  absl::ParseCommandLine(argc, argv);
  return ompq::run_app("ompq_eval", ompq::run);
}
