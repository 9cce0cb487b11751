// The models and data sets the stages read, built from the resolved config.
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/autograd.h"
#include "core/error.h"
#include "data/catalog.h"
#include "data/subset.h"
#include "layers/models/registry.h"
#include "solver/config/proto_io.h"
#include "solver/pipeline/experiment_impl.h"
#include "solver/quantize/quantize_plan.h"

namespace ompq::solver {

absl::StatusOr<std::shared_ptr<nn::Model>> Experiment::new_model(Generator& gen) const {
  nn::ModelSpec spec;
  spec.name = config_.model();
  // Before the data sets are open (prepare() needs the model's input side to open them), any
  // class count gives the input shape.
  spec.num_classes = num_classes_ > 0 ? num_classes_ : 10;
  spec.small_input = config_.small_input();
  spec.width_mult = config_.width_mult() > 0 ? config_.width_mult() : 1.0;
  return nn::make_model(spec, gen);
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

data::DatasetRequest Experiment::dataset_request(data::DatasetUse use) const {
  data::DatasetRequest request;
  request.kind = dataset_kind_;
  request.dir = config_.data().dir();
  request.val_labels = config_.data().label_file();
  request.input = input_shape_;
  request.model = config_.model();
  request.use = use;
  request.strict_images = config_.data().strict_images();
  request.augment = config_.data().augmentation() == proto::AUGMENTATION_REFERENCE;
  return request;
}

// A limit takes the first examples of IDX data (shuffled already) and examples spread over an
// image folder (stored class by class), so that a short run still sees every class.
absl::StatusOr<std::shared_ptr<const data::Dataset>> Experiment::open_split(data::DatasetUse use,
                                                                            int64_t limit) const {
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<const data::Dataset> dataset,
                        data::open_dataset(dataset_request(use)));
  if (limit > 0 && limit < dataset->size()) {
    dataset = std::make_shared<data::Subset>(dataset, limit,
                                             dataset_kind_ == data::DatasetKind::kImageNet
                                                 ? data::SubsetSpacing::kSpread
                                                 : data::SubsetSpacing::kFirst);
  }
  return dataset;
}

// The model's own input side unless data.image_size gives one; a side the model cannot take
// (its feature maps would vanish) fails here, on one image, before anything is written.
absl::Status Experiment::resolve_input_shape(nn::Model& model) {
  input_shape_ = model.input_shape();
  const int32_t side = config_.data().image_size();
  if (side == 0 || side == input_shape_[1]) return absl::OkStatus();
  input_shape_ = {input_shape_[0], side, side};
  try {
    NoGradGuard no_grad;
    model.eval();
    model.forward(Tensor::zeros({1, input_shape_[0], side, side}));
  } catch (const Error& e) {
    return invalid(absl::StrCat("image_size ", side, ": ", config_.model(),
                                " cannot take images of this side (", e.what(), ")"));
  }
  return absl::OkStatus();
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
