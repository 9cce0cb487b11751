#include "solver/train/trainer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "data/synthetic.h"
#include "layers/flatten.h"
#include "layers/linear.h"
#include "layers/sequential.h"
#include "solver/report/metrics.h"
#include "solver/train/checkpoint.h"
#include "solver/train/progress.h"
#include "tests/temp_dir.h"

namespace ompq::solver {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::shared_ptr<nn::Sequential> linear_classifier(int64_t features, int64_t classes,
                                                  Generator& gen) {
  auto model = std::make_shared<nn::Sequential>();
  model->push_back(std::make_shared<nn::Flatten>());
  model->push_back(std::make_shared<nn::Linear>(features, classes, true, gen));
  return model;
}

TEST(TopK, CountsHitsAndTreatsTiesAgainstTheLabel) {
  Tensor logits = Tensor::from_vector<float>({0.1f, 0.9f, 0.0f,   // label 1: top-1
                                              0.5f, 0.2f, 0.3f,   // label 2: second
                                              0.4f, 0.4f, 0.1f},  // label 0 ties with class 1
                                             {3, 3});
  Tensor labels = Tensor::from_vector<int64_t>({1, 2, 0}, {3});
  auto [top1, top5] = count_topk_hits(logits, labels);
  EXPECT_EQ(top1, 1);
  EXPECT_EQ(top5, 3);
}

TEST(TopK, RejectsMismatchedShapes) {
  EXPECT_THAT(
      [] {
        count_topk_hits(Tensor::zeros({2, 3}), Tensor::zeros({3}, DType::kI64));
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("[2, 3]")));
}

TEST(Progress, FormatsDurations) {
  EXPECT_EQ(format_duration(0), "0:00");
  EXPECT_EQ(format_duration(65), "1:05");
  EXPECT_EQ(format_duration(3 * 3600 + 7 * 60 + 9), "3:07:09");
}

TEST(MetricsCsv, AppendsAndRefusesAnotherHeader) {
  testing::ScopedTempDir temp;
  const fs::path& dir = temp.path();
  std::string path = (dir / "metrics.csv").string();
  {
    auto csv = MetricsCsv::open(path, {"epoch", "loss"});
    ASSERT_TRUE(csv.ok()) << csv.status();
    ASSERT_TRUE(csv->append({"1", "0.5"}).ok());
    EXPECT_THAT(csv->append({"2"}).message(), HasSubstr("1 values for 2 columns"));
  }
  {
    auto csv = MetricsCsv::open(path, {"epoch", "loss"});  // a resumed run continues the file
    ASSERT_TRUE(csv.ok());
    ASSERT_TRUE(csv->append({"2", "0.25"}).ok());
  }
  std::ifstream in(path);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all, "epoch,loss\n1,0.5\n2,0.25\n");
  auto other = MetricsCsv::open(path, {"step", "loss"});
  EXPECT_THAT(other.status().message(), HasSubstr("existing metrics have columns"));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const std::string& contents) {
  std::ofstream(path, std::ios::trunc) << contents;
}

// A kill can cut the last row (or the header of a new file) short: the next open drops it.
TEST(MetricsCsv, DropsARowCutShortByACrash) {
  testing::ScopedTempDir temp;
  std::string path = (temp.path() / "metrics.csv").string();
  write_file(path, "epoch,loss\n1,0.5\n2,0.2");
  auto csv = MetricsCsv::open(path, {"epoch", "loss"});
  ASSERT_TRUE(csv.ok()) << csv.status();
  EXPECT_EQ(read_file(path), "epoch,loss\n1,0.5\n");
  ASSERT_TRUE(csv->append({"2", "0.25"}).ok());
  EXPECT_EQ(read_file(path), "epoch,loss\n1,0.5\n2,0.25\n");

  write_file(path, "epoch,lo");
  ASSERT_TRUE(MetricsCsv::open(path, {"epoch", "loss"}).ok());
  EXPECT_EQ(read_file(path), "epoch,loss\n");
}

TEST(MetricsCsv, RemovesTheRowsARestartedStageWritesAgain) {
  testing::ScopedTempDir temp;
  std::string path = (temp.path() / "metrics.csv").string();
  auto csv = MetricsCsv::open(path, {"stage", "epoch"});
  ASSERT_TRUE(csv.ok()) << csv.status();
  for (const char* epoch : {"1", "2", "3"}) ASSERT_TRUE(csv->append({"qat", epoch}).ok());
  ASSERT_TRUE(csv->append({"eval", ""}).ok());
  ASSERT_TRUE(csv->remove_rows([](const std::vector<std::string>& row) {
                   return row[0] == "qat" && row[1] > "1";
                 })
                  .ok());
  EXPECT_EQ(read_file(path), "stage,epoch\nqat,1\neval,\n");
}

TEST(MetricsCsv, AnAppendErrorNamesTheFileAndTheReason) {
  testing::ScopedTempDir temp;
  std::string path = (temp.path() / "metrics.csv").string();
  auto csv = MetricsCsv::open(path, {"epoch"});
  ASSERT_TRUE(csv.ok()) << csv.status();
  fs::remove(path);
  EXPECT_THAT(csv->append({"1"}).message(),
              HasSubstr(path + ": cannot open to append metrics: No such file or directory"));
}

data::SyntheticOptions small_synthetic(int64_t size) {
  data::SyntheticOptions options;
  options.size = size;
  options.input_shape = {1, 4, 4};
  options.num_classes = 3;
  options.noise = 0.3f;
  return options;
}

// f32, and bf16/f16 autocast (the parameters stay f32 master weights; f16 through the GradScaler).
TEST(Trainer, LearnsASeparableProblemAndEvaluatesInEveryPrecision) {
  for (DType precision : {DType::kF32, DType::kBF16, DType::kF16}) {
    SCOPED_TRACE(dtype_name(precision));
    Generator gen(7);
    auto model = linear_classifier(16, 3, gen);
    auto dataset = std::make_shared<data::SyntheticDataset>(small_synthetic(256));
    data::DataLoaderOptions loader_options;
    loader_options.batch_size = 32;
    loader_options.shuffle = true;
    data::DataLoader loader(dataset, loader_options);
    SgdOptions sgd;
    sgd.lr = 0.1;
    sgd.momentum = 0.9;
    nn::SGD optimizer(model->parameters(), sgd);
    nn::ConstantLr schedule;
    TrainOptions options;
    options.precision = precision;
    Trainer trainer(*model, optimizer, schedule, options);
    EvalResult before = evaluate(*model, loader, Device::cpu(), nullptr, precision);
    for (int epoch = 0; epoch < 3; ++epoch) {
      loader.set_epoch(epoch);
      auto result = trainer.train_epoch(loader, epoch, 3);
      ASSERT_TRUE(result.ok()) << result.status();
      EXPECT_EQ(result->images, 256);
      EXPECT_EQ(result->skipped_steps, 0) << "f16: no overflow at the initial scale here";
    }
    EvalResult after = evaluate(*model, loader, Device::cpu(), nullptr, precision);
    EXPECT_EQ(after.count, 256);
    EXPECT_LT(after.loss, 0.5 * before.loss);
    EXPECT_GT(after.top1, 95.0);
    EXPECT_DOUBLE_EQ(after.top5, 100.0);  // 3 classes: always within the top five
    EXPECT_FALSE(model->is_training());
    for (const Tensor& p : model->parameters()) EXPECT_EQ(p.dtype(), DType::kF32);
  }
}

TEST(Trainer, RefusesAPrecisionItCannotTrainIn) {
  Generator gen(1);
  auto model = linear_classifier(16, 3, gen);
  nn::SGD optimizer(model->parameters(), SgdOptions{});
  nn::ConstantLr schedule;
  TrainOptions options;
  options.precision = DType::kF64;
  EXPECT_THAT(
      [&] { Trainer trainer(*model, optimizer, schedule, options); },
      ::testing::ThrowsMessage<Error>(HasSubstr("precision must be f32, bf16 or f16, got f64")));
}

// A dataset whose inputs are NaN: the loss is NaN from the first step.
class NanDataset : public data::Dataset {
 public:
  int64_t size() const override { return 8; }
  Shape input_shape() const override { return {1, 4, 4}; }
  int64_t num_classes() const override { return 3; }
  std::string name() const override { return "nan"; }

 protected:
  data::Example load(int64_t index, Generator&) const override {
    return {Tensor::full({1, 4, 4}, std::nan("")), index % 3};
  }
};

TEST(Trainer, StopsOnANonFiniteLossWithoutUpdating) {
  Generator gen(1);
  auto model = linear_classifier(16, 3, gen);
  Tensor weight_before = model->parameters()[0].clone();
  data::DataLoaderOptions loader_options;
  loader_options.batch_size = 4;
  data::DataLoader loader(std::make_shared<NanDataset>(), loader_options);
  SgdOptions sgd;
  sgd.lr = 0.1;
  nn::SGD optimizer(model->parameters(), sgd);
  nn::ConstantLr schedule;
  Trainer trainer(*model, optimizer, schedule, {});
  auto result = trainer.train_epoch(loader, 0, 1);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(), HasSubstr("training loss became nan at epoch 1 step 1"));
  EXPECT_EQ(model->parameters()[0].to_vector<float>(), weight_before.to_vector<float>());
}

// Interrupted after a mid-epoch checkpoint and resumed from it, an epoch reports what an
// uninterrupted one does: loss, top-1, images and skipped steps bit for bit (the wall-time fields,
// seconds, images_per_second and data_wait_fraction, cannot be equal), with the same weights.
TEST(Trainer, AnEpochResumedMidwayReportsWhatAnUninterruptedOneDoes) {
  testing::ScopedTempDir temp;
  const std::string checkpoint = (temp.path() / "ckpt.safetensors").string();
  auto dataset = std::make_shared<data::SyntheticDataset>(small_synthetic(200));
  data::DataLoaderOptions loader_options;
  loader_options.batch_size = 16;  // 13 steps, the last one of 8 examples
  loader_options.shuffle = true;
  data::DataLoader loader(dataset, loader_options);
  loader.set_epoch(1);
  SgdOptions sgd;
  sgd.lr = 0.05;
  sgd.momentum = 0.9;
  nn::CosineLr schedule(2 * loader.num_batches());
  auto make_model = [](uint64_t seed) {
    Generator gen(seed);
    return linear_classifier(16, 3, gen);
  };

  auto whole_model = make_model(11);
  nn::SGD whole_optimizer(whole_model->parameters(), sgd);
  auto whole = Trainer(*whole_model, whole_optimizer, schedule, {}).train_epoch(loader, 1, 2);
  ASSERT_TRUE(whole.ok()) << whole.status();

  // The first run stops (as if killed) right after its checkpoint at step 5.
  constexpr int64_t kStopAfter = 5;
  auto first_model = make_model(11);
  nn::SGD first_optimizer(first_model->parameters(), sgd);
  TrainOptions first_options;
  first_options.after_step = [&](int64_t epoch, int64_t steps_done, const EpochTotals& totals) {
    if (steps_done < kStopAfter) return absl::OkStatus();
    CheckpointState state;
    state.epochs_done = epoch;
    state.steps_done = steps_done;
    state.batch_size = loader_options.batch_size;
    state.epoch_totals = totals;
    EXPECT_TRUE(save_checkpoint(checkpoint, *first_model, first_optimizer, state).ok());
    return absl::AbortedError("killed");
  };
  auto stopped =
      Trainer(*first_model, first_optimizer, schedule, first_options).train_epoch(loader, 1, 2);
  ASSERT_EQ(stopped.status().code(), absl::StatusCode::kAborted);

  auto resumed_model = make_model(12);
  nn::SGD resumed_optimizer(resumed_model->parameters(), sgd);
  auto state = load_checkpoint(checkpoint, *resumed_model, resumed_optimizer);
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_EQ(state->steps_done, kStopAfter);
  EXPECT_EQ(state->epoch_totals.steps, kStopAfter);
  EXPECT_EQ(state->epoch_totals.images, kStopAfter * 16);
  auto resumed = Trainer(*resumed_model, resumed_optimizer, schedule, {})
                     .train_epoch(loader, 1, 2, state->steps_done, state->epoch_totals);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->loss, whole->loss);
  EXPECT_EQ(resumed->top1, whole->top1);
  EXPECT_EQ(resumed->images, 200);
  EXPECT_EQ(resumed->images, whole->images);
  EXPECT_EQ(resumed->skipped_steps, whole->skipped_steps);
  EXPECT_GE(resumed->seconds, state->epoch_totals.seconds);
  for (size_t i = 0; i < whole_model->parameters().size(); ++i) {
    EXPECT_EQ(resumed_model->parameters()[i].to_vector<float>(),
              whole_model->parameters()[i].to_vector<float>());
  }
  // Without the carried sums the result covers the steps after the resume only (the defect this
  // guards against), so the comparison above is not vacuous.
  auto again_model = make_model(12);
  nn::SGD again_optimizer(again_model->parameters(), sgd);
  ASSERT_TRUE(load_checkpoint(checkpoint, *again_model, again_optimizer).ok());
  auto partial = Trainer(*again_model, again_optimizer, schedule, {})
                     .train_epoch(loader, 1, 2, state->steps_done);
  ASSERT_TRUE(partial.ok());
  EXPECT_EQ(partial->images, 200 - kStopAfter * 16);
  EXPECT_NE(partial->loss, whole->loss);
}

// f16: the loss scale and its growth tracker travel in the checkpoint, so a resumed epoch scales,
// skips and steps as the uninterrupted one does (a scale that grows every step and halves on an
// overflow moves during the first steps; a fresh scaler would start over from its initial one).
TEST(Trainer, AnF16EpochResumedMidwayKeepsItsLossScale) {
  testing::ScopedTempDir temp;
  const std::string checkpoint = (temp.path() / "ckpt.safetensors").string();
  data::DataLoaderOptions loader_options;
  loader_options.batch_size = 16;
  data::DataLoader loader(std::make_shared<data::SyntheticDataset>(small_synthetic(200)),
                          loader_options);
  SgdOptions sgd;
  sgd.lr = 0.05;
  nn::ConstantLr schedule;
  TrainOptions options;
  options.precision = DType::kF16;
  options.grad_scaler.init_scale = 1024.0;
  options.grad_scaler.growth_interval = 1;
  auto make_model = [] {
    Generator gen(21);
    return linear_classifier(16, 3, gen);
  };
  auto whole_model = make_model();
  nn::SGD whole_optimizer(whole_model->parameters(), sgd);
  Trainer whole_trainer(*whole_model, whole_optimizer, schedule, options);
  auto whole = whole_trainer.train_epoch(loader, 0, 1);
  ASSERT_TRUE(whole.ok()) << whole.status();

  constexpr int64_t kStopAfter = 4;
  auto first_model = make_model();
  nn::SGD first_optimizer(first_model->parameters(), sgd);
  TrainOptions first_options = options;
  Trainer* first_trainer = nullptr;
  first_options.after_step = [&](int64_t epoch, int64_t steps_done, const EpochTotals& totals) {
    if (steps_done < kStopAfter) return absl::OkStatus();
    CheckpointState state;
    state.epochs_done = epoch;
    state.steps_done = steps_done;
    state.epoch_totals = totals;
    state.loss_scale = first_trainer->grad_scaler()->scale_value();
    state.loss_scale_growth_tracker = first_trainer->grad_scaler()->growth_tracker();
    EXPECT_TRUE(save_checkpoint(checkpoint, *first_model, first_optimizer, state).ok());
    return absl::AbortedError("killed");
  };
  Trainer first(*first_model, first_optimizer, schedule, first_options);
  first_trainer = &first;
  ASSERT_EQ(first.train_epoch(loader, 0, 1).status().code(), absl::StatusCode::kAborted);

  auto resumed_model = make_model();
  nn::SGD resumed_optimizer(resumed_model->parameters(), sgd);
  auto state = load_checkpoint(checkpoint, *resumed_model, resumed_optimizer);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_NE(state->loss_scale, options.grad_scaler.init_scale);
  Trainer resumed_trainer(*resumed_model, resumed_optimizer, schedule, options);
  resumed_trainer.grad_scaler()->restore(state->loss_scale, state->loss_scale_growth_tracker);
  auto resumed = resumed_trainer.train_epoch(loader, 0, 1, state->steps_done, state->epoch_totals);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->skipped_steps, whole->skipped_steps);
  EXPECT_EQ(resumed->loss, whole->loss);
  EXPECT_EQ(resumed_trainer.grad_scaler()->scale_value(),
            whole_trainer.grad_scaler()->scale_value());
  for (size_t i = 0; i < whole_model->parameters().size(); ++i) {
    EXPECT_EQ(resumed_model->parameters()[i].to_vector<float>(),
              whole_model->parameters()[i].to_vector<float>());
  }
}

TEST(Checkpoint, RoundTripsModelOptimizerAndState) {
  testing::ScopedTempDir temp;
  const fs::path& dir = temp.path();
  std::string path = (dir / "ckpt.safetensors").string();
  Generator gen(3);
  auto model = linear_classifier(16, 3, gen);
  SgdOptions sgd;
  sgd.lr = 0.1;
  sgd.momentum = 0.9;
  nn::SGD optimizer(model->parameters(), sgd);
  for (const Tensor& p : model->parameters()) p.set_grad(Tensor::ones(p.shape()));
  optimizer.step();  // creates momentum buffers
  CheckpointState saved;
  saved.epochs_done = 2;
  saved.steps_done = 7;
  saved.rng_seed = 3;
  saved.rng_offset = 99;
  saved.world_size = 4;
  saved.batch_size = 32;
  saved.epoch_totals = {0.1 + 0.2 + 1e-17, 150, 224, 7, 1, 12.5, 0.75};
  saved.loss_scale = 32768.0;
  saved.loss_scale_growth_tracker = 3;
  ASSERT_TRUE(save_checkpoint(path, *model, optimizer, saved).ok());

  Generator other_gen(4);
  auto restored = linear_classifier(16, 3, other_gen);
  nn::SGD restored_optimizer(restored->parameters(), sgd);
  auto state = load_checkpoint(path, *restored, restored_optimizer);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->epochs_done, 2);
  EXPECT_EQ(state->rng_seed, 3u);
  EXPECT_EQ(state->rng_offset, 99u);
  EXPECT_EQ(state->steps_done, 7);
  EXPECT_EQ(state->world_size, 4);
  EXPECT_EQ(state->batch_size, 32);
  // The epoch's sums come back bit for bit (the loss sum is no short decimal).
  EXPECT_EQ(state->epoch_totals.loss_sum, saved.epoch_totals.loss_sum);
  EXPECT_EQ(state->epoch_totals.top1_hits, 150);
  EXPECT_EQ(state->epoch_totals.images, 224);
  EXPECT_EQ(state->epoch_totals.steps, 7);
  EXPECT_EQ(state->epoch_totals.skipped_steps, 1);
  EXPECT_EQ(state->epoch_totals.seconds, 12.5);
  EXPECT_EQ(state->epoch_totals.data_wait_seconds, 0.75);
  EXPECT_EQ(state->loss_scale, 32768.0);
  EXPECT_EQ(state->loss_scale_growth_tracker, 3);
  for (size_t i = 0; i < model->parameters().size(); ++i) {
    EXPECT_EQ(model->parameters()[i].to_vector<float>(),
              restored->parameters()[i].to_vector<float>());
  }
  // The same next step on both proves the momentum buffers came back too.
  for (auto* m : {model.get(), restored.get()}) {
    for (const Tensor& p : m->parameters()) p.set_grad(Tensor::ones(p.shape()));
  }
  optimizer.step();
  restored_optimizer.step();
  EXPECT_EQ(model->parameters()[0].to_vector<float>(),
            restored->parameters()[0].to_vector<float>());
}

TEST(Checkpoint, RejectsEpochSumsThatCannotBe) {
  testing::ScopedTempDir temp;
  const std::string path = (temp.path() / "ckpt.safetensors").string();
  Generator gen(3);
  auto model = linear_classifier(16, 3, gen);
  nn::SGD optimizer(model->parameters(), SgdOptions{});
  CheckpointState saved;
  saved.steps_done = 2;
  saved.epoch_totals = {1.5, 10, 32, 2, 0, 1.0, 0.1};
  ASSERT_TRUE(save_checkpoint(path, *model, optimizer, saved).ok());
  auto contents = load_safetensors(path);
  ASSERT_TRUE(contents.ok()) << contents.status();
  auto rewritten_with = [&](const char* key, const char* value) {
    MetadataMap metadata = contents->metadata;
    metadata[key] = value;
    EXPECT_TRUE(save_safetensors(path, contents->tensors, metadata).ok());
    return std::string(load_checkpoint(path, *model, optimizer).status().message());
  };
  EXPECT_THAT(rewritten_with("epoch_images", "8"),
              HasSubstr(path + ": checkpoint epoch sums top1_hits 10, images 8"));
  EXPECT_THAT(
      rewritten_with("epoch_loss_sum", "one"),
      HasSubstr(path + ": checkpoint metadata \"epoch_loss_sum\" is missing or not a number"));
}

TEST(Checkpoint, RejectsAModelFileAndLeavesTheModelAlone) {
  testing::ScopedTempDir temp;
  const fs::path& dir = temp.path();
  std::string path = (dir / "model.safetensors").string();
  Generator gen(5);
  auto model = linear_classifier(16, 3, gen);
  ASSERT_TRUE(model->save(path).ok());
  SgdOptions sgd;
  nn::SGD optimizer(model->parameters(), sgd);
  auto state = load_checkpoint(path, *model, optimizer);
  EXPECT_THAT(state.status().message(), HasSubstr("not an ompq checkpoint"));
  EXPECT_THAT(load_checkpoint((dir / "missing").string(), *model, optimizer).status().message(),
              HasSubstr("missing"));
}

}  // namespace
}  // namespace ompq::solver
