// ORM (centered linear CKA) against the golden vectors of docs/METHOD.md 2.1, its invariances,
// the Gram matrix against naive f64 loops, and importance (gamma, theta, w) against the toy
// example of docs/METHOD.md 2.4, including magnitudes where theta underflows in linear space.
#include "solver/search/orm.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/random.h"

namespace ompq::solver {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

Tensor matrix(const std::vector<std::vector<double>>& rows, DType dtype = DType::kF64) {
  std::vector<double> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  return Tensor::from_vector(
             flat, {static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())})
      .to(dtype);
}

// Naive X X^T in f64 over the row-major flattening.
std::vector<double> naive_gram(const Tensor& x) {
  const int64_t n = x.size(0);
  const std::vector<double> v = x.to_vector<double>();
  const int64_t d = static_cast<int64_t>(v.size()) / n;
  std::vector<double> g(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k = 0; k < d; ++k) g[i * n + j] += v[i * d + k] * v[j * d + k];
  return g;
}

// docs/METHOD.md 2.1 golden features.
const std::vector<std::vector<double>> kX1 = {{1, 2, 0}, {0, 1, 3}, {2, 2, 2}, {1, 0, 1}};
const std::vector<std::vector<double>> kX2 = {{1, 0}, {2, 1}, {0, 3}, {1, 1}};

std::vector<std::vector<double>> times(const std::vector<std::vector<double>>& x,
                                       const std::vector<std::vector<double>>& m) {
  std::vector<std::vector<double>> out(x.size(), std::vector<double>(m[0].size(), 0.0));
  for (size_t i = 0; i < x.size(); ++i)
    for (size_t j = 0; j < m[0].size(); ++j)
      for (size_t k = 0; k < m.size(); ++k) out[i][j] += x[i][k] * m[k][j];
  return out;
}

double orm_of(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b,
              DType dtype) {
  return orm(gram_matrix(matrix(a, dtype)), gram_matrix(matrix(b, dtype)));
}

TEST(Orm, GoldenVectorsOfSpec21) {
  const auto x3 = times(kX1, {{1, 0, 2}, {0, 1, 0}, {1, 1, 1}});
  auto x4 = kX1;
  for (auto& row : x4)
    for (double& v : row) v = 3 * v + 5;
  for (DType dtype : {DType::kF64, DType::kF32}) {
    const double tol = dtype == DType::kF64 ? 1e-10 : 1e-7;
    EXPECT_NEAR(orm_of(kX1, kX2, dtype), 0.4462795943, tol);
    EXPECT_NEAR(orm_of(kX1, x3, dtype), 0.5616751000, tol);
    EXPECT_NEAR(orm_of(kX1, x4, dtype), 1.0, tol);
    EXPECT_NEAR(orm_of(kX1, kX1, dtype), 1.0, tol);
  }
  // The uncentered variant would give 0.8742358918: centering is what these numbers test.
  const std::vector<double> k = naive_gram(matrix(kX1)), l = naive_gram(matrix(kX2));
  double kl = 0, kk = 0, ll = 0;
  for (size_t i = 0; i < k.size(); ++i) kl += k[i] * l[i], kk += k[i] * k[i], ll += l[i] * l[i];
  EXPECT_NEAR(kl / std::sqrt(kk * ll), 0.8742358918, 1e-10);
}

TEST(Orm, SymmetricBoundedAndInvariant) {
  Generator gen(7);
  Tensor x = Tensor::empty({6, 5}, DType::kF64), y = Tensor::empty({6, 4}, DType::kF64);
  ops::normal_(x, 0.0, 1.0, gen);
  ops::normal_(y, 0.0, 1.0, gen);
  const double xy = orm(gram_matrix(x), gram_matrix(y));
  EXPECT_NEAR(orm(gram_matrix(y), gram_matrix(x)), xy, 1e-14);
  EXPECT_GT(xy, 0.0);
  EXPECT_LT(xy, 1.0);
  // A rotation of feature dims 0 and 1, isotropic scaling and a shift leave ORM unchanged.
  std::vector<double> v = x.to_vector<double>();
  const double c = std::cos(0.7), s = std::sin(0.7);
  for (int i = 0; i < 6; ++i) {
    const double a = v[i * 5], b = v[i * 5 + 1];
    v[i * 5] = c * a - s * b;
    v[i * 5 + 1] = s * a + c * b;
    for (int j = 0; j < 5; ++j) v[i * 5 + j] = 2.5 * v[i * 5 + j] - 4.0;
  }
  Tensor x_moved = Tensor::from_vector(v, {6, 5});
  EXPECT_NEAR(orm(gram_matrix(x_moved), gram_matrix(y)), xy, 1e-12);
  EXPECT_NEAR(orm(gram_matrix(x_moved), gram_matrix(x)), 1.0, 1e-12);
}

TEST(Orm, GramOfAFeatureMapMatchesNaiveLoopsInF64) {
  Generator gen(3);
  Tensor f = Tensor::empty({5, 3, 7, 6});
  ops::uniform_(f, 0.0, 2.0, gen);  // post-ReLU-like: positive, with a large mean
  const std::vector<double> expected = naive_gram(f);
  const std::vector<double> got = gram_matrix(f).to_vector<double>();
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], 1e-5 * expected[i]);
  // A non-contiguous view (channels last in memory) gives the same matrix.
  Tensor nhwc = f.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
  const std::vector<double> from_view = gram_matrix(nhwc).to_vector<double>();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(from_view[i], got[i]);
  // f64 features take the same path in f64.
  const std::vector<double> f64 = gram_matrix(f.to(DType::kF64)).to_vector<double>();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(f64[i], expected[i], 1e-12 * expected[i]);
}

TEST(Orm, CenterGramIsHKH) {
  const Tensor k = gram_matrix(matrix(kX2));
  const std::vector<double> a = k.to_vector<double>();
  const int n = 4;
  std::vector<double> hkh(n * n, 0.0);
  auto h = [&](int i, int j) { return (i == j ? 1.0 : 0.0) - 1.0 / n; };
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      for (int p = 0; p < n; ++p)
        for (int q = 0; q < n; ++q) hkh[i * n + j] += h(i, p) * a[p * n + q] * h(q, j);
  const std::vector<double> c = center_gram(k).to_vector<double>();
  for (int i = 0; i < n * n; ++i) EXPECT_NEAR(c[i], hkh[i], 1e-12);
}

TEST(Orm, OrthogonalityMatrixMatchesPairwiseOrm) {
  Generator gen(11);
  std::vector<Tensor> grams;
  for (int64_t d : {3, 8, 5}) {
    Tensor f = Tensor::empty({6, d, 2, 2});
    ops::normal_(f, 1.0, 1.0, gen);
    grams.push_back(gram_matrix(f));
  }
  const Tensor o = orthogonality_matrix(grams);
  ASSERT_EQ(o.shape(), (Shape{3, 3}));
  const std::vector<double> v = o.to_vector<double>();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) EXPECT_NEAR(v[i * 3 + j], orm(grams[i], grams[j]), 1e-14);
  const std::vector<double> gamma = orthogonality_sums(o);
  EXPECT_NEAR(gamma[1], v[1 * 3 + 0] + v[1 * 3 + 2], 1e-15);
}

TEST(Orm, ImportanceOfTheToyExampleOfSpec24) {
  const Tensor o = matrix({{1, .8, .3}, {.8, 1, .5}, {.3, .5, 1}});
  const std::vector<double> gamma = orthogonality_sums(o);
  EXPECT_NEAR(gamma[0], 1.1, 1e-15);
  EXPECT_NEAR(gamma[1], 1.3, 1e-15);
  EXPECT_NEAR(gamma[2], 0.8, 1e-15);
  const std::vector<double> theta1 = {0.33287108, 0.27253179, 0.44932896};
  const std::vector<double> w1 = {0.35157728, 0.36093038, 0.44932896};
  const std::vector<double> theta10 = {1.670e-5, 2.260e-6, 3.355e-4};
  const std::vector<double> w10 = {1.1814e-4, 1.6886e-4, 3.3546e-4};
  const std::vector<double> log_theta1 = log_importance(gamma, 1.0);
  const std::vector<double> log_w1 = log_layer_weights(log_theta1);
  const std::vector<double> log_theta10 = log_importance(gamma, 10.0);
  const std::vector<double> log_w10 = log_layer_weights(log_theta10);
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(std::exp(log_theta1[i]), theta1[i], 5e-9);
    EXPECT_NEAR(std::exp(log_w1[i]), w1[i], 5e-9);
    EXPECT_NEAR(std::exp(log_theta10[i]) / theta10[i], 1.0, 1e-3);  // 4 digits given
    EXPECT_NEAR(std::exp(log_w10[i]) / w10[i], 1.0, 1e-4);
  }
}

TEST(Orm, LayerWeightsStayFiniteWhereThetaUnderflows) {
  // beta * gamma of 1e4..3e4: theta is exactly 0 in double, its logarithm is not.
  const std::vector<double> log_theta = log_importance({10, 20, 30}, 1000.0);
  const std::vector<double> log_w = log_layer_weights(log_theta);
  EXPECT_EQ(std::exp(log_theta[0]), 0.0);
  EXPECT_DOUBLE_EQ(log_w[2], -30000.0);
  EXPECT_DOUBLE_EQ(log_w[1], -20000.0 - std::log(2.0));
  EXPECT_DOUBLE_EQ(log_w[0], -10000.0 - std::log(3.0));
}

TEST(Orm, BadInputs) {
  EXPECT_THAT([] { gram_matrix(Tensor::zeros({4})); },
              ThrowsMessage<Error>(HasSubstr("gram_matrix: expected a non-empty feature batch")));
  EXPECT_THAT(
      [] {
        gram_matrix(Tensor::zeros({4, 3}, DType::kI32));
      },
      ThrowsMessage<Error>(HasSubstr("expected an f32 or f64 feature, got i32")));
  EXPECT_THAT(
      [] {
        center_gram(matrix({{1, 2}, {3, 4}}));
      },
      ThrowsMessage<Error>(HasSubstr("center_gram: the Gram matrix is not symmetric")));
  EXPECT_THAT(
      [] {
        center_gram(matrix({{1, 2, 3}}));
      },
      ThrowsMessage<Error>(HasSubstr("expected a non-empty square Gram matrix")));
  EXPECT_THAT(
      [] {
        orm(gram_matrix(matrix(kX1)), gram_matrix(matrix({{1, 2}, {3, 4}})));
      },
      ThrowsMessage<Error>(HasSubstr("orm: Gram matrices of shapes [4, 4] and [2, 2]")));
  const Tensor constant = gram_matrix(Tensor::full({4, 3}, 2.5));
  EXPECT_THAT([&] { orm(constant, gram_matrix(matrix(kX1))); },
              ThrowsMessage<Error>(HasSubstr("the feature is the same for all 4 samples")));
  EXPECT_THAT(
      [&] {
        orthogonality_matrix({gram_matrix(matrix(kX1)), constant});
      },
      ThrowsMessage<Error>(HasSubstr("centered Gram matrix of layer 1 is zero")));
  EXPECT_THAT([] { orthogonality_matrix({}); },
              ThrowsMessage<Error>(HasSubstr("no Gram matrices")));
  EXPECT_THAT([] { log_importance({1.0}, -1.0); },
              ThrowsMessage<Error>(HasSubstr("log_importance: beta -1")));
  EXPECT_THAT(
      [] {
        log_layer_weights({0.0, -INFINITY});
      },
      ThrowsMessage<Error>(HasSubstr("log theta[1] = -inf")));
}

}  // namespace
}  // namespace ompq::solver
