// ORM, the orthogonality of two layers' features (docs/METHOD.md 2.1), the orthogonality matrix of
// a network and the layer importance derived from it (docs/METHOD.md 2.2, 2.4).
//
// ORM(X, Y) is the centered linear CKA of the N x N Gram matrices K = X X^T, L = Y Y^T of two
// feature batches flattened to [N, D]:
//   ORM = <Kc, Lc>_F / (||Kc||_F ||Lc||_F),   Kc = H K H, H = I - 11^T / N.
// It is symmetric, 1 for X = Y, in [0, 1], and invariant to isotropic scaling of X, to adding a
// constant to X and to orthogonal transforms of the feature space. Gram matrices are accumulated
// in f64 and everything after them is f64 (the reference computes in f32).
//
// Importance: gamma_i = sum_{j != i} O[i][j], theta_i = exp(-beta * gamma_i), and the LP weighs
// layer i by w_i = mean_{j >= i} theta_j. With gamma in the tens and beta up to 100, theta spans
// hundreds of orders of magnitude or underflows, so theta and w are kept as logarithms: the LP's
// solution depends on the weights only up to a common positive factor (an additive constant in
// log space), which no longer matters.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace ompq::solver {

// X X^T of a feature batch [N, ...] (f32 or f64, any device) flattened to [N, D], as an f64
// [N, N] CPU tensor. One batched matmul of the per-channel slices [C, N, H*W] on the feature's
// device (oneDNN on the CPU, cuBLASLt without TF32 on a GPU) gives C partial products, which are
// summed in f64 there: no sum runs longer than one channel in f32, and N x N values reach the host.
Tensor gram_matrix(const Tensor& feature);

// The reference's centering of a symmetric Gram matrix (ORM.py center_gram):
//   m_j = mean_i K[i][j];  m -= mean(m) / 2;  Kc[i][j] = K[i][j] - m_i - m_j,
// which equals H K H. Throws for a non-square matrix, and like the reference for one that is not
// symmetric (numpy.allclose(K, K^T): rtol 1e-5, atol 1e-8). Returns f64.
Tensor center_gram(const Tensor& gram);

// ORM of the features whose Gram matrices are given. Throws when the shapes differ or a centered
// Gram matrix is (numerically) zero: a feature that is constant across the N samples has no CKA.
double orm(const Tensor& gram_x, const Tensor& gram_y);

// O[i][j] = orm(grams[i], grams[j]) for all L layers, as an f64 [L, L] tensor; each matrix is
// centered and normed once.
Tensor orthogonality_matrix(const std::vector<Tensor>& grams);

// gamma_i = sum_{j != i} O[i][j] for a square orthogonality matrix.
std::vector<double> orthogonality_sums(const Tensor& orm_matrix);

// log theta_i = -beta * gamma_i. beta must be finite and >= 0.
std::vector<double> log_importance(const std::vector<double>& gamma, double beta);

// log w_i, w_i = (1 / (L - i)) * sum_{j >= i} theta_j: the LP objective weight of layer i (spec
// 2.4), from log theta by a suffix log-sum-exp (no underflow or overflow).
std::vector<double> log_layer_weights(const std::vector<double>& log_theta);

}  // namespace ompq::solver
