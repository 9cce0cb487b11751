// Data-parallel training under mpirun: k steps of W ranks x batch B equal k steps of one process
// x batch W*B (the equivalence), with the model broadcast from rank 0, frozen batch norm,
// evaluation summed over the ranks, and a non-finite loss on one rank stopping every rank.
#include "solver/train/data_parallel.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "core/autograd.h"
#include "core/functional/softmax.h"
#include "core/random.h"
#include "data/synthetic.h"
#include "layers/activation.h"
#include "layers/conv.h"
#include "layers/flatten.h"
#include "layers/linear.h"
#include "layers/norm.h"
#include "layers/pooling.h"
#include "layers/sequential.h"
#include "solver/train/trainer.h"
#include "tests/mpi/world.h"

namespace ompq::solver {
namespace {

using ::testing::HasSubstr;
using testing::world;

constexpr int64_t kBatch = 4;  // per rank
constexpr int kSteps = 3;

// conv 2->4 (3x3) [+ BN] + ReLU + conv 4->4 + global average pool + linear 4->3.
std::shared_ptr<nn::Sequential> small_cnn(uint64_t seed, bool batch_norm) {
  Generator gen(seed);
  Conv2dParams same;
  same.padding = {1, 1};
  auto model = std::make_shared<nn::Sequential>();
  model->push_back(
      std::make_shared<nn::Conv2d>(2, 4, std::array<int64_t, 2>{3, 3}, same, true, gen));
  if (batch_norm) {
    auto bn = std::make_shared<nn::BatchNorm2d>(4);
    // Frozen statistics that are not the identity, so that the test would see them misused.
    Tensor(bn->running_mean()).copy_(Tensor::from_vector<float>({0.1f, -0.2f, 0.3f, 0.0f}, {4}));
    Tensor(bn->running_var()).copy_(Tensor::from_vector<float>({0.5f, 2.0f, 1.5f, 0.8f}, {4}));
    model->push_back(bn);
  }
  model->push_back(std::make_shared<nn::ReLU>());
  model->push_back(
      std::make_shared<nn::Conv2d>(4, 4, std::array<int64_t, 2>{3, 3}, same, true, gen));
  model->push_back(std::make_shared<nn::AdaptiveAvgPool2d>(std::array<int64_t, 2>{1, 1}));
  model->push_back(std::make_shared<nn::Flatten>());
  model->push_back(std::make_shared<nn::Linear>(4, 3, true, gen));
  return model;
}

SgdOptions sgd_options() {
  SgdOptions sgd;
  sgd.lr = 0.1;
  sgd.momentum = 0.9;
  sgd.weight_decay = 1e-3;
  return sgd;
}

double max_abs_difference(nn::Module& a, nn::Module& b) {
  std::vector<Tensor> pa = a.parameters(), pb = b.parameters();
  double worst = 0.0;
  for (size_t i = 0; i < pa.size(); ++i) {
    std::vector<double> x = pa[i].to_vector<double>(), y = pb[i].to_vector<double>();
    for (size_t j = 0; j < x.size(); ++j) worst = std::max(worst, std::abs(x[j] - y[j]));
  }
  return worst;
}

std::shared_ptr<data::SyntheticDataset> dataset(int64_t size) {
  data::SyntheticOptions options;
  options.size = size;
  options.input_shape = {2, 6, 6};
  options.num_classes = 3;
  options.seed = 9;
  return std::make_shared<data::SyntheticDataset>(options);
}

TEST(DataParallelMpi, RanksTimesBatchEqualsOneProcessWithTheGlobalBatch) {
  Communicator& comm = world();
  const int W = comm.size();
  auto examples = dataset(kSteps * kBatch * W);
  data::DataLoaderOptions sharded;
  sharded.batch_size = kBatch;
  sharded.shuffle = true;
  sharded.seed = 5;
  sharded.rank = comm.rank();
  sharded.world_size = W;
  data::DataLoaderOptions whole = sharded;
  whole.batch_size = kBatch * W;
  whole.rank = 0;
  whole.world_size = 1;
  data::DataLoader sharded_loader(examples, sharded), whole_loader(examples, whole);
  nn::ConstantLr schedule;

  // Every rank starts from other weights: the Trainer must broadcast rank 0's.
  auto model = small_cnn(11 + comm.rank(), /*batch_norm=*/false);
  nn::SGD optimizer(model->parameters(), sgd_options());
  TrainOptions options;
  options.comm = &comm;
  options.data_parallel = {256, 1024};  // several buckets even for this small model
  Trainer trainer(*model, optimizer, schedule, options);
  auto result = trainer.train_epoch(sharded_loader, 0, 1);
  ASSERT_TRUE(result.ok()) << result.status();

  auto reference = small_cnn(11, /*batch_norm=*/false);
  nn::SGD reference_optimizer(reference->parameters(), sgd_options());
  Trainer reference_trainer(*reference, reference_optimizer, schedule, {});
  auto expected = reference_trainer.train_epoch(whole_loader, 0, 1);
  ASSERT_TRUE(expected.ok()) << expected.status();

  EXPECT_LT(max_abs_difference(*model, *reference), 1e-5);
  EXPECT_EQ(result->images, expected->images);
  EXPECT_NEAR(result->loss, expected->loss, 1e-5);
  EXPECT_DOUBLE_EQ(result->top1, expected->top1);

  // Evaluation: shards summed over the ranks equal the whole set.
  EvalResult shard_eval = evaluate(*model, sharded_loader, Device::cpu(), &comm);
  EvalResult whole_eval = evaluate(*model, whole_loader, Device::cpu());
  EXPECT_EQ(shard_eval.count, whole_eval.count);
  EXPECT_NEAR(shard_eval.loss, whole_eval.loss, 1e-6);
  EXPECT_DOUBLE_EQ(shard_eval.top1, whole_eval.top1);
}

TEST(DataParallelMpi, FrozenBatchNormStepsEqualOneProcess) {
  Communicator& comm = world();
  const int W = comm.size();
  auto model = small_cnn(21 + comm.rank(), /*batch_norm=*/true);
  auto reference = small_cnn(21, /*batch_norm=*/true);
  model->eval();  // BN frozen, as in QAT: running statistics, no batch statistics
  reference->eval();
  nn::SGD optimizer(model->parameters(), sgd_options());
  nn::SGD reference_optimizer(reference->parameters(), sgd_options());
  DataParallel dp(*model, comm, {256, 1024});
  Generator data_gen(3);  // the same global batches on every rank
  for (int step = 0; step < kSteps; ++step) {
    Tensor inputs = randn({kBatch * W, 2, 6, 6}, data_gen);
    Tensor labels = Tensor::from_vector<int64_t>(
        [&] {
          std::vector<int64_t> v(kBatch * W);
          for (size_t i = 0; i < v.size(); ++i) v[i] = (i * 7 + step) % 3;
          return v;
        }(),
        {kBatch * W});
    const int64_t begin = comm.rank() * kBatch;
    optimizer.zero_grad();
    dp.begin_backward();
    cross_entropy((*model)(inputs.slice(0, begin, begin + kBatch)),
                  labels.slice(0, begin, begin + kBatch))
        .backward();
    dp.end_backward();
    optimizer.step();

    reference_optimizer.zero_grad();
    cross_entropy((*reference)(inputs), labels).backward();
    reference_optimizer.step();
  }
  EXPECT_LT(max_abs_difference(*model, *reference), 1e-5);
  EXPECT_GT(dp.launched_during_backward(), 0);
}

// Example 1 is NaN; with the sampler's round-robin it is on rank 1 (rank 0 when alone).
class OneNanDataset : public data::Dataset {
 public:
  int64_t size() const override { return 8; }
  Shape input_shape() const override { return {2, 6, 6}; }
  int64_t num_classes() const override { return 3; }
  std::string name() const override { return "one-nan"; }

 protected:
  data::Example load(int64_t index, Generator&) const override {
    return {Tensor::full({2, 6, 6}, index == 1 ? std::nan("") : 0.5), index % 3};
  }
};

TEST(DataParallelMpi, ANonFiniteLossOnOneRankStopsEveryRankBeforeTheUpdate) {
  Communicator& comm = world();
  auto model = small_cnn(31, /*batch_norm=*/false);
  nn::SGD optimizer(model->parameters(), sgd_options());
  nn::ConstantLr schedule;
  TrainOptions options;
  options.comm = &comm;
  Trainer trainer(*model, optimizer, schedule, options);
  std::vector<float> before = model->parameters()[0].to_vector<float>();
  data::DataLoaderOptions loader_options;
  loader_options.batch_size = 2;
  loader_options.rank = comm.rank();
  loader_options.world_size = comm.size();
  data::DataLoader loader(std::make_shared<OneNanDataset>(), loader_options);
  auto result = trainer.train_epoch(loader, 0, 1);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(), HasSubstr("training loss became nan at epoch 1 step 1"));
  EXPECT_EQ(model->parameters()[0].to_vector<float>(), before);
}

}  // namespace
}  // namespace ompq::solver
