// search(): features -> ORM -> importance -> allocation on a small model, the data-free
// projection path (it reproduces a released configuration of docs/METHOD.md 2.11), and its errors,
// which name the model.
#include "solver/search/search.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/random.h"
#include "layers/models/resnet.h"
#include "solver/capture/features.h"
#include "solver/search/orm.h"

namespace ompq::solver {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

Tensor random_images(int64_t n, int64_t size, uint64_t seed) {
  Generator gen(seed);
  Tensor x = Tensor::empty({n, 3, size, size});
  ops::normal_(x, 0.0, 1.0, gen);
  return x;
}

SearchOptions options_for(SolverKind solver, double budget, QuantMode mode) {
  SearchOptions o;
  o.model_name = "resnet20";
  o.mode = mode;
  o.beta = 2.0;
  o.allocation.solver = solver;
  o.allocation.budget_mib = budget;
  return o;
}

TEST(Search, LpAndIlpOnResNet20) {
  Generator gen(1);
  auto model = nn::resnet20(10, gen);
  const Tensor images = random_images(8, 32, 2);
  const SearchOptions lp = options_for(SolverKind::kLp, 0.2, QuantMode::kQat);
  absl::StatusOr<SearchResult> r = search(*model, images, lp);
  ASSERT_TRUE(r.ok()) << r.status();
  const size_t units = 18;
  ASSERT_EQ(r->orm.shape(), (Shape{18, 18}));
  const std::vector<double> o = r->orm.to_vector<double>();
  for (size_t i = 0; i < units; ++i) {
    EXPECT_NEAR(o[i * units + i], 1.0, 1e-12);
    for (size_t j = 0; j < units; ++j) {
      EXPECT_EQ(o[i * units + j], o[j * units + i]);
      EXPECT_GE(o[i * units + j], 0.0);
    }
  }
  // Importance as orm.h defines it, and an allocation that is that of allocate_bits.
  EXPECT_EQ(r->gamma, orthogonality_sums(r->orm));
  EXPECT_EQ(r->log_weights, log_layer_weights(log_importance(r->gamma, 2.0)));
  absl::StatusOr<BitAllocation> direct = allocate_bits(r->space, r->log_weights, lp.allocation);
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(r->allocation.bits, direct->bits);
  ASSERT_EQ(r->allocation.bits.size(), units);
  int fractional = 0;
  for (double b : r->allocation.relaxed_bits) fractional += (b != 4.0 && b != 8.0) ? 1 : 0;
  EXPECT_LE(fractional, 1);  // an LP vertex
  EXPECT_GT(r->timings.features_s, 0.0);
  EXPECT_GT(r->timings.orm_s, 0.0);
  EXPECT_GE(r->timings.solve_s, 0.0);

  absl::StatusOr<SearchResult> ilp =
      search(*model, images, options_for(SolverKind::kIlp, 0.2, QuantMode::kQat));
  ASSERT_TRUE(ilp.ok()) << ilp.status();
  EXPECT_LE(ilp->allocation.size_mib, 0.2);
  EXPECT_EQ(ilp->gamma, r->gamma);  // same features, same data
}

TEST(Search, ProjectionNeedsNoImages) {
  auto model = nn::resnet18();
  SearchOptions o = options_for(SolverKind::kProjection, 4.5, QuantMode::kPtq);
  o.model_name = "resnet18";
  o.allocation.rounding = reference_rounding("resnet18");
  absl::StatusOr<SearchResult> r = search(*model, Tensor(), o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->allocation.bits,
              ElementsAre(4, 3, 3, 4, 4, 4, 4, 4, 4, 4, 3, 3, 4, 4, 3, 3, 3, 3));
  EXPECT_FALSE(r->orm.defined());
  EXPECT_TRUE(r->gamma.empty());
  EXPECT_EQ(r->timings.features_s, 0.0);
}

TEST(Search, ErrorsNameTheModel) {
  Generator gen(3);
  auto model = nn::resnet20(10, gen);
  auto message = [&](const Tensor& images, const SearchOptions& o) {
    absl::StatusOr<SearchResult> r = search(*model, images, o);
    return r.ok() ? std::string("ok") : std::string(r.status().message());
  };
  const Tensor images = random_images(4, 32, 4);
  EXPECT_THAT(message(Tensor(), options_for(SolverKind::kLp, 0.2, QuantMode::kQat)),
              HasSubstr("resnet20: the lp solver needs images"));
  EXPECT_THAT(message(random_images(1, 32, 4), options_for(SolverKind::kLp, 0.2, QuantMode::kQat)),
              HasSubstr("resnet20: search images: expected a batch [N, C, H, W] with N >= 2"));
  EXPECT_THAT(message(images, options_for(SolverKind::kLp, 10.0, QuantMode::kQat)),
              HasSubstr("resnet20: model size budget 10.000000 MiB is outside the feasible range"));
  SearchOptions bad_beta = options_for(SolverKind::kLp, 0.2, QuantMode::kQat);
  bad_beta.beta = -1;
  EXPECT_THAT(message(images, bad_beta), HasSubstr("resnet20: beta -1"));
}

}  // namespace
}  // namespace ompq::solver
