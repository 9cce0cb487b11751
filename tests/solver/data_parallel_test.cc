// DataParallel and the data-parallel Trainer on the single-process communicator (the MPI runs are
// in tests/mpi/), and where a resumed run continues when the number of ranks changed.
#include "solver/train/data_parallel.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/functional/reduce.h"
#include "core/functional/softmax.h"
#include "core/random.h"
#include "data/synthetic.h"
#include "layers/activation.h"
#include "layers/flatten.h"
#include "layers/linear.h"
#include "layers/sequential.h"
#include "solver/train/checkpoint.h"
#include "solver/train/trainer.h"

namespace ompq::solver {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

// Linear(16 -> 32) + ReLU + Linear(32 -> 4): parameters of 512, 32, 128 and 4 floats.
std::shared_ptr<nn::Sequential> mlp(Generator& gen) {
  auto model = std::make_shared<nn::Sequential>();
  model->push_back(std::make_shared<nn::Flatten>());
  model->push_back(std::make_shared<nn::Linear>(16, 32, true, gen));
  model->push_back(std::make_shared<nn::ReLU>());
  model->push_back(std::make_shared<nn::Linear>(32, 4, true, gen));
  return model;
}

Tensor loss_of(nn::Module& model, Generator& gen) {
  Tensor x = randn({6, 1, 4, 4}, gen);
  Tensor labels = Tensor::from_vector<int64_t>({0, 1, 2, 3, 0, 1}, {6});
  return cross_entropy(model(x), labels);
}

TEST(DataParallel, BucketsRunFromTheLastParameterAndTheFirstIsSmall) {
  Generator gen(1);
  auto model = mlp(gen);
  auto comm = make_single_process_communicator();
  // Reverse order: 4 + 128 floats (528 B) close the first bucket past 512 B; then 32 + 512
  // floats (2176 B) fill the next one, whose limit is larger.
  DataParallel dp(*model, *comm, {/*first_bucket_bytes=*/512, /*bucket_bytes=*/4096});
  EXPECT_EQ(dp.bucket_bytes(), (std::vector<int64_t>{528, 2176}));
  DataParallel one_each(*model, *comm, {4, 4});
  EXPECT_EQ(one_each.bucket_bytes(), (std::vector<int64_t>{16, 512, 128, 2048}));
}

TEST(DataParallel, OneRankGivesThePlainGradientsAndLaunchesDuringBackward) {
  Generator gen(2);
  auto model = mlp(gen);
  auto comm = make_single_process_communicator();
  DataParallel dp(*model, *comm, {4, 4});
  Generator data_gen(3);
  Tensor loss = loss_of(*model, data_gen);
  loss.backward();
  std::vector<std::vector<float>> plain;
  for (const Tensor& p : model->parameters()) plain.push_back(p.grad().to_vector<float>());
  model->zero_grad();

  dp.begin_backward();
  loss.backward();
  dp.end_backward();
  // Every gradient was final inside backward, so every bucket started from a hook.
  EXPECT_EQ(dp.launched_during_backward(), 4);
  std::vector<Tensor> params = model->parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_EQ(params[i].grad().to_vector<float>(), plain[i]) << "parameter " << i;
  }
}

TEST(DataParallel, AParameterWithoutGradientGetsZero) {
  Generator gen(4);
  auto model = mlp(gen);
  auto comm = make_single_process_communicator();
  DataParallel dp(*model, *comm);
  dp.begin_backward();
  sum(model->parameters()[0]).backward();  // only the first weight gets a gradient
  dp.end_backward();
  std::vector<Tensor> params = model->parameters();
  EXPECT_EQ(params[0].grad().to_vector<float>(), std::vector<float>(512, 1.0f));
  EXPECT_EQ(params[3].grad().to_vector<float>(), std::vector<float>(4, 0.0f));
}

TEST(DataParallel, RejectsMisuse) {
  Generator gen(5);
  auto model = mlp(gen);
  auto comm = make_single_process_communicator();
  DataParallel dp(*model, *comm);
  EXPECT_THAT([&] { dp.end_backward(); },
              ThrowsMessage<Error>(HasSubstr("end_backward() without begin_backward()")));
  Generator data_gen(6);
  Tensor loss = loss_of(*model, data_gen);
  dp.begin_backward();
  loss.backward();
  EXPECT_THAT([&] { loss.backward(); },
              ThrowsMessage<Error>(HasSubstr("received a second gradient in one step")));
  auto gpu_comm = make_single_process_communicator(Device::cuda(0));
  EXPECT_THAT(
      [&] { DataParallel(*model, *gpu_comm); },
      ThrowsMessage<Error>(HasSubstr("is on cpu but the single communicator carries cuda:0")));
  EXPECT_THAT(
      [&] {
        DataParallel(*model, *comm, {0, 1});
      },
      ThrowsMessage<Error>(HasSubstr("bucket sizes must be positive")));
}

TEST(DataParallelTrainer, OneRankTrainsExactlyAsWithoutACommunicator) {
  data::SyntheticOptions synthetic;
  synthetic.size = 64;
  synthetic.input_shape = {1, 4, 4};
  synthetic.num_classes = 4;
  auto dataset = std::make_shared<data::SyntheticDataset>(synthetic);
  data::DataLoaderOptions loader_options;
  loader_options.batch_size = 16;
  loader_options.shuffle = true;
  data::DataLoader loader(dataset, loader_options);
  auto comm = make_single_process_communicator();
  std::vector<std::vector<float>> trained[2];
  for (int with_comm = 0; with_comm < 2; ++with_comm) {
    Generator gen(7);
    auto model = mlp(gen);
    SgdOptions sgd;
    sgd.lr = 0.1;
    sgd.momentum = 0.9;
    nn::SGD optimizer(model->parameters(), sgd);
    nn::ConstantLr schedule;
    TrainOptions options;
    options.comm = with_comm ? comm.get() : nullptr;
    Trainer trainer(*model, optimizer, schedule, options);
    auto result = trainer.train_epoch(loader, 0, 1);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->images, 64);
    EvalResult eval = evaluate(*model, loader, Device::cpu(), options.comm);
    EXPECT_EQ(eval.count, 64);
    for (const Tensor& p : model->parameters()) trained[with_comm].push_back(p.to_vector<float>());
  }
  EXPECT_EQ(trained[0], trained[1]);
}

TEST(ResumePoint, KeepsTheStepWhenTheLayoutIsUnchanged) {
  CheckpointState state;
  state.epochs_done = 2;
  state.steps_done = 5;
  state.world_size = 2;
  state.batch_size = 8;
  ResumePoint same = resume_point(state, 2, 8);
  EXPECT_EQ(same.step, 5);
  EXPECT_EQ(same.note, "");
  state.batch_size = 0;  // an older checkpoint: no layout recorded
  EXPECT_EQ(resume_point(state, 4, 8).step, 5);
}

TEST(ResumePoint, RecomputesTheStepForAnotherNumberOfRanks) {
  CheckpointState state;
  state.epochs_done = 2;
  state.steps_done = 5;
  state.world_size = 2;
  state.batch_size = 8;  // 80 examples of epoch 3 done
  ResumePoint one_rank = resume_point(state, 1, 16);
  EXPECT_EQ(one_rank.step, 5);
  ResumePoint four_ranks = resume_point(state, 4, 8);
  EXPECT_EQ(four_ranks.step, 2);  // 64 of the 80 examples: one partial step is trained again
  EXPECT_THAT(four_ranks.note,
              HasSubstr("written by 2 rank(s) x batch 8 after step 5 of epoch 3 (80 examples)"));
  EXPECT_THAT(four_ranks.note, HasSubstr("resumes that epoch at step 2 (example 64)"));
  EXPECT_THAT(four_ranks.note, HasSubstr("re-training 16 examples"));
  EXPECT_THAT([&] { resume_point(state, 0, 8); },
              ThrowsMessage<Error>(HasSubstr("world_size 0 and batch_size 8 must be positive")));
}

}  // namespace
}  // namespace ompq::solver
