// The models and data sets the stages read, built from the resolved config.
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/autograd.h"
#include "core/error.h"
#include "data/catalog.h"
#include "data/subset.h"
#include "layers/models/registry.h"
#include "solver/config/proto_io.h"
#include "solver/pipeline/experiment_data.h"
#include "solver/pipeline/experiment_impl.h"
#include "solver/quantize/quantize_plan.h"

namespace ompq::solver {
namespace {

data::DatasetKind dataset_kind(proto::Dataset dataset) {
  switch (dataset) {
    case proto::DATASET_MNIST:
      return data::DatasetKind::kMnist;
    case proto::DATASET_IMAGENET:
      return data::DatasetKind::kImageNet;
    default:
      return data::DatasetKind::kFashionMnist;
  }
}

// The model's own input side unless data.image_size gives one; a side the model cannot take
// (its feature maps would vanish) fails here, on one image.
absl::StatusOr<Shape> input_shape(const ExperimentConfig& config, nn::Model& model) {
  const Shape own = model.input_shape();
  const int32_t side = config.data().image_size();
  if (side == 0 || side == own[1]) return own;
  try {
    NoGradGuard no_grad;
    model.eval();
    model.forward(Tensor::zeros({1, own[0], side, side}));
  } catch (const Error& e) {
    return invalid(absl::StrCat("image_size ", side, ": ", config.model(),
                                " cannot take images of this side (", e.what(), ")"));
  }
  return Shape{own[0], side, side};
}

absl::StatusOr<std::shared_ptr<const data::Dataset>> open_split(const ExperimentConfig& config,
                                                                const ExperimentData& opened,
                                                                data::DatasetUse use,
                                                                int64_t limit) {
  data::DatasetRequest request;
  request.kind = opened.kind;
  request.dir = config.data().dir();
  request.val_labels = config.data().label_file();
  request.input = opened.input_shape;
  request.model = config.model();
  request.use = use;
  request.strict_images = config.data().strict_images();
  request.augment = config.data().augmentation() == proto::AUGMENTATION_REFERENCE;
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<const data::Dataset> dataset, data::open_dataset(request));
  if (limit > 0 && limit < dataset->size()) {
    dataset = std::make_shared<data::Subset>(dataset, limit,
                                             opened.kind == data::DatasetKind::kImageNet
                                                 ? data::SubsetSpacing::kSpread
                                                 : data::SubsetSpacing::kFirst);
  }
  return dataset;
}

}  // namespace

absl::StatusOr<std::shared_ptr<nn::Model>> make_experiment_model(const ExperimentConfig& config,
                                                                 int64_t num_classes,
                                                                 Generator& gen) {
  nn::ModelSpec spec;
  spec.name = config.model();
  spec.num_classes = num_classes;
  spec.small_input = config.small_input();
  spec.width_mult = config.width_mult() > 0 ? config.width_mult() : 1.0;
  return nn::make_model(spec, gen);
}

absl::StatusOr<ExperimentData> open_experiment_data(const ExperimentConfig& config) {
  ExperimentData opened;
  opened.kind = dataset_kind(config.data().dataset());
  Generator gen(config.seed());
  // Any class count gives the input shape.
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, make_experiment_model(config, 10, gen));
  OMPQ_ASSIGN_OR_RETURN(opened.input_shape, input_shape(config, *model));
  const int64_t train_limit = config.data().train_limit();
  OMPQ_ASSIGN_OR_RETURN(opened.train,
                        open_split(config, opened, data::DatasetUse::kTraining, train_limit));
  OMPQ_ASSIGN_OR_RETURN(
      opened.test, open_split(config, opened, data::DatasetUse::kEval, config.data().test_limit()));
  opened.search = opened.train;
  if (opened.kind == data::DatasetKind::kImageNet) {
    OMPQ_ASSIGN_OR_RETURN(opened.search,
                          open_split(config, opened, data::DatasetUse::kSearch, train_limit));
  }
  OMPQ_RETURN_IF_ERROR(data::check_same_classes(*opened.train, *opened.test));
  opened.num_classes = opened.train->num_classes();
  return opened;
}

absl::StatusOr<std::shared_ptr<nn::Model>> Experiment::new_model(Generator& gen) const {
  // Before the data sets are open (prepare() needs the model's input side to open them), any
  // class count gives the input shape.
  return make_experiment_model(config_, num_classes_ > 0 ? num_classes_ : 10, gen);
}

absl::StatusOr<std::shared_ptr<nn::Model>> Experiment::fp32_model(Generator& gen) const {
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, new_model(gen));
  OMPQ_RETURN_IF_ERROR(nn::load_model_weights(*model, fp32_weights(), config_.model()));
  model->to(runtime_.device);
  return model;
}

absl::StatusOr<LayerBitsPlan> Experiment::bits_plan() const {
  proto::BitConfig bits;
  OMPQ_RETURN_IF_ERROR(read_text_proto(path(kBitsFile).string(), &bits));
  Generator gen(config_.seed());
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, new_model(gen));
  return plan_from_bit_config(bits, *model, path(kBitsFile).string());
}

// The FP32 model quantized with bits.pbtxt for config.quant, with quantized.safetensors loaded
// when `layers` is null (a finished quantization stage), or fresh quantizers otherwise.
absl::StatusOr<std::shared_ptr<nn::Model>> Experiment::quantized_model(
    Generator& gen, nn::QuantizedLayers* layers) const {
  OMPQ_ASSIGN_OR_RETURN(LayerBitsPlan plan, bits_plan());
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, fp32_model(gen));
  nn::QuantizedLayers quantized = quantize_for_plan(*model, plan, config_.act_bits());
  model->to(runtime_.device);
  if (layers != nullptr) {
    *layers = std::move(quantized);
  } else {
    OMPQ_RETURN_IF_ERROR(model->load(path(kQuantizedFile).string()));
  }
  return model;
}

data::DataLoader Experiment::train_loader() const {
  data::DataLoaderOptions options;
  options.batch_size = config_.train().batch_size();
  options.shuffle = true;
  options.drop_last = true;
  options.seed = config_.seed();
  options.num_workers = config_.data().workers();
  if (config_.data().prefetch() > 0) options.prefetch_factor = config_.data().prefetch();
  options.rank = rank();
  options.world_size = world_size();
  options.pin_memory = runtime_.device.is_cuda();
  return data::DataLoader(train_set_, options);
}

data::DataLoader Experiment::test_loader() const {
  data::DataLoaderOptions options;
  options.batch_size = config_.train().eval_batch_size();
  options.num_workers = config_.data().workers();
  if (config_.data().prefetch() > 0) options.prefetch_factor = config_.data().prefetch();
  options.rank = rank();
  options.world_size = world_size();
  options.pin_memory = runtime_.device.is_cuda();
  return data::DataLoader(test_set_, options);
}

}  // namespace ompq::solver
