// The OMPQ search with the model and images on the GPU (features from cuDNN convolutions and
// batch-statistics BN, Gram matrices on cuBLASLt) against the same search on the CPU: the same
// bits for the lp solver at two budgets and the ilp solver, ORM matrices within 1e-4 (f32 features
// through 19 layers, centered: see orm_test.cc), per-phase times, and the model given back
// unchanged. Needs a GPU.
#include "solver/search/search.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/random.h"
#include "cuda_test_util.h"
#include "layers/models/resnet.h"

namespace ompq::solver {
namespace {

using testing::expect_close;
using testing::expect_equal;

std::shared_ptr<nn::ResNet> model_on(Device device) {
  Generator gen(7900);
  auto model = nn::resnet20(10, gen);
  model->to(device);
  return model;
}

SearchOptions options_for(SolverKind solver, double budget) {
  SearchOptions o;
  o.model_name = "resnet20";
  o.mode = QuantMode::kQat;
  o.beta = 2.0;
  o.allocation.solver = solver;
  o.allocation.budget_mib = budget;
  return o;
}

TEST(CudaSearch, FindsTheCpuBitsFromGpuFeatures) {
  OMPQ_REQUIRE_GPU();
  auto cpu_model = model_on(Device::cpu());
  auto gpu_model = model_on(Device::cuda());
  Generator gen(7901);
  const Tensor images = randn({16, 3, 32, 32}, gen);
  const Tensor gpu_images = images.to(Device::cuda());
  // resnet20's QAT sizes span [0.1305, 0.2599] MiB.
  const std::pair<SolverKind, double> kRuns[] = {
      {SolverKind::kLp, 0.16}, {SolverKind::kLp, 0.24}, {SolverKind::kIlp, 0.2}};
  for (const auto& [solver, budget] : kRuns) {
    SCOPED_TRACE(std::string(solver_name(solver)) + " " + std::to_string(budget) + " MiB");
    const SearchOptions o = options_for(solver, budget);
    absl::StatusOr<SearchResult> expected = search(*cpu_model, images, o);
    absl::StatusOr<SearchResult> actual = search(*gpu_model, gpu_images, o);
    ASSERT_TRUE(expected.ok()) << expected.status();
    ASSERT_TRUE(actual.ok()) << actual.status();
    EXPECT_EQ(expected->allocation.bits, actual->allocation.bits);
    EXPECT_EQ(expected->allocation.size_mib, actual->allocation.size_mib);
    expect_close(expected->orm, actual->orm, 0, 1e-4, "ORM");
    EXPECT_GT(actual->timings.features_s, 0.0);
    EXPECT_GT(actual->timings.orm_s, 0.0);
    EXPECT_GE(actual->timings.solve_s, 0.0);
  }
  // The search's training-mode BN passes left the running statistics as they were.
  for (const auto& [name, buffer] : gpu_model->named_buffers()) {
    ASSERT_TRUE(buffer.device().is_cuda()) << name;
    expect_equal(cpu_model->state_dict().at(name), buffer, name);
  }
}

}  // namespace
}  // namespace ompq::solver
