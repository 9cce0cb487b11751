#include "solver/search/orm.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/ops/linalg.h"
#include "core/ops/reduce.h"

namespace ompq::solver {
namespace {

// A centered Gram matrix with its Frobenius norm, ready for inner products.
struct CenteredGram {
  Tensor matrix;  // f64 [N, N], contiguous
  double norm = 0.0;
};

double frobenius_norm(const double* a, int64_t n) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * a[i];
  return std::sqrt(sum);
}

double dot(const double* a, const double* b, int64_t n) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

Tensor as_f64_matrix(const Tensor& gram, const char* op) {
  OMPQ_CHECK(gram.dim() == 2 && gram.size(0) == gram.size(1) && gram.size(0) > 0, op,
             ": expected a non-empty square Gram matrix, got shape ", shape_str(gram.shape()));
  OMPQ_CHECK(gram.dtype() == DType::kF32 || gram.dtype() == DType::kF64, op,
             ": expected an f32 or f64 Gram matrix, got ", dtype_name(gram.dtype()));
  return gram.detach().to(Device::cpu()).to(DType::kF64).contiguous();
}

// Centering cancels the (often large) mean part of K; when what is left is at rounding level the
// feature is constant across the samples and the CKA is noise.
CenteredGram centered_with_norm(const Tensor& gram, const char* what) {
  Tensor k = as_f64_matrix(gram, "orm");
  const int64_t count = k.numel();
  CenteredGram c{center_gram(k), 0.0};
  c.norm = frobenius_norm(c.matrix.data<double>(), count);
  const double gram_norm = frobenius_norm(k.data<double>(), count);
  OMPQ_CHECK(c.norm > 1e-10 * gram_norm, "orm: the centered Gram matrix of ", what,
             " is zero (norm ", c.norm, " for a Gram matrix of norm ", gram_norm,
             "): the feature is the same for all ", k.size(0),
             " samples, so its orthogonality is undefined");
  return c;
}

}  // namespace

Tensor gram_matrix(const Tensor& feature) {
  OMPQ_CHECK(feature.dim() >= 2 && feature.size(0) > 0 && feature.numel() > 0,
             "gram_matrix: expected a non-empty feature batch [N, ...] with at least 2 dims, got "
             "shape ",
             shape_str(feature.shape()));
  OMPQ_CHECK(feature.dtype() == DType::kF32 || feature.dtype() == DType::kF64,
             "gram_matrix: expected an f32 or f64 feature, got ", dtype_name(feature.dtype()));
  const int64_t n = feature.size(0);
  const int64_t chunks = feature.dim() >= 3 ? feature.size(1) : 1;
  const int64_t chunk_size = feature.numel() / n / chunks;
  Tensor slices = feature.detach().reshape({n, chunks, chunk_size}).permute({1, 0, 2}).contiguous();
  // [C, N, N] partial products (oneDNN or cuBLASLt), summed over C in f64 on the feature's device:
  // only the N x N sum crosses to the host.
  const Tensor partial = ops::matmul(slices, slices.transpose(1, 2)).to(DType::kF64);
  const Tensor sum = ops::sum(partial, {0}, false).to(Device::cpu()).contiguous();
  const double* s = sum.data<double>();
  // The two triangles come from differently ordered f32 sums; their mean is symmetric exactly.
  Tensor gram = Tensor::empty({n, n}, DType::kF64);
  double* g = gram.data<double>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) g[i * n + j] = 0.5 * (s[i * n + j] + s[j * n + i]);
  }
  return gram;
}

Tensor center_gram(const Tensor& gram) {
  Tensor k = as_f64_matrix(gram, "center_gram");
  const int64_t n = k.size(0);
  const double* a = k.data<double>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      const double x = a[i * n + j], y = a[j * n + i];
      OMPQ_CHECK(std::abs(x - y) <= 1e-8 + 1e-5 * std::abs(y),
                 "center_gram: the Gram matrix is not symmetric (K[", i, "][", j, "] = ", x, ", K[",
                 j, "][", i, "] = ", y, ")");
    }
  }
  std::vector<double> means(n, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) means[j] += a[i * n + j];
  }
  double mean_of_means = 0.0;
  for (double& m : means) {
    m /= static_cast<double>(n);
    mean_of_means += m;
  }
  mean_of_means /= static_cast<double>(n);
  for (double& m : means) m -= mean_of_means / 2;
  Tensor centered = Tensor::empty({n, n}, DType::kF64);
  double* c = centered.data<double>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) c[i * n + j] = a[i * n + j] - means[i] - means[j];
  }
  return centered;
}

double orm(const Tensor& gram_x, const Tensor& gram_y) {
  OMPQ_CHECK(gram_x.shape() == gram_y.shape(), "orm: Gram matrices of shapes ",
             shape_str(gram_x.shape()), " and ", shape_str(gram_y.shape()),
             " (expected the same N x N)");
  const CenteredGram x = centered_with_norm(gram_x, "the first feature");
  const CenteredGram y = centered_with_norm(gram_y, "the second feature");
  return dot(x.matrix.data<double>(), y.matrix.data<double>(), x.matrix.numel()) /
         (x.norm * y.norm);
}

Tensor orthogonality_matrix(const std::vector<Tensor>& grams) {
  const int64_t layers = static_cast<int64_t>(grams.size());
  OMPQ_CHECK(layers > 0, "orthogonality_matrix: no Gram matrices");
  std::vector<CenteredGram> centered;
  for (int64_t i = 0; i < layers; ++i) {
    OMPQ_CHECK(grams[i].shape() == grams[0].shape(), "orthogonality_matrix: Gram matrix ", i,
               " has shape ", shape_str(grams[i].shape()), ", Gram matrix 0 has ",
               shape_str(grams[0].shape()), " (expected the same N x N)");
    centered.push_back(centered_with_norm(grams[i], absl::StrCat("layer ", i).c_str()));
  }
  const int64_t count = centered[0].matrix.numel();
  Tensor o = Tensor::empty({layers, layers}, DType::kF64);
  double* out = o.data<double>();
  for (int64_t i = 0; i < layers; ++i) {
    for (int64_t j = i; j < layers; ++j) {
      const double v =
          dot(centered[i].matrix.data<double>(), centered[j].matrix.data<double>(), count) /
          (centered[i].norm * centered[j].norm);
      out[i * layers + j] = out[j * layers + i] = v;
    }
  }
  return o;
}

std::vector<double> orthogonality_sums(const Tensor& orm_matrix) {
  OMPQ_CHECK(orm_matrix.dim() == 2 && orm_matrix.size(0) == orm_matrix.size(1),
             "orthogonality_sums: expected a square matrix, got shape ",
             shape_str(orm_matrix.shape()));
  const int64_t layers = orm_matrix.size(0);
  const std::vector<double> o = orm_matrix.to_vector<double>();
  std::vector<double> gamma(layers, 0.0);
  for (int64_t i = 0; i < layers; ++i) {
    for (int64_t j = 0; j < layers; ++j) {
      if (j != i) gamma[i] += o[i * layers + j];
    }
  }
  return gamma;
}

std::vector<double> log_importance(const std::vector<double>& gamma, double beta) {
  OMPQ_CHECK(std::isfinite(beta) && beta >= 0, "log_importance: beta ", beta,
             " (expected finite and >= 0)");
  std::vector<double> log_theta(gamma.size());
  for (size_t i = 0; i < gamma.size(); ++i) {
    OMPQ_CHECK(std::isfinite(gamma[i]), "log_importance: gamma[", i, "] = ", gamma[i]);
    log_theta[i] = -beta * gamma[i];
  }
  return log_theta;
}

std::vector<double> log_layer_weights(const std::vector<double>& log_theta) {
  const int64_t layers = static_cast<int64_t>(log_theta.size());
  std::vector<double> log_w(layers);
  double suffix = -std::numeric_limits<double>::infinity();  // log sum_{j >= i} theta_j
  for (int64_t i = layers - 1; i >= 0; --i) {
    OMPQ_CHECK(std::isfinite(log_theta[i]), "log_layer_weights: log theta[", i,
               "] = ", log_theta[i]);
    const double hi = std::max(suffix, log_theta[i]), lo = std::min(suffix, log_theta[i]);
    suffix = hi + std::log1p(std::exp(lo - hi));
    log_w[i] = suffix - std::log(static_cast<double>(layers - i));
  }
  return log_w;
}

}  // namespace ompq::solver
