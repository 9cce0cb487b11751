// The model and the data sets an experiment config names, opened as ompq_train opens them: what
// the experiment's stages read and what the budget sweep (sweep.h) reads for the same config.
#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "core/proto/ompq.pb.h"
#include "core/random.h"
#include "core/shape.h"
#include "data/catalog.h"
#include "data/dataset.h"
#include "layers/models/model.h"

namespace ompq::solver {

struct ExperimentData {
  data::DatasetKind kind = data::DatasetKind::kFashionMnist;
  Shape input_shape;  // [C, H, W]: the model's own, or data.image_size's side
  int64_t num_classes = 0;
  // data.train_limit / data.test_limit applied; `search` is `train` but for ImageNet, whose search
  // crops differ from training's.
  std::shared_ptr<const data::Dataset> train, search, test;
};

// The config's model (model, small_input, width_mult) for `num_classes` classes, initialized from
// `gen`. An unknown model name is an error naming it.
absl::StatusOr<std::shared_ptr<nn::Model>> make_experiment_model(
    const proto::ExperimentConfig& config, int64_t num_classes, Generator& gen);

// Opens the config's training, search and test splits shaped for its model's input: a side the
// model cannot take, a missing or unreadable data folder, or splits with different classes are
// errors naming the value or the file. A limit takes the first examples of IDX data (shuffled
// already) and examples spread over an image folder (stored class by class), so that a short run
// still sees every class.
absl::StatusOr<ExperimentData> open_experiment_data(const proto::ExperimentConfig& config);

}  // namespace ompq::solver
